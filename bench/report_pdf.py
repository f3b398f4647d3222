"""Report PDF benchmark: WeasyPrint rendering of a report with four 512 x 512 key images.

Builds, in a throw-away SQLite database and media folder, a study with one analysed CT series
and four key images (512 x 512 PNG slices of CT-like noise with a lesion outline, as the
pipeline stores them), then renders the report's PDF ``--runs`` times with
``reports.pdf.render_report_pdf`` and prints the median and the spread. The baseline, measured
in the same run, is the same report with no key images, so the ratio shows what the images
cost. Goal: the report with four key images renders in well under 1 s.

    .venv/bin/python bench/report_pdf.py             # 10 runs of each
    .venv/bin/python bench/report_pdf.py --runs 30
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
GOAL_SECONDS = 1.0


def ct_like_overlay(seed, size=512):
    """A noisy grey slice with a body outline and a yellow lesion contour; compresses like a real slice."""
    import cv2
    import numpy as np

    generator = np.random.default_rng(seed)
    image = generator.normal(40, 12, (size, size)).clip(0, 255).astype(np.uint8)
    cv2.ellipse(image, (size // 2, size // 2), (size * 2 // 5, size // 3), 0, 0, 360, 150, -1)
    image = cv2.GaussianBlur(image, (3, 3), 0) + generator.integers(0, 20, (size, size), dtype=np.uint8)
    colour = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    cv2.circle(colour, (size // 2 + 40, size // 2 - 30), size // 12, (0, 215, 255), 3, lineType=cv2.LINE_AA)
    return cv2.imencode(".png", colour)[1].tobytes()


def build_report():
    from django.core.files.base import ContentFile

    from reports.services import create_draft_report
    from tests.factories import (
        AnalysisFactory,
        InstanceFactory,
        KeyImageFactory,
        PatientFactory,
        SeriesFactory,
        StudyFactory,
    )

    patient = PatientFactory(full_name="Benchmark Patient")
    study = StudyFactory(hospital=patient.hospital, patient=patient)
    series = SeriesFactory(study=study)
    for index in range(4):
        InstanceFactory(series=series, slice_location=index * 1.25)
    analysis = AnalysisFactory(series=series)
    for index, reason in enumerate(["largest_lesion", "largest_lesion", "highest_probability", "highest_probability"]):
        KeyImageFactory(
            analysis=analysis,
            slice_index=index,
            reason=reason,
            overlay=ContentFile(ct_like_overlay(index), name=f"overlay-{index}.png"),
        )
    return analysis, create_draft_report(analysis=analysis).versions.get()


def timed_renders(version, runs):
    from reports.pdf import render_report_pdf

    render_report_pdf(version=version)  # warm-up: fonts, templates, imports
    durations, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        size = len(render_report_pdf(version=version))
        durations.append(time.perf_counter() - started)
    return durations, size


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    arguments = parser.parse_args()

    workspace = tempfile.mkdtemp(prefix="radassist-bench-report-")
    os.environ["RADASSIST_VAR_DIR"] = workspace
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("AWS_STORAGE_BUCKET_NAME", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    os.environ.setdefault("RADASSIST_LOG_LEVEL", "WARNING")
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "True"  # the draft's own render runs here instead of being queued
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    analysis, version = build_report()

    with_images, size_with = timed_renders(version, arguments.runs)
    analysis.key_images.all().delete()
    baseline, size_without = timed_renders(version, arguments.runs)

    median_with, median_without = statistics.median(with_images), statistics.median(baseline)
    shutil.rmtree(workspace)
    print(f"report PDF, {arguments.runs} runs each")
    print(
        f"  4 key images (512 px): median {median_with * 1000:.0f} ms "
        f"(min {min(with_images) * 1000:.0f}, max {max(with_images) * 1000:.0f}), {size_with / 1024:.0f} KiB"
    )
    print(
        f"  no key images (baseline): median {median_without * 1000:.0f} ms "
        f"(min {min(baseline) * 1000:.0f}, max {max(baseline) * 1000:.0f}), {size_without / 1024:.0f} KiB"
    )
    print(f"  ratio with / without images: {median_with / median_without:.2f}")
    verdict = "meets" if median_with < GOAL_SECONDS else "MISSES"
    print(f"  {verdict} the goal of under {GOAL_SECONDS:.0f} s with four key images")


if __name__ == "__main__":
    main()
