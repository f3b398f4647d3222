"""Both networks learn on a small phantom set, are registered, and run through the engine.

Sized for seconds-to-a-minute on two shared CPU cores: 32-pixel classifier inputs, a depth-3
U-Net with 8 base filters at 64 pixels. Training happens once for the module.
"""

import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ml.phantoms import write_classification_dataset, write_segmentation_dataset
    from ml.training import train_classifier, train_segmenter

    root = tmp_path_factory.mktemp("training")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    classification = write_classification_dataset(
        root / "classification", images_per_split={"train": 20, "valid": 6, "test": 10},
        size=64, seed=1,
    )
    segmentation = write_segmentation_dataset(root / "segmentation", patients=10,
                                              slices_per_patient=8, size=64, seed=0)
    classifier = train_classifier(
        data_dir=classification, tracking_uri=tracking_uri, input_size=32, epochs=12,
        fine_tune_epochs=1, batch_size=8, learning_rate=1e-4, patience=8, demo=True,
    )
    segmenter = train_segmenter(
        data_dir=segmentation, tracking_uri=tracking_uri, input_size=64, depth=3,
        base_filters=8, epochs=30, batch_size=8, learning_rate=3e-3, patience=30, demo=True,
    )
    return tracking_uri, classifier, segmenter


def test_classifier_learns_well_above_chance(trained):
    _, classifier, _ = trained
    # Four balanced classes, 40 test images: chance is 0.25, and 16 right by luck is a 2 % event.
    assert classifier.test_metrics["accuracy"] >= 0.4
    assert classifier.test_metrics["macro_auc_roc"] > 0.65
    assert classifier.is_champion and classifier.is_demo
    assert classifier.validation_metric == "accuracy"


def test_segmenter_learns_lesion_masks(trained):
    _, _, segmenter = trained
    assert segmenter.test_metrics["dice"] > 0.4
    assert len(segmenter.test_metrics["dice_per_case"]) == len(segmenter.test_metrics["patients"])
    assert segmenter.is_champion and segmenter.validation_metric == "dice"


def test_run_logs_evaluation_artifacts_and_metrics(trained):
    import mlflow

    tracking_uri, classifier, _ = trained
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(classifier.run_id)
    assert {"test_accuracy", "test_macro_auc_roc", "test_normal_specificity", "test_expected_calibration_error",
            "validation_accuracy", "loss", "val_loss"} <= set(run.data.metrics)
    assert {"seed", "tensorflow_version", "keras_version"} <= set(run.data.params)
    # The temperature fitted on validation is stored with the version and loaded with it.
    from ml.registry import load_version

    registry = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    stored = registry.get_model_version(classifier.name, str(classifier.version)).tags["temperature"]
    assert float(stored) == pytest.approx(run.data.metrics["temperature"]) and float(stored) > 0
    assert load_version(classifier.name, classifier.version, tracking_uri=tracking_uri).temperature == float(stored)
    artifacts = {item.path for item in client.list_artifacts(classifier.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/roc_curves.png",
            "evaluation/test_metrics.json"} <= artifacts
    assert len(client.get_metric_history(classifier.run_id, "loss")) >= 2


def test_engine_runs_a_series_in_fixed_batches(trained):
    from ml.inference import InferenceEngine, ModelVersionKey
    from ml.metrics import dice_per_case
    from ml.phantoms import generate_phantom_series

    tracking_uri, classifier, segmenter = trained
    phantom = generate_phantom_series(label="large_cell_carcinoma", slices=11, size=128,
                                      slice_spacing=5.0, seed=7)
    engine = InferenceEngine(tracking_uri=tracking_uri, batch_size=4)
    progress = []
    prediction = engine.run_series(list(phantom.hounsfield), source="hounsfield",
                                   classifier=ModelVersionKey(classifier.name, classifier.version),
                                   segmenter=ModelVersionKey(segmenter.name, segmenter.version),
                                   progress=lambda done, total: progress.append((done, total)))
    assert progress == [(4, 11), (8, 11), (11, 11)]
    assert prediction.slice_probabilities.shape == (11, 4)
    np.testing.assert_allclose(prediction.slice_probabilities.sum(axis=1), 1.0, rtol=1e-4)
    assert prediction.masks.shape == (11, 128, 128) and prediction.masks.dtype == bool
    assert sum(prediction.series_probabilities.values()) == pytest.approx(1.0, rel=1e-4)
    assert prediction.series_class in prediction.class_names
    assert (prediction.classifier.name, prediction.classifier.version) == (classifier.name,
                                                                          classifier.version)
    assert prediction.segmenter.version == segmenter.version and prediction.segmenter.is_demo
    # The masks come back at the original resolution and overlap the true lesion.
    assert dice_per_case(phantom.masks[np.newaxis], prediction.masks[np.newaxis])[0] > 0.3
    true_lesion_slices = set(np.flatnonzero(phantom.masks.any(axis=(1, 2))).tolist())
    assert set(prediction.lesion_slice_indices) & true_lesion_slices


def test_importing_the_pure_modules_does_not_start_tensorflow():
    code = (
        "import sys, ml.inference, ml.preprocessing, ml.measurements, ml.phantoms, ml.metrics;"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_both_train_from_a_folder_of_dicom_series_with_masks(trained, tmp_path):
    from ml.phantoms import write_dicom_training_series
    from ml.training import load_dicom_training_series, train_classifier, train_segmenter

    tracking_uri, classifier, segmenter = trained
    data_dir = write_dicom_training_series(tmp_path, series_per_label=2, slices=4, size=32)
    series = load_dicom_training_series(data_dir)
    assert len(series) == 8 and series["normal_000"].masks.shape == (4, 32, 32)
    # Plumbing only (one epoch); training never moves an existing champion.
    new_classifier = train_classifier(data_dir=data_dir, tracking_uri=tracking_uri, input_size=32,
                                      epochs=1, fine_tune_epochs=0, batch_size=8)
    new_segmenter = train_segmenter(data_dir=data_dir, tracking_uri=tracking_uri, input_size=32,
                                    depth=2, base_filters=4, epochs=1, batch_size=8)
    assert new_classifier.version == classifier.version + 1 and not new_classifier.is_champion
    assert new_segmenter.version == segmenter.version + 1 and not new_segmenter.is_champion
    assert new_classifier.test_metrics["confusion_matrix"]
