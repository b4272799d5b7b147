"""What every component shares: the image from params.yaml, and nothing installed at run time
(the image, and the local environment, already have scene2img and kfp)."""

from scene2img.config import load_params

IMAGE = load_params().pipeline.image
COMPONENT = {"base_image": IMAGE, "install_kfp_package": False, "packages_to_install": []}
