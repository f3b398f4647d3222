"""RadAssist's Django project: settings, root urls and the plumbing every app shares."""

from celery_app import app as celery_app

__all__ = ("celery_app",)
