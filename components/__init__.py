"""KFP lightweight components, one module per pipeline step. Each is a thin call of
`scene2img.pipeline.steps`, which calls the stage function; they run in the project image
(`pipeline.image`, set on each task when `pipelines/scene2img_pipeline.py` compiles the DAG),
where scene2img is installed, or with the local runner in this checkout's environment.
"""
