import pytest


@pytest.fixture(autouse=True)
def eager_celery():
    """Email tasks queued on commit run in the test process (where a test executes the on-commit callbacks)."""
    from celery_app import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
