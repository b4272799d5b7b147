"""scene2img: scene graphs to images, with the models' whole MLOps life."""

__version__ = "0.1.0"
