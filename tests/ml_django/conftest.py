from tests.pipeline.conftest import tiny_model_store  # noqa: F401  (session fixture shared with the pipeline tests)
