"""Reduced-precision inference: the mode choice, the reduced copy, and the agreement gate that guards it."""

import logging

import numpy as np
import pytest

from ml.precision import (
    BFLOAT16,
    FLOAT16,
    FLOAT32,
    Hardware,
    InvalidPrecisionSetting,
    check_agreement,
    choose_precision,
    cpu_flags,
    describe_precisions,
    reduced_precision_copy,
    reference_slices_from,
    requested_precision,
)
from ml.registry import CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME, load_champion, load_reference_batch

MODEL_NAMES = (CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME)


def _versions():
    from ml.inference import ModelVersionKey

    return {"classifier": ModelVersionKey(CLASSIFIER_MODEL_NAME, 1),
            "segmenter": ModelVersionKey(SEGMENTER_MODEL_NAME, 1)}


@pytest.mark.parametrize(
    ("hardware", "expected", "jit_compile"),
    [
        (Hardware(cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"})), BFLOAT16, False),
        (Hardware(cpu_flags=frozenset({"avx512f", "amx_bf16", "amx_tile"})), BFLOAT16, False),
        (Hardware(cpu_flags=frozenset({"avx2", "avx512f"})), FLOAT32, False),
        (Hardware(cpu_flags=frozenset({"avx512_bf16"}), onednn_enabled=False), FLOAT32, False),
        (Hardware(cpu_flags=frozenset(), gpu_compute_capabilities=((9, 0),)), BFLOAT16, True),
        (Hardware(cpu_flags=frozenset(), gpu_compute_capabilities=((7, 5),)), FLOAT16, True),
        (Hardware(cpu_flags=frozenset(), gpu_compute_capabilities=((6, 1),)), FLOAT32, True),
    ],
)
def test_auto_picks_the_fastest_mode_the_hardware_has(hardware, expected, jit_compile):
    mode = choose_precision(requested="auto", hardware=hardware)
    assert (mode.precision, mode.jit_compile) == (expected, jit_compile)
    assert mode.reason


def test_a_forced_mode_is_honoured_and_an_unknown_one_refused():
    bfloat16_cpu = Hardware(cpu_flags=frozenset({"avx512_bf16"}))
    assert requested_precision({}) == "auto"
    assert requested_precision({"RADASSIST_INFERENCE_PRECISION": " Float32 "}) == FLOAT32
    forced = choose_precision(requested=requested_precision({"RADASSIST_INFERENCE_PRECISION": "float32"}),
                              hardware=bfloat16_cpu)
    assert forced.precision == FLOAT32 and "RADASSIST_INFERENCE_PRECISION=float32" in forced.reason
    with pytest.raises(InvalidPrecisionSetting, match="must be one of float32, bfloat16, float16, auto"):
        requested_precision({"RADASSIST_INFERENCE_PRECISION": "int8"})


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_reference_slices_are_evenly_spaced_and_none_without_inputs():
    inputs = np.arange(40, dtype=np.float32).reshape(40, 1)
    chosen = reference_slices_from(inputs, slices=5)
    assert chosen[:, 0].tolist() == [0, 10, 20, 29, 39]
    assert reference_slices_from(inputs[:0]) is None


def test_precisions_are_named_once_when_both_networks_agree():
    assert describe_precisions(classifier=BFLOAT16, segmenter=BFLOAT16) == BFLOAT16
    assert describe_precisions(classifier=BFLOAT16, segmenter=FLOAT32) == "classifier bfloat16, segmenter float32"


@pytest.fixture(scope="module")
def champions(tiny_model_store):
    return {name: load_champion(name, tracking_uri=tiny_model_store) for name in MODEL_NAMES}


def test_the_reduced_copy_computes_in_bfloat16_with_float32_outputs_and_the_same_weights(champions):
    model = champions[SEGMENTER_MODEL_NAME].keras_model
    copy = reduced_precision_copy(model, precision=BFLOAT16)
    policies = {layer.name: layer.dtype_policy.name for layer in copy.layers}
    assert policies["lesion_probability"] == FLOAT32
    assert policies["encoder0_conv1"] == "mixed_bfloat16"
    for original, copied in zip(model.get_weights(), copy.get_weights(), strict=True):
        np.testing.assert_array_equal(original, copied)
    output = copy(np.zeros((1, 16, 16, 3), dtype=np.float32), training=False)
    assert output.dtype.name == FLOAT32


def _outputs(model, inputs):
    return np.asarray(model(inputs, training=False), dtype=np.float32)


def _perturbed(model, *, seed=0):
    """The model with noise of a third of each weight tensor's spread added: a broken conversion."""
    rng = np.random.default_rng(seed)
    model.set_weights([
        weights + rng.normal(0.0, 0.3 * (float(weights.std()) or 1.0), weights.shape).astype(weights.dtype)
        for weights in model.get_weights()
    ])
    return model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_gate_accepts_the_real_reduced_model_and_rejects_a_broken_one(champions, tiny_model_store, name):
    model = champions[name].keras_model
    reference = load_reference_batch(name, 1, tracking_uri=tiny_model_store)
    assert reference.source == "phantoms" and len(reference.inputs) == 16
    float32_outputs = _outputs(model, reference.inputs)

    real = check_agreement(reference_outputs=float32_outputs,
                           candidate_outputs=_outputs(reduced_precision_copy(model, precision=BFLOAT16),
                                                      reference.inputs))
    assert real.passed, real.summary()

    broken = check_agreement(
        reference_outputs=float32_outputs,
        candidate_outputs=_outputs(_perturbed(reduced_precision_copy(model, precision=BFLOAT16)),
                                   reference.inputs))
    assert not broken.passed
    assert "failed:" in broken.summary()


def test_the_gate_refuses_nan_and_a_single_changed_class():
    reference = np.array([[0.7, 0.3], [0.2, 0.8]])
    flipped = check_agreement(reference_outputs=reference, candidate_outputs=np.array([[0.7, 0.3], [0.8, 0.2]]))
    assert flipped.class_agreement == 1 and "the class differs on 1 slices" in flipped.failures
    nan = check_agreement(reference_outputs=reference, candidate_outputs=np.array([[0.7, 0.3], [np.nan, 0.8]]))
    assert not nan.passed and "NaN" in nan.summary()


def _engine(tracking_uri, **options):
    from ml.inference import InferenceEngine

    return InferenceEngine(tracking_uri=tracking_uri, batch_size=4, **options)


def _series():
    from ml.phantoms import generate_phantom_series

    return list(generate_phantom_series(label="adenocarcinoma", slices=5, size=48, seed=1).hounsfield)


def test_the_engine_runs_in_bfloat16_after_the_gate_and_keeps_the_decision(tiny_model_store, monkeypatch):
    import ml.inference

    engine = _engine(tiny_model_store, precision=BFLOAT16)
    prediction = engine.run_series(_series(), source="hounsfield", **_versions())
    assert prediction.precision == BFLOAT16
    assert {key[0] for key in engine.agreement_reports} == set(MODEL_NAMES)
    assert all(report.passed for report in engine.agreement_reports.values())

    def gate_must_not_run_again(**_):
        raise AssertionError("the gate ran twice for one version")

    monkeypatch.setattr(ml.inference, "check_agreement", gate_must_not_run_again)
    reloaded = engine._compile_in_chosen_precision(load_champion(SEGMENTER_MODEL_NAME, tracking_uri=tiny_model_store))
    assert reloaded.precision == BFLOAT16


def test_a_version_that_fails_the_gate_runs_in_float32_and_the_log_says_why(tiny_model_store, monkeypatch, caplog):
    import ml.inference

    def broken_segmenter_copy(model, *, precision):
        copy = reduced_precision_copy(model, precision=precision)
        return _perturbed(copy) if model.name == "radassist_segmenter" else copy

    monkeypatch.setattr(ml.inference, "reduced_precision_copy", broken_segmenter_copy)
    monkeypatch.setattr(ml.inference, "load_reference_batch", lambda *arguments, **options: None)
    with caplog.at_level(logging.INFO, logger="ml.inference"):
        engine = _engine(tiny_model_store, precision=BFLOAT16)
        prediction = engine.run_series(_series(), source="hounsfield", **_versions())
    assert prediction.precision == "classifier bfloat16, segmenter float32"
    assert "has no stored reference batch: the agreement gate uses a deterministic phantom batch" in caplog.text
    assert "radassist-segmenter version 1 runs in float32: bfloat16 failed the agreement gate" in caplog.text


def test_forcing_float32_runs_float32_without_a_gate(tiny_model_store, monkeypatch):
    monkeypatch.setenv("RADASSIST_INFERENCE_PRECISION", "float32")
    engine = _engine(tiny_model_store)
    prediction = engine.run_series(_series(), source="hounsfield", **_versions())
    assert prediction.precision == FLOAT32
    assert engine.precision_mode.precision == FLOAT32
    assert engine.agreement_reports == {}


def test_a_mistyped_setting_runs_float32_and_is_logged(tiny_model_store, monkeypatch, caplog):
    monkeypatch.setenv("RADASSIST_INFERENCE_PRECISION", "bf16")
    with caplog.at_level(logging.ERROR, logger="ml.inference"):
        assert _engine(tiny_model_store).precision_mode.precision == FLOAT32
    assert "RADASSIST_INFERENCE_PRECISION must be one of" in caplog.text


def test_a_copy_that_cannot_be_built_runs_float32(champions, tiny_model_store, monkeypatch, caplog):
    import ml.inference

    def no_reduced_kernel(model, *, precision):
        raise RuntimeError("no bfloat16 kernel for Conv2D")

    monkeypatch.setattr(ml.inference, "reduced_precision_copy", no_reduced_kernel)
    engine = _engine(tiny_model_store, precision=BFLOAT16)
    with caplog.at_level(logging.WARNING, logger="ml.inference"):
        compiled = engine._compile_in_chosen_precision(champions[CLASSIFIER_MODEL_NAME])
    assert compiled.precision == FLOAT32
    assert "bfloat16 could not run: no bfloat16 kernel for Conv2D" in caplog.text
