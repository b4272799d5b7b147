"""One reader per raw format; each yields `scene2img.data.records.RawScene`s."""
