"""What every component shares: nothing installed at run time (the image, and the local
environment, already have scene2img and kfp).

The image a task runs in is `pipeline.image`, set on every task when the DAG is compiled
(`pipelines/scene2img_pipeline.py`), so `-S pipeline.image=...` and `--experiment` reach it; the
`base_image` here is only KFP's required default and never reaches a compiled pipeline.
"""

COMPONENT = {"base_image": "python:3.11", "install_kfp_package": False, "packages_to_install": []}
