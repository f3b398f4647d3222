"""Inference benchmark: a naive per-slice loop, the float32 engine and the reduced-precision engine.

    .venv/bin/python bench/inference.py [--tracking-uri URI] [--slices 100]
                                        [--classifier-size 224] [--segmenter-size 128]
                                        [--batch-size 16] [--precision auto|bfloat16|float16]
                                        [--rounds 2]

Without ``--tracking-uri`` it is self-contained: a temporary MLflow store gets a classifier and a
segmenter trained for one epoch on a handful of phantoms at the requested input sizes (the
weights do not matter for speed), registered as champions. With it, the store's champions run.

All three paths run the same models over the same 100-slice 512 x 512 phantom series, after one
warm-up pass each. The naive path preprocesses one slice at a time and calls ``model.predict`` on
it for each network. The float32 engine is ``InferenceEngine(precision="float32")``; the
reduced-precision engine is ``InferenceEngine(precision=--precision)`` (``auto``: what this
hardware offers, ``ml.precision``), whose warm-up includes the agreement gate on each version's
reference batch. The three are timed in turn, round after round (``--rounds``), and each keeps
its best round, so a burst of load from other processes does not favour one path. Agreement is
printed twice: the gate's figures on the reference batches, and the two engines' outputs on the
benchmark series (same class per slice, largest probability difference, Dice of the
full-resolution masks). Peaks are this machine's dense matmul rates measured with
TensorFlow (best of several 2048 x 2048 products) in float32 and in the reduced type; an engine's
achieved rate is the networks' analytic forward FLOPs (``ml.networks.forward_flops``) times the
slices over its wall time, preprocessing and mask resizing included. The last line is
``ratio_vs_naive=<x> ratio_vs_float32=<y> precision=<mode> gate=pass|fail|none``: the best engine's
slices/s over the naive loop's and over the float32 engine's, the precision it ran in, and the
gate's verdict (``none`` when the hardware offers no reduced precision, so no gate ran).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure_matmul_flops(*, size: int = 2048, repeats: int = 10, dtype: str = "float32") -> float:
    import tensorflow as tf

    left = tf.cast(tf.random.normal((size, size)), dtype)
    right = tf.cast(tf.random.normal((size, size)), dtype)
    product = tf.function(lambda a, b: tf.linalg.matmul(a, b))
    product(left, right).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product(left, right).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def register_phantom_models(*, tracking_uri: str, work_dir: Path, classifier_size: int,
                            segmenter_size: int) -> None:
    from ml.phantoms import write_classification_dataset, write_segmentation_dataset
    from ml.training import train_classifier, train_segmenter

    classification = write_classification_dataset(
        work_dir / "classification", images_per_split={"train": 2, "valid": 1, "test": 1},
        size=classifier_size, seed=0)
    segmentation = write_segmentation_dataset(
        work_dir / "segmentation", patients=3, slices_per_patient=2, size=segmenter_size, seed=0)
    train_classifier(data_dir=classification, tracking_uri=tracking_uri,
                     input_size=classifier_size, epochs=1, fine_tune_epochs=0, batch_size=8,
                     demo=True)
    train_segmenter(data_dir=segmentation, tracking_uri=tracking_uri, input_size=segmenter_size,
                    epochs=1, batch_size=8, demo=True)


def naive_run(slices, *, classifier, segmenter) -> list:
    """What the engine replaces: preprocess and ``predict`` one slice at a time, per network."""
    import cv2
    import numpy as np

    from ml.preprocessing import prepare_slice

    masks = []
    for array in slices:
        classifier.keras_model.predict(
            prepare_slice(array, config=classifier.preprocessing_config,
                          source="hounsfield")[np.newaxis], verbose=0)
        lesion_map = segmenter.keras_model.predict(
            prepare_slice(array, config=segmenter.preprocessing_config,
                          source="hounsfield")[np.newaxis], verbose=0)[0, ..., 0]
        masks.append(
            cv2.resize(lesion_map, array.shape[::-1], interpolation=cv2.INTER_LINEAR) >= 0.5)
    return masks


def timed_engine_run(engine, series, *, versions):
    started = time.perf_counter()
    prediction = engine.run_series(series, source="hounsfield", **versions)
    return prediction, time.perf_counter() - started


def timed_naive_run(series, *, classifier, segmenter) -> float:
    started = time.perf_counter()
    naive_run(series, classifier=classifier, segmenter=segmenter)
    return time.perf_counter() - started


def series_agreement(float32, reduced) -> str:
    """The two engines' outputs on the benchmark series, in the gate's terms."""
    same_class = int((float32.slice_probabilities.argmax(axis=1)
                      == reduced.slice_probabilities.argmax(axis=1)).sum())
    difference = float(abs(float32.slice_probabilities - reduced.slice_probabilities).max())
    total = int(float32.masks.sum() + reduced.masks.sum())
    dice = 1.0 if total == 0 else 2.0 * int((float32.masks & reduced.masks).sum()) / total
    return (f"same class on {same_class}/{len(float32.masks)} slices, largest probability difference "
            f"{difference:.4f}, mask Dice {dice:.4f}, series class {float32.series_class} / "
            f"{reduced.series_class}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri")
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--classifier-size", type=int, default=224)
    parser.add_argument("--segmenter-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--precision", default="auto", choices=("auto", "bfloat16", "float16"))
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()

    from ml.inference import InferenceEngine, ModelVersionKey, configure_tensorflow_threads

    threads = configure_tensorflow_threads()
    from ml.networks import forward_flops
    from ml.phantoms import generate_phantom_series
    from ml.precision import FLOAT32
    from ml.registry import CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME, load_champion

    with tempfile.TemporaryDirectory(prefix="radassist-bench-") as work_dir:
        tracking_uri = arguments.tracking_uri
        if tracking_uri is None:
            tracking_uri = f"sqlite:///{Path(work_dir) / 'mlflow.db'}"
            started = time.perf_counter()
            register_phantom_models(tracking_uri=tracking_uri, work_dir=Path(work_dir),
                                    classifier_size=arguments.classifier_size,
                                    segmenter_size=arguments.segmenter_size)
            print(f"trained phantom models in {time.perf_counter() - started:.1f} s")
        classifier = load_champion(CLASSIFIER_MODEL_NAME, tracking_uri=tracking_uri)
        segmenter = load_champion(SEGMENTER_MODEL_NAME, tracking_uri=tracking_uri)
        flops_per_slice = forward_flops(classifier.keras_model) + forward_flops(
            segmenter.keras_model)
        versions = {"classifier": ModelVersionKey(classifier.name, classifier.version),
                    "segmenter": ModelVersionKey(segmenter.name, segmenter.version)}

        series = list(generate_phantom_series(label="squamous_cell_carcinoma",
                                              slices=arguments.slices, size=512,
                                              slice_spacing=1.25, seed=0).hounsfield)
        float32_engine = InferenceEngine(tracking_uri=tracking_uri, batch_size=arguments.batch_size,
                                         precision=FLOAT32)
        reduced_engine = InferenceEngine(tracking_uri=tracking_uri, batch_size=arguments.batch_size,
                                         precision=arguments.precision)
        mode = reduced_engine.precision_mode
        for engine in (float32_engine, reduced_engine):  # load, gate, trace
            engine.run_series(series[: arguments.batch_size], source="hounsfield", **versions)
        naive_run(series[:2], classifier=classifier, segmenter=segmenter)
        float32_seconds = reduced_seconds = naive_seconds = float("inf")
        for _ in range(arguments.rounds):
            float32_prediction, seconds = timed_engine_run(float32_engine, series, versions=versions)
            float32_seconds = min(float32_seconds, seconds)
            reduced_prediction, seconds = timed_engine_run(reduced_engine, series, versions=versions)
            reduced_seconds = min(reduced_seconds, seconds)
            naive_seconds = min(naive_seconds, timed_naive_run(
                series, classifier=classifier, segmenter=segmenter))

    float32_peak = measure_matmul_flops()
    reduced_peak = measure_matmul_flops(dtype=mode.precision)
    reports = reduced_engine.agreement_reports
    gate = "none" if not reports else "pass" if all(r.passed for r in reports.values()) else "fail"
    best_is_reduced = reduced_seconds < float32_seconds and gate == "pass"
    best_seconds = reduced_seconds if best_is_reduced else float32_seconds
    best_precision = reduced_prediction.precision if best_is_reduced else FLOAT32
    print(f"threads={threads} slices={arguments.slices} batch_size={arguments.batch_size} "
          f"best of {arguments.rounds} interleaved rounds")
    print(f"precision mode {mode.precision} (requested {arguments.precision}: {mode.reason}), "
          f"XLA {'on' if mode.jit_compile else 'off'}")
    print(f"classifier {classifier.name} v{classifier.version} input "
          f"{classifier.preprocessing_config.input_size}, segmenter {segmenter.name} "
          f"v{segmenter.version} input {segmenter.preprocessing_config.input_size}: "
          f"{flops_per_slice / 1e9:.2f} GFLOP per slice")
    print(f"matmul_peak_gflops float32={float32_peak / 1e9:.1f} {mode.precision}={reduced_peak / 1e9:.1f}")
    for name, seconds, peak in (("float32 engine", float32_seconds, float32_peak),
                                (f"{reduced_prediction.precision} engine", reduced_seconds, reduced_peak)):
        achieved = flops_per_slice * arguments.slices / seconds
        print(f"{name}: {seconds:.2f} s, {arguments.slices / seconds:.2f} slices/s, "
              f"{achieved / 1e9:.1f} GFLOP/s, {achieved / peak:.2f} of its matmul peak")
    print(f"naive: {naive_seconds:.2f} s, {arguments.slices / naive_seconds:.2f} slices/s")
    for (name, version), report in reports.items():
        print(f"gate {name} v{version}: {'pass' if report.passed else 'fail'}: {report.summary()}")
    print(f"series agreement float32 vs {reduced_prediction.precision}: "
          f"{series_agreement(float32_prediction, reduced_prediction)}")
    print(f"ratio_vs_naive={naive_seconds / best_seconds:.2f} "
          f"ratio_vs_float32={float32_seconds / best_seconds:.2f} precision={best_precision} gate={gate}")


if __name__ == "__main__":
    main()
