"""The deploy function: a CloudFormation custom resource (``Custom::SageMakerPipeline``).

On Create/Update it uploads the ETL bundle to a content-addressed key under ``code/``, fills the
deploy-time placeholders of the pipeline definition rendered at build time, and creates or updates the
SageMaker pipeline with the template's tags and its own owner tag (a taken name is adopted only when that
tag names this stack). On Delete it stops the pipeline's running executions, waits until they have
stopped, and deletes the pipeline, unless told to retain it. It always answers CloudFormation, so a stack
never waits for a response that will not come.
"""
