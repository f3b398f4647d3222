"""Seeds series for the real-process fault tests, in its own process with the workers' settings.

Run as ``python -m tests.pipeline.fault_driver --series N --slices S --size PX`` with DATABASE_URL,
CELERY_BROKER_URL, MLFLOW_TRACKING_URI and RADASSIST_MEDIA_ROOT set like the worker's. Stores N
phantom series as ingest would, queues each through ``ml.services.queue_analysis`` (the real path:
the task is sent on commit) and prints the analysis ids as JSON.
"""

import argparse
import json
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=1)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    arguments = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    import django

    django.setup()
    import celery_app  # noqa: F401  (the app must be configured before tasks are sent)
    from accounts.models import Hospital, Patient
    from ml.phantoms import PHANTOM_LABELS
    from ml.services import queue_analysis
    from tests.pipeline.builders import store_phantom_series

    hospital, _ = Hospital.objects.get_or_create(slug="fault-tests", defaults={"name": "Fault Test Hospital"})
    patient, _ = Patient.objects.get_or_create(
        hospital=hospital, mrn="FAULT0001", defaults={"full_name": "Fault Phantom", "sex": "F"}
    )
    analysis_ids = []
    for number in range(arguments.series):
        series, _ = store_phantom_series(
            hospital=hospital, patient=patient, slices=arguments.slices, size=arguments.size,
            label=PHANTOM_LABELS[number % len(PHANTOM_LABELS)], seed=number,
        )
        analysis_ids.append(queue_analysis(series_id=series.pk).pk)
    print(json.dumps(analysis_ids))


if __name__ == "__main__":
    main()
