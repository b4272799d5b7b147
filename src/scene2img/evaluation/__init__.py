"""Evaluation: FID, KID, IS, SceneFID, diversity and layout metrics under a recorded protocol.

Typical use (the `evaluate` stage):

    backbone = build_backbone(params.backbone, params.inception_weights,
                              params.random_inception_seed, params.antialias)
    protocol = build_protocol(params, backbone, image_size, manifest_sha256(dataset), source)
    result = evaluate_images(loader, generate_fn, protocol, device, backbone=backbone)
    atomic_write_json("metrics.json", result.to_dict()); write_report(result, "report.html")
"""

from scene2img.evaluation.backbones import (
    BACKBONES,
    INCEPTION_WEIGHTS_NAME,
    INCEPTION_WEIGHTS_URL,
    Backbone,
    Features,
    RandomInception,
    build_backbone,
    load_fid_inception,
    sha256_file,
)
from scene2img.evaluation.diversity import LPIPS_NETS, DiversityLPIPS, load_lpips
from scene2img.evaluation.evaluator import (
    EvaluationResult,
    Generated,
    GenerateFn,
    RealFeatures,
    Sample,
    build_protocol,
    evaluate_images,
)
from scene2img.evaluation.images import (
    crop_objects,
    pixel_boxes,
    resize_uint8,
    to_uint8,
    to_unit_range,
)
from scene2img.evaluation.metrics import (
    FeatureFID,
    PrecomputedFeatures,
    SceneFID,
    make_fid,
    make_inception_score,
    make_kid,
)
from scene2img.evaluation.protocol import (
    LOSTGAN_SAMPLES_PER_LAYOUT,
    Protocol,
    default_samples_per_layout,
    manifest_sha256,
)
from scene2img.evaluation.report import image_grid, write_grid, write_report

__all__ = [
    "BACKBONES", "INCEPTION_WEIGHTS_NAME", "INCEPTION_WEIGHTS_URL", "LOSTGAN_SAMPLES_PER_LAYOUT",
    "LPIPS_NETS", "Backbone", "DiversityLPIPS", "EvaluationResult", "Features", "GenerateFn",
    "FeatureFID", "Generated", "PrecomputedFeatures", "Protocol", "RealFeatures", "SceneFID",
    "RandomInception", "Sample", "build_backbone", "build_protocol",
    "crop_objects", "default_samples_per_layout", "evaluate_images", "image_grid",
    "load_fid_inception", "load_lpips", "make_fid", "make_inception_score", "make_kid",
    "manifest_sha256", "pixel_boxes", "resize_uint8", "sha256_file", "to_uint8",
    "to_unit_range", "write_grid", "write_report",
]
