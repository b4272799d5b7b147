"""Evaluation: FID, KID, IS, SceneFID, diversity and layout metrics under a recorded protocol.

Typical use (the `evaluate` stage):

    from scene2img.evaluation.backbones import build_backbone
    from scene2img.evaluation.evaluator import build_protocol, evaluate_images

    backbone = build_backbone(params.backbone, params.inception_weights,
                              params.random_inception_seed, params.antialias)
    protocol = build_protocol(params, backbone, image_size, manifest_sha256(dataset), source)
    result = evaluate_images(loader, generate_fn, protocol, device, backbone=backbone)

The package re-exports nothing: serving imports `scene2img.evaluation.images` for its pixel
conversions, and that must not pull in torchmetrics and the backbones (seconds at every start).
"""
