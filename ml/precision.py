"""Numeric precision for inference: what the hardware offers, the mode to run, and the agreement gate.

Public interface:
    FLOAT32, BFLOAT16, FLOAT16, PRECISIONS, AUTO; PRECISION_ENVIRONMENT_VARIABLE
    InvalidPrecisionSetting (ValueError)
    Hardware(cpu_flags, gpu_compute_capabilities, onednn_enabled); detect_hardware() -> Hardware
    cpu_flags(cpuinfo_path="/proc/cpuinfo") -> frozenset[str]
    PrecisionMode(precision, jit_compile, reason)
    requested_precision(environment=os.environ) -> str   (raises InvalidPrecisionSetting)
    choose_precision(*, requested, hardware) -> PrecisionMode
    reduced_precision_copy(model, *, precision) -> keras.Model
    AgreementReport(kind, slices, max_probability_difference, class_agreement, mask_dice, failures)
        .passed, .summary(); AgreementReport.not_run(reason)
    check_agreement(*, reference_outputs, candidate_outputs, mask_threshold=0.5) -> AgreementReport
    phantom_reference_inputs(config, *, slices=REFERENCE_BATCH_SLICES) -> np.ndarray
    reference_slices_from(inputs, *, slices=REFERENCE_BATCH_SLICES) -> np.ndarray | None
    describe_precisions(*, classifier, segmenter) -> str

Why: the networks are trained in float32, but the arithmetic units of recent hardware run bfloat16
(CPUs with AVX-512 BF16 or AMX, NVIDIA GPUs from Ampere) or float16 (NVIDIA tensor cores from Volta)
several times faster. Keras' mixed policies compute in the reduced type while keeping the weights in
float32; the output layers stay float32 so probabilities are computed and returned in full range.

A reduced-precision copy is never trusted on faith: before a model version runs in it, the engine
runs the version's reference batch (preprocessed inputs stored with the version at registration)
through both the float32 model and the copy, and ``check_agreement`` requires the same class on
every slice and probabilities within ``PROBABILITY_TOLERANCE`` (classifiers), or a Dice of at least
``MINIMUM_MASK_DICE`` between the two thresholded masks over the batch (segmenters). A version that
fails runs in float32.

Mode choice (``RADASSIST_INFERENCE_PRECISION``, default ``auto``): on an NVIDIA GPU, bfloat16 from
compute capability 8.0 (Ampere), float16 from 7.0 (Volta tensor cores), float32 below, each compiled
with XLA (``jit_compile``); on a CPU, bfloat16 where it has AMX or AVX-512 BF16 and TensorFlow's
oneDNN kernels are on (``TF_ENABLE_ONEDNN_OPTS`` not ``0``), float32 otherwise. A forced mode is
honoured on any hardware (the gate still checks it); ``float32`` turns reduced precision off.
Django-free; TensorFlow is imported only by the functions that need it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.preprocessing import PreprocessingConfig, prepare_batch

FLOAT32, BFLOAT16, FLOAT16 = "float32", "bfloat16", "float16"
PRECISIONS: tuple[str, ...] = (FLOAT32, BFLOAT16, FLOAT16)
AUTO = "auto"
PRECISION_ENVIRONMENT_VARIABLE = "RADASSIST_INFERENCE_PRECISION"
ONEDNN_ENVIRONMENT_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
MIXED_POLICIES = {BFLOAT16: "mixed_bfloat16", FLOAT16: "mixed_float16"}
#: CPU flags (``/proc/cpuinfo``) of units that compute bfloat16 dot products natively.
BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
BFLOAT16_GPU_CAPABILITY = (8, 0)
FLOAT16_GPU_CAPABILITY = (7, 0)

#: The agreement gate's limits (issue 18): same class on every slice, probabilities within 0.01,
#: mask Dice at least 0.99.
PROBABILITY_TOLERANCE = 0.01
MINIMUM_MASK_DICE = 0.99
REFERENCE_BATCH_SLICES = 16
#: Phantom reference batch: each class's series, cut through its lesion, at this matrix size.
PHANTOM_REFERENCE_SIZE = 256
PHANTOM_REFERENCE_SEED = 18


class InvalidPrecisionSetting(ValueError):
    """``RADASSIST_INFERENCE_PRECISION`` holds a value that is not a precision mode."""


@dataclass(frozen=True)
class Hardware:
    cpu_flags: frozenset[str]
    #: (major, minor) compute capability of each visible NVIDIA GPU; empty without one.
    gpu_compute_capabilities: tuple[tuple[int, int], ...] = ()
    onednn_enabled: bool = True

    @property
    def cpu_has_bfloat16(self) -> bool:
        return bool(self.cpu_flags & BFLOAT16_CPU_FLAGS)


@dataclass(frozen=True)
class PrecisionMode:
    precision: str  # one of PRECISIONS
    jit_compile: bool  # compile the forward pass with XLA (GPUs)
    reason: str  # why this mode, for the worker's log


def cpu_flags(cpuinfo_path: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU listed; empty where the file does not exist."""
    try:
        text = Path(cpuinfo_path).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def detect_hardware() -> Hardware:
    """This process' CPU flags, its visible NVIDIA GPUs and whether oneDNN kernels are on."""
    import tensorflow as tf

    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return Hardware(
        cpu_flags=cpu_flags(),
        gpu_compute_capabilities=tuple(capabilities),
        onednn_enabled=os.environ.get(ONEDNN_ENVIRONMENT_VARIABLE, "1") != "0",
    )


def requested_precision(environment: Mapping[str, str] = os.environ) -> str:
    value = environment.get(PRECISION_ENVIRONMENT_VARIABLE, AUTO).strip().lower() or AUTO
    if value not in (*PRECISIONS, AUTO):
        raise InvalidPrecisionSetting(
            f"{PRECISION_ENVIRONMENT_VARIABLE} must be one of {', '.join((*PRECISIONS, AUTO))}; "
            f"got {value!r}"
        )
    return value


def choose_precision(*, requested: str, hardware: Hardware) -> PrecisionMode:
    if requested not in (*PRECISIONS, AUTO):
        raise InvalidPrecisionSetting(f"unknown precision {requested!r}")
    on_gpu = bool(hardware.gpu_compute_capabilities)
    if requested != AUTO:
        return PrecisionMode(requested, on_gpu, f"{PRECISION_ENVIRONMENT_VARIABLE}={requested}")
    if on_gpu:
        capability = min(hardware.gpu_compute_capabilities)
        if capability >= BFLOAT16_GPU_CAPABILITY:
            return PrecisionMode(BFLOAT16, True, f"NVIDIA GPU with compute capability {capability}")
        if capability >= FLOAT16_GPU_CAPABILITY:
            return PrecisionMode(FLOAT16, True, f"NVIDIA GPU with compute capability {capability}")
        return PrecisionMode(FLOAT32, True, f"NVIDIA GPU {capability} has no fast reduced precision")
    if hardware.cpu_has_bfloat16 and hardware.onednn_enabled:
        flags = ", ".join(sorted(hardware.cpu_flags & BFLOAT16_CPU_FLAGS))
        return PrecisionMode(BFLOAT16, False, f"CPU with {flags} and oneDNN")
    if hardware.cpu_has_bfloat16:
        return PrecisionMode(FLOAT32, False, f"oneDNN is off ({ONEDNN_ENVIRONMENT_VARIABLE}=0)")
    return PrecisionMode(FLOAT32, False, "no GPU and no bfloat16 unit on the CPU")


def reduced_precision_copy(model, *, precision: str):
    """A copy of a float32 Keras model computing in ``precision``, with the same weights.

    Every layer (nested models included) gets the mixed policy except the model's own output
    layers, which stay float32: their inputs are cast up, so the softmax or sigmoid and the
    probabilities it returns are computed in full precision.
    """
    import keras

    if precision not in MIXED_POLICIES:
        raise ValueError(f"no reduced-precision policy for {precision!r}")
    output_names = set(model.output_names)

    def with_policy(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        policy = FLOAT32 if layer.name in output_names else MIXED_POLICIES[precision]
        return layer.__class__.from_config({**layer.get_config(), "dtype": keras.DTypePolicy(policy)})

    copy = keras.models.clone_model(model, clone_function=with_policy, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


@dataclass(frozen=True)
class AgreementReport:
    """How a reduced-precision model's outputs compare with its float32 outputs on a reference batch."""

    kind: str  # "classifier", "segmenter", or "none" when the copy could not run
    slices: int
    max_probability_difference: float
    class_agreement: int | None = None  # slices with the same class (classifiers)
    mask_dice: float | None = None  # Dice of the thresholded masks over the batch (segmenters)
    failures: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def not_run(cls, reason: str) -> AgreementReport:
        """A failed gate for a copy that could not even be built or run."""
        return cls("none", 0, float("nan"), failures=(reason,))

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if not self.slices:
            return f"failed: {'; '.join(self.failures)}"
        if self.kind == "classifier":
            figures = (f"same class on {self.class_agreement}/{self.slices} slices, largest probability "
                       f"difference {self.max_probability_difference:.4f}")
        else:
            figures = (f"mask Dice {self.mask_dice:.4f} over {self.slices} slices, largest pixel "
                       f"probability difference {self.max_probability_difference:.4f}")
        return figures if self.passed else f"{figures}; failed: {'; '.join(self.failures)}"


def check_agreement(
    *, reference_outputs: np.ndarray, candidate_outputs: np.ndarray, mask_threshold: float = 0.5
) -> AgreementReport:
    """Compare float32 outputs with reduced-precision ones by the gate's rules.

    Outputs of shape (slices, classes) are a classifier's probabilities; any other shape is a
    segmenter's probability maps, thresholded at ``mask_threshold``. Non-finite outputs fail.
    """
    reference = np.asarray(reference_outputs, dtype=np.float64)
    candidate = np.asarray(candidate_outputs, dtype=np.float64)
    if reference.shape != candidate.shape:
        raise ValueError(f"outputs differ in shape: {reference.shape} and {candidate.shape}")
    failures = []
    if not np.isfinite(candidate).all():
        failures.append("the reduced-precision outputs contain NaN or infinity")
    difference = float(np.nan_to_num(np.abs(reference - candidate), nan=np.inf).max())
    if reference.ndim == 2:
        same_class = int((reference.argmax(axis=1) == candidate.argmax(axis=1)).sum())
        if same_class != len(reference):
            failures.append(f"the class differs on {len(reference) - same_class} slices")
        if difference > PROBABILITY_TOLERANCE:
            failures.append(f"a probability differs by {difference:.4f} (limit {PROBABILITY_TOLERANCE})")
        return AgreementReport("classifier", len(reference), difference, class_agreement=same_class,
                               failures=tuple(failures))
    reference_mask = reference >= mask_threshold
    candidate_mask = candidate >= mask_threshold
    total = int(reference_mask.sum() + candidate_mask.sum())
    dice = 1.0 if total == 0 else 2.0 * int((reference_mask & candidate_mask).sum()) / total
    if dice < MINIMUM_MASK_DICE:
        failures.append(f"mask Dice {dice:.4f} is below {MINIMUM_MASK_DICE}")
    return AgreementReport("segmenter", len(reference), difference, mask_dice=dice,
                           failures=tuple(failures))


def phantom_reference_inputs(
    config: PreprocessingConfig, *, slices: int = REFERENCE_BATCH_SLICES
) -> np.ndarray:
    """A deterministic reference batch: phantom slices of every class through their lesions (a brain
    MR phantom for MR configurations).

    Used for versions registered without inputs of their own (and for those registered before
    reference batches were stored); the same config always gives the same batch.
    """
    from ml.phantoms import PHANTOM_LABELS, generate_phantom_series

    if config.intensity == "mr_volume":
        return _brain_phantom_reference_inputs(config, slices=slices)
    per_label = -(-slices // len(PHANTOM_LABELS))
    arrays = []
    for offset, label in enumerate(PHANTOM_LABELS):
        phantom = generate_phantom_series(label=label, slices=per_label, size=PHANTOM_REFERENCE_SIZE,
                                          slice_spacing=4.0, seed=PHANTOM_REFERENCE_SEED + offset)
        arrays.extend(phantom.hounsfield)
    return prepare_batch(arrays[:slices], config=config, source="hounsfield")


def _brain_phantom_reference_inputs(config: PreprocessingConfig, *, slices: int) -> np.ndarray:
    """MR configurations: the first sequence of a brain phantom with a tumour, normalised per volume."""
    from ml.brain_phantoms import generate_brain_phantom
    from ml.preprocessing import normalise_mr_volume

    phantom = generate_brain_phantom(slices=slices, size=PHANTOM_REFERENCE_SIZE // 2, with_tumour=True,
                                     seed=PHANTOM_REFERENCE_SEED)
    volume = next(iter(phantom.images.values()))
    return prepare_batch(normalise_mr_volume(list(volume)), config=config, source="mr")


def reference_slices_from(
    inputs: np.ndarray | None, *, slices: int = REFERENCE_BATCH_SLICES
) -> np.ndarray | None:
    """Up to ``slices`` evenly spaced inputs of a prepared set (e.g. validation), None when empty."""
    if inputs is None or not len(inputs):
        return None
    chosen = np.unique(np.linspace(0, len(inputs) - 1, num=min(slices, len(inputs))).round().astype(int))
    return np.asarray(inputs[chosen], dtype=np.float32)


def describe_precisions(*, classifier: str, segmenter: str) -> str:
    """The precision an analysis ran in: one name, or each network's where they differ."""
    if classifier == segmenter:
        return classifier
    return f"classifier {classifier}, segmenter {segmenter}"
