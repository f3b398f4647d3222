"""The inference engine: two named model versions over a whole series, in fixed-size batches.

Public interface:
    InferenceEngine(*, tracking_uri, batch_size=16, min_lesion_pixels=4,
                    cached_versions=MODEL_CACHE_SIZE)
        .run_series(slices, *, source, classifier, segmenter, progress=None) -> SeriesPrediction
            (``classifier`` and ``segmenter`` are ``ModelVersionKey(name, version)``)
    engine_for(tracking_uri) -> InferenceEngine   (one per process and tracking URI)
    ModelVersionKey(name, version); ModelRef(name, version, is_demo)
    SeriesPrediction(slice_probabilities, series_class, series_probabilities,
                     lesion_slice_indices, indeterminate_reason, masks, classifier, segmenter, class_names, timings)
    tensorflow_thread_count() -> int; configure_tensorflow_threads() -> int

Process model: nothing here imports TensorFlow at module import. A model version loads on the first
``run_series`` that names it (so a Celery worker starts fast and a parent process that forks never
initialises TensorFlow) and stays in a bounded per-process cache (least recently used versions are
dropped beyond ``cached_versions``). Versions are always loaded by number, never through the
champion alias: an analysis runs exactly the versions recorded when it was queued, even when a new
champion is promoted while it waits.
TensorFlow's intra-op thread pool follows the process' CPU allotment (``os.sched_getaffinity``),
or ``RADASSIST_TF_THREADS`` where set.

How a series runs: slices are preprocessed with each model's own saved ``PreprocessingConfig``,
grouped into batches of exactly ``batch_size`` (the last one padded with zeros, so the compiled
graphs see a single shape and never retrace), and each network runs as
``tf.function(lambda x: model(x, training=False))`` with that fixed input signature. The next
batch is preprocessed on a helper thread while TensorFlow computes the current one.
``progress(done, total)`` is called after each batch.

Series-level class (aggregation rule): a tumour occupies a few slices of a series, so a plain
mean over all slices would almost always say "normal". The class is therefore read where the
lesion is: the lesion slices are those whose predicted mask has at least ``min_lesion_pixels``
pixels at the segmenter's resolution, and the series probabilities are the mean of the per-slice
class probabilities over those slices. When the segmenter finds no lesion on any slice, the mean
over all slices is used. The per-slice probabilities are calibrated with the classifier version's
temperature first, and the series result is marked indeterminate when the two networks disagree or
the probability of a tumour is too close to call (``ml.calibration``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ml.calibration import apply_temperature, indeterminate_reason
from ml.evaluation import MASK_THRESHOLD, native_resolution_masks
from ml.labels import CLASS_NAMES
from ml.preprocessing import Source, normalise_mr_volume, prepare_batch
from ml.registry import LoadedModel, load_version

THREADS_ENVIRONMENT_VARIABLE = "RADASSIST_TF_THREADS"
#: Compiled model versions one process keeps: the current pair and the pair before a promotion,
#: so analyses queued on either side of a promotion do not reload each other's models.
MODEL_CACHE_SIZE = 4


@dataclass(frozen=True)
class ModelVersionKey:
    """A registered model version by name and number (what an analysis records)."""

    name: str
    version: int


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int
    is_demo: bool


@dataclass(frozen=True)
class SeriesPrediction:
    slice_probabilities: np.ndarray  # float32 (slices, classes), in class_names order
    series_class: str
    series_probabilities: dict[str, float]
    lesion_slice_indices: list[int]
    #: Why the series result cannot be trusted as it stands ("" when it can): ml.calibration.
    indeterminate_reason: str
    masks: np.ndarray  # bool (slices, rows, columns) at the original resolution
    classifier: ModelRef
    segmenter: ModelRef
    class_names: tuple[str, ...] = CLASS_NAMES
    #: Seconds spent per stage over the series: "preprocess" (on the helper thread, overlapping the
    #: networks), "classify" and "segment" (mask resizing included); the pipeline records them.
    timings: dict[str, float] = field(default_factory=dict)


def tensorflow_thread_count() -> int:
    """CPUs this process may use: ``RADASSIST_TF_THREADS``, else the scheduler's affinity mask."""
    configured = os.environ.get(THREADS_ENVIRONMENT_VARIABLE)
    if configured:
        return max(1, int(configured))
    return len(os.sched_getaffinity(0))


def configure_tensorflow_threads() -> int:
    """Size TensorFlow's thread pools to the CPU allotment; must run before TensorFlow computes.

    If TensorFlow already started (its pools are fixed from then on) the call changes nothing.
    """
    import tensorflow as tf

    threads = tensorflow_thread_count()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    except RuntimeError:
        pass
    return threads


class _CompiledModel:
    """A loaded model with its graph compiled once for a fixed batch shape."""

    def __init__(self, loaded: LoadedModel, *, batch_size: int):
        import tensorflow as tf

        self.loaded = loaded
        self.ref = ModelRef(loaded.name, loaded.version, loaded.is_demo)
        config = loaded.preprocessing_config
        self.batch_shape = (batch_size, config.input_size, config.input_size, config.channels)
        model = loaded.keras_model
        self._call = tf.function(
            lambda batch: model(batch, training=False),
            input_signature=[tf.TensorSpec(self.batch_shape, tf.float32)],
        )

    def prepare(self, slices: Sequence[np.ndarray], *, source: Source) -> np.ndarray:
        batch = np.zeros(self.batch_shape, dtype=np.float32)
        batch[: len(slices)] = prepare_batch(
            slices, config=self.loaded.preprocessing_config, source=source
        )
        return batch

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self._call(batch).numpy()


class InferenceEngine:
    def __init__(
        self,
        *,
        tracking_uri: str,
        batch_size: int = 16,
        min_lesion_pixels: int = 4,
        cached_versions: int = MODEL_CACHE_SIZE,
    ):
        from cachetools import LRUCache

        self.tracking_uri = tracking_uri
        self.batch_size = batch_size
        self.min_lesion_pixels = min_lesion_pixels
        self._lock = threading.Lock()
        self._compiled: LRUCache = LRUCache(maxsize=cached_versions)

    def _compiled_version(self, key: ModelVersionKey) -> _CompiledModel:
        """The named version, loaded from the registry by number on first use (raises ModelNotRegistered)."""
        key = ModelVersionKey(key.name, int(key.version))
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                configure_tensorflow_threads()
                compiled = _CompiledModel(
                    load_version(key.name, key.version, tracking_uri=self.tracking_uri),
                    batch_size=self.batch_size,
                )
                self._compiled[key] = compiled
            return compiled

    @property
    def cached_versions(self) -> list[ModelVersionKey]:
        """The versions this process holds loaded."""
        with self._lock:
            return list(self._compiled.keys())

    def run_series(
        self,
        slices: Sequence[np.ndarray],
        *,
        source: Source,
        classifier: ModelVersionKey,
        segmenter: ModelVersionKey,
        progress: Callable[[int, int], None] | None = None,
    ) -> SeriesPrediction:
        if not len(slices):
            raise ValueError("a series needs at least one slice")
        shapes = {np.shape(array) for array in slices}
        if len(shapes) != 1:
            raise ValueError(f"all slices of a series must have one size, got {sorted(shapes)}")
        rows, columns = shapes.pop()
        if source == "mr":
            slices = normalise_mr_volume(slices)
        classifier = self._compiled_version(classifier)
        segmenter = self._compiled_version(segmenter)
        total = len(slices)
        starts = range(0, total, self.batch_size)

        timings = {"preprocess": 0.0, "classify": 0.0, "segment": 0.0}

        def prepare(start):
            clock = time.perf_counter()
            chunk = slices[start:start + self.batch_size]
            prepared = (classifier.prepare(chunk, source=source),
                        segmenter.prepare(chunk, source=source))
            timings["preprocess"] += time.perf_counter() - clock
            return prepared

        probabilities = np.empty((total, len(CLASS_NAMES)), dtype=np.float32)
        masks = np.empty((total, rows, columns), dtype=bool)
        lesion_pixels = np.empty(total, dtype=np.int64)
        with ThreadPoolExecutor(max_workers=1) as preparer:
            pending = preparer.submit(prepare, starts[0])
            for position, start in enumerate(starts):
                classifier_batch, segmenter_batch = pending.result()
                if position + 1 < len(starts):
                    pending = preparer.submit(prepare, starts[position + 1])
                count = min(self.batch_size, total - start)
                clock = time.perf_counter()
                probabilities[start:start + count] = apply_temperature(
                    classifier(classifier_batch)[:count], classifier.loaded.temperature)
                timings["classify"] += time.perf_counter() - clock
                clock = time.perf_counter()
                lesion_maps = segmenter(segmenter_batch)[:count, ..., 0]
                lesion_pixels[start:start + count] = (lesion_maps >= MASK_THRESHOLD).sum(axis=(1, 2))
                masks[start:start + count] = native_resolution_masks(lesion_maps, rows=rows, columns=columns)
                timings["segment"] += time.perf_counter() - clock
                if progress is not None:
                    progress(start + count, total)

        lesion_slices = np.flatnonzero(lesion_pixels >= self.min_lesion_pixels)
        chosen = probabilities[lesion_slices] if len(lesion_slices) else probabilities
        series_probabilities = chosen.mean(axis=0)
        return SeriesPrediction(
            slice_probabilities=probabilities,
            series_class=CLASS_NAMES[int(series_probabilities.argmax())],
            series_probabilities={
                name: float(value) for name, value in zip(CLASS_NAMES, series_probabilities, strict=True)
            },
            lesion_slice_indices=[int(index) for index in lesion_slices],
            indeterminate_reason=indeterminate_reason(
                tumour_probability=1.0 - float(series_probabilities[CLASS_NAMES.index("normal")]),
                lesion_found=bool(len(lesion_slices)),
            ),
            masks=masks,
            classifier=classifier.ref,
            segmenter=segmenter.ref,
            timings=timings,
        )


_engines: dict[str, InferenceEngine] = {}
_engines_lock = threading.Lock()


def engine_for(tracking_uri: str) -> InferenceEngine:
    """The process-wide engine for a tracking store (models load on its first use)."""
    with _engines_lock:
        if tracking_uri not in _engines:
            _engines[tracking_uri] = InferenceEngine(tracking_uri=tracking_uri)
        return _engines[tracking_uri]
