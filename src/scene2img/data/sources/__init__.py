"""One reader per raw format; each yields `scene2img.data.records.RawScene`s."""

SOURCES = ("vg", "coco-stuff", "ade20k")  # the raw formats (`preprocess.source`), one reader each
