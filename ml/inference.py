"""The inference engine: two named model versions over a whole series, in fixed-size batches.

Public interface:
    InferenceEngine(*, tracking_uri, batch_size=16, min_lesion_pixels=4,
                    cached_versions=MODEL_CACHE_SIZE, precision=None)
        .run_series(slices, *, source, classifier, segmenter, progress=None) -> SeriesPrediction
            (``classifier`` and ``segmenter`` are ``ModelVersionKey(name, version)``)
        .precision_mode -> ml.precision.PrecisionMode; .agreement_reports -> {(name, version): report}
    engine_for(tracking_uri) -> InferenceEngine   (one per process and tracking URI)
    ModelVersionKey(name, version); ModelRef(name, version, is_demo)
    SeriesPrediction(slice_probabilities, series_class, series_probabilities,
                     lesion_slice_indices, indeterminate_reason, masks, classifier, segmenter, precision,
                     class_names, timings)
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

Numeric precision (``ml.precision``): the engine runs in the mode ``precision`` names, or
``RADASSIST_INFERENCE_PRECISION`` (default ``auto``: what the hardware runs fastest). A version
that is to run in bfloat16 or float16 is first checked once by the agreement gate on its reference
batch (stored with the version, or a phantom batch for older versions), and runs in float32 when
it fails; the gate's decision is kept per version for the life of the process, and logged. The
gate compares the networks' raw outputs (the classifier's before its temperature). Each
``SeriesPrediction`` names the precision both networks ran in.


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

import logging
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
from ml.precision import (
    FLOAT32,
    AgreementReport,
    InvalidPrecisionSetting,
    PrecisionMode,
    check_agreement,
    choose_precision,
    describe_precisions,
    detect_hardware,
    phantom_reference_inputs,
    reduced_precision_copy,
    requested_precision,
)
from ml.preprocessing import Source, normalise_mr_volume, prepare_batch
from ml.registry import LoadedModel, load_reference_batch, load_version

logger = logging.getLogger(__name__)

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
    #: The numeric precision the networks ran in (``ml.precision.describe_precisions``).
    precision: str
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
    """A loaded model with its graph compiled once for a fixed batch shape.

    ``keras_model`` replaces the loaded float32 model (a reduced-precision copy of it); its inputs
    and outputs are float32 either way.
    """

    def __init__(self, loaded: LoadedModel, *, batch_size: int, keras_model=None,
                 precision: str = FLOAT32, jit_compile: bool = False):
        import tensorflow as tf

        self.loaded = loaded
        self.precision = precision
        self.ref = ModelRef(loaded.name, loaded.version, loaded.is_demo)
        config = loaded.preprocessing_config
        self.batch_shape = (batch_size, config.input_size, config.input_size, config.channels)
        model = keras_model if keras_model is not None else loaded.keras_model
        self._call = tf.function(
            lambda batch: tf.cast(model(batch, training=False), tf.float32),
            input_signature=[tf.TensorSpec(self.batch_shape, tf.float32)],
            jit_compile=jit_compile,
        )

    def predict_all(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs for any number of prepared inputs, in the compiled batch shape."""
        size = self.batch_shape[0]
        outputs = []
        for start in range(0, len(inputs), size):
            batch = np.zeros(self.batch_shape, dtype=np.float32)
            chunk = inputs[start:start + size]
            batch[: len(chunk)] = chunk
            outputs.append(self(batch)[: len(chunk)])
        return np.concatenate(outputs)

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
        precision: str | None = None,
    ):
        from cachetools import LRUCache

        self.tracking_uri = tracking_uri
        self.requested_precision = precision
        self.batch_size = batch_size
        self.min_lesion_pixels = min_lesion_pixels
        self._lock = threading.Lock()
        self._compiled: LRUCache = LRUCache(maxsize=cached_versions)
        self._precision_mode: PrecisionMode | None = None
        #: The agreement gate's verdict per (model name, version), kept for the process' life: a version
        #: dropped from the cache and loaded again is not checked again.
        self.agreement_reports: dict[tuple[str, int], AgreementReport] = {}

    def _compiled_version(self, key: ModelVersionKey) -> _CompiledModel:
        """The named version, loaded from the registry by number on first use (raises ModelNotRegistered)."""
        key = ModelVersionKey(key.name, int(key.version))
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is None:
                configure_tensorflow_threads()
                compiled = self._compile_in_chosen_precision(
                    load_version(key.name, key.version, tracking_uri=self.tracking_uri))
                self._compiled[key] = compiled
            return compiled

    @property
    def precision_mode(self) -> PrecisionMode:
        """The mode asked for (argument, else environment) on this hardware; decided once.

        A mistyped setting runs float32, the mode every model version supports, and is logged.
        """
        if self._precision_mode is None:
            try:
                requested = self.requested_precision or requested_precision()
            except InvalidPrecisionSetting as error:
                logger.error("%s; running in float32 (manage.py check reports it too)", str(error))
                requested = FLOAT32
            self._precision_mode = choose_precision(requested=requested, hardware=detect_hardware())
            logger.info("inference precision %s (%s)", self._precision_mode.precision,
                        self._precision_mode.reason)
        return self._precision_mode

    def _compile_in_chosen_precision(self, loaded: LoadedModel) -> _CompiledModel:
        """The version compiled in the engine's precision if the agreement gate accepts it, else float32."""
        mode = self.precision_mode
        float32 = _CompiledModel(loaded, batch_size=self.batch_size, jit_compile=mode.jit_compile)
        if mode.precision == FLOAT32:
            return float32
        key = (loaded.name, loaded.version)
        report = self.agreement_reports.get(key)
        if report is not None and not report.passed:
            return float32
        try:
            reduced = _CompiledModel(
                loaded, batch_size=self.batch_size, precision=mode.precision, jit_compile=mode.jit_compile,
                keras_model=reduced_precision_copy(loaded.keras_model, precision=mode.precision),
            )
            if report is None:
                reference = self._reference_inputs(loaded)
                report = check_agreement(reference_outputs=float32.predict_all(reference),
                                         candidate_outputs=reduced.predict_all(reference),
                                         mask_threshold=MASK_THRESHOLD)
        except Exception as error:  # a layer or kernel without the reduced type must not fail analyses
            report = AgreementReport.not_run(f"{mode.precision} could not run: {error}")
        if key not in self.agreement_reports:
            self.agreement_reports[key] = report
            if report.passed:
                logger.info("%s version %s runs in %s: agreement gate passed (%s)", loaded.name,
                            loaded.version, mode.precision, report.summary())
            else:
                logger.warning("%s version %s runs in float32: %s failed the agreement gate (%s)",
                               loaded.name, loaded.version, mode.precision, report.summary())
        return reduced if report.passed else float32

    def _reference_inputs(self, loaded: LoadedModel) -> np.ndarray:
        """The version's stored reference batch, or the phantom batch for its preprocessing."""
        stored = load_reference_batch(loaded.name, loaded.version, tracking_uri=self.tracking_uri)
        if stored is not None:
            logger.info("%s version %s: agreement gate on its stored reference batch (%d %s slices)",
                        loaded.name, loaded.version, len(stored.inputs), stored.source)
            return stored.inputs
        logger.info("%s version %s has no stored reference batch: the agreement gate uses a "
                    "deterministic phantom batch", loaded.name, loaded.version)
        return phantom_reference_inputs(loaded.preprocessing_config)

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
            precision=describe_precisions(classifier=classifier.precision,
                                          segmenter=segmenter.precision),
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
