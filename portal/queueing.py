"""Queue a Celery task by its dotted name.

A service that queues follow-up work of its own app names the task instead of importing its
``tasks`` module (which imports the services): the import graph stays free of cycles. The task's
module is imported on first use so that Celery's eager mode (tests, ``CELERY_TASK_ALWAYS_EAGER``)
and the queue routes in ``celery_app`` apply exactly as for ``task.delay()``.
"""

import importlib

from celery import current_app


def queue_task(name, *, countdown=None, **kwargs):
    """Send task ``name`` (e.g. ``"reports.tasks.render_report_pdf"``) with keyword arguments ``kwargs``."""
    if name not in current_app.tasks:
        importlib.import_module(name.rpartition(".")[0])
    task = current_app.tasks[name]
    if countdown is None:
        task.delay(**kwargs)
    else:
        task.apply_async(kwargs=kwargs, countdown=countdown)
