"""Inference benchmark: the batched engine against a naive per-slice ``model.predict`` loop.

    .venv/bin/python bench/inference.py [--tracking-uri URI] [--slices 100]
                                        [--classifier-size 224] [--segmenter-size 128]

Without ``--tracking-uri`` it is self-contained: a temporary MLflow store gets a classifier and a
segmenter trained for one epoch on a handful of phantoms at the requested input sizes (the
weights do not matter for speed), registered as champions. With it, the store's champions run.

Both paths run the same models over the same 100-slice 512 x 512 phantom series, after one warm-up
pass each. The naive path preprocesses one slice at a time and calls ``model.predict`` on it for
each network. Peak is this machine's dense float32 matmul rate measured with TensorFlow (best of
several 2048 x 2048 products). The engine's achieved rate is the networks' analytic forward FLOPs
(``ml.networks.forward_flops``) times the slices, over the engine's wall time, which includes
preprocessing and resizing the masks back. The last line is
``ratio_vs_naive=<engine slices/s over naive slices/s> efficiency_vs_peak=<achieved over peak>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def measure_matmul_flops(*, size: int = 2048, repeats: int = 10) -> float:
    import tensorflow as tf

    left = tf.random.normal((size, size))
    right = tf.random.normal((size, size))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri")
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--classifier-size", type=int, default=224)
    parser.add_argument("--segmenter-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    arguments = parser.parse_args()

    from ml.inference import InferenceEngine, ModelVersionKey, configure_tensorflow_threads

    threads = configure_tensorflow_threads()
    from ml.networks import forward_flops
    from ml.phantoms import generate_phantom_series
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

        series = list(generate_phantom_series(label="squamous_cell_carcinoma",
                                              slices=arguments.slices, size=512,
                                              slice_spacing=1.25, seed=0).hounsfield)
        engine = InferenceEngine(tracking_uri=tracking_uri, batch_size=arguments.batch_size)
        versions = {"classifier": ModelVersionKey(classifier.name, classifier.version),
                    "segmenter": ModelVersionKey(segmenter.name, segmenter.version)}
        engine.run_series(series[: arguments.batch_size], source="hounsfield", **versions)  # load + trace
        started = time.perf_counter()
        prediction = engine.run_series(series, source="hounsfield", **versions)
        engine_seconds = time.perf_counter() - started

        naive_run(series[:2], classifier=classifier, segmenter=segmenter)  # warm-up
        started = time.perf_counter()
        naive_run(series, classifier=classifier, segmenter=segmenter)
        naive_seconds = time.perf_counter() - started

    peak = measure_matmul_flops()
    engine_rate = arguments.slices / engine_seconds
    naive_rate = arguments.slices / naive_seconds
    achieved = flops_per_slice * arguments.slices / engine_seconds
    print(f"threads={threads} slices={arguments.slices} batch_size={arguments.batch_size}")
    print(f"classifier {prediction.classifier.name} v{prediction.classifier.version} "
          f"input {classifier.preprocessing_config.input_size}, segmenter "
          f"{prediction.segmenter.name} v{prediction.segmenter.version} input "
          f"{segmenter.preprocessing_config.input_size}: {flops_per_slice / 1e9:.2f} GFLOP per slice")
    print(f"matmul_peak_gflops={peak / 1e9:.1f}")
    print(f"engine: {engine_seconds:.2f} s, {engine_rate:.2f} slices/s, {achieved / 1e9:.1f} GFLOP/s")
    print(f"naive:  {naive_seconds:.2f} s, {naive_rate:.2f} slices/s")
    print(f"ratio_vs_naive={engine_rate / naive_rate:.2f} efficiency_vs_peak={achieved / peak:.2f}")


if __name__ == "__main__":
    main()
