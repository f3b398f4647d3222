"""Slice viewer benchmark: how long the server takes to answer one slice and one mask overlay.

Scrolling feels smooth when a slice arrives well within a frame budget of about 50 ms, since the
viewer preloads three neighbours each way. This renders a 512 x 512 phantom CT slice (stored as a
real DICOM file) through ``clinic.viewer.render_slice_png`` for each window, and the lesion mask of
a 300-slice 512 x 512 series through the per-process mask cache and ``mask_overlay_png``; prints
the median and 90th percentile of each, and the first (cache-filling) mask request on its own.
No database is needed: the functions read the file through a stand-in of the Instance's file field.

    .venv/bin/python bench/viewer.py              # 30 runs of each
    .venv/bin/python bench/viewer.py --runs 100
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
GOAL_SECONDS = 0.05


class StoredFile:
    """What the viewer uses of a FileField: ``open("rb")`` and ``name``."""

    def __init__(self, content, name):
        self.content, self.name = content, name

    def open(self, mode="rb"):
        return io.BytesIO(self.content)


class StandIn:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def timed(function, runs):
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    durations.sort()
    return statistics.median(durations), durations[int(0.9 * (len(durations) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mask-slices", type=int, default=300)
    arguments = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
    import django

    django.setup()
    import numpy as np

    from clinic.viewer import decoded_slice, mask_cache, mask_overlay_png, render_slice_png, requested_window
    from ml.phantoms import generate_phantom_series, write_dicom_series
    from scans.models import Instance

    phantom = generate_phantom_series(label="large_cell_carcinoma", slices=1, size=512)
    with tempfile.TemporaryDirectory() as directory:
        [path] = write_dicom_series(phantom, directory, patient_id="BENCH", patient_name="Bench^Viewer")
        content = Path(path).read_bytes()
    instance = StandIn(file=StoredFile(content, "slice.dcm"), file_format=Instance.Format.DICOM,
                       window_center=-600.0, window_width=1500.0, rows=512, columns=512)
    print(f"slice PNG, 512 x 512 DICOM ({len(content) // 1024} KiB), {arguments.runs} runs each:")
    for name in ("lung", "mediastinum", "series"):
        window = requested_window({"window": name}, instance)

        def render_cold(window=window):
            decoded_slice.cache_clear()  # each run decodes the file, as the first request for a slice does
            render_slice_png(instance=instance, window=window)

        median, p90 = timed(render_cold, arguments.runs)
        verdict = "ok" if median < GOAL_SECONDS else "SLOWER than the goal"
        print(f"  window {name:<12} median {median * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms   ({verdict})")

    masks = np.zeros((arguments.mask_slices, 512, 512), dtype=bool)
    masks[:, 200:260, 300:370] = True
    buffer = io.BytesIO()
    np.savez_compressed(buffer, masks=masks)
    analysis = StandIn(pk=1, masks_file=StoredFile(buffer.getvalue(), "masks.npz"))
    start = time.perf_counter()
    mask_cache.slice_of(analysis, 0)
    first = time.perf_counter() - start
    median, p90 = timed(
        lambda: mask_overlay_png(mask_cache.slice_of(analysis, 150), rows=512, columns=512), arguments.runs
    )
    print(f"mask overlay PNG, {arguments.mask_slices} x 512 x 512 series:")
    print(f"  first request (decompress and cache the series' masks) {first * 1000:6.1f} ms")
    verdict = "ok" if median < GOAL_SECONDS else "SLOWER than the goal"
    print(f"  cached slice  median {median * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms   ({verdict})")


if __name__ == "__main__":
    main()
