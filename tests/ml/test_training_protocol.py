"""Training guards and reproducibility, on data small enough for seconds on two shared cores."""

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY_SEGMENTER = {"input_size": 16, "depth": 1, "base_filters": 4, "batch_size": 4}


@pytest.fixture(scope="module")
def segmentation_data(tmp_path_factory):
    from ml.phantoms import write_segmentation_dataset

    return write_segmentation_dataset(tmp_path_factory.mktemp("lgg"), patients=4, slices_per_patient=3, size=32,
                                      seed=0)


def registered_versions(tracking_uri, name):
    import mlflow

    return mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri).search_model_versions(f"name='{name}'")


def test_same_seed_and_data_give_the_same_model_metrics(segmentation_data, tmp_path):
    from ml.training import train_segmenter

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = [
        train_segmenter(data_dir=segmentation_data, tracking_uri=tracking_uri, epochs=3, learning_rate=1e-2,
                        seed=5, augment=True, **TINY_SEGMENTER)
        for _ in range(2)
    ]
    first, second = (run.test_metrics for run in runs)
    assert runs[0].validation_score == pytest.approx(runs[1].validation_score, abs=1e-6)
    assert first["patients"] == second["patients"]
    np.testing.assert_allclose(first["dice_per_case"], second["dice_per_case"], atol=1e-6)
    assert not runs[0].is_champion and not runs[1].is_champion, "a real model is never promoted by training"


def test_every_vgg_layer_starts_from_its_own_seed():
    from ml.networks import VGG16_BASE_NAME, build_classifier

    def kernels(seed):
        base = build_classifier(input_size=32, seed=seed).get_layer(VGG16_BASE_NAME)
        return {name: base.get_layer(name).kernel.numpy() for name in ("block3_conv2", "block3_conv3")}

    first, again, other = kernels(0), kernels(0), kernels(1)
    assert first["block3_conv2"].shape == first["block3_conv3"].shape
    assert not np.allclose(first["block3_conv2"], first["block3_conv3"]), "same-shape layers must differ"
    np.testing.assert_array_equal(first["block3_conv2"], again["block3_conv2"])
    assert not np.allclose(first["block3_conv2"], other["block3_conv2"])


def test_a_diverging_run_is_not_registered(segmentation_data, tmp_path):
    import mlflow

    from ml.registry import SEGMENTER_MODEL_NAME
    from ml.training import TrainingFailed, train_segmenter

    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(TrainingFailed, match="not registered"):
        train_segmenter(data_dir=segmentation_data, tracking_uri=tracking_uri, epochs=4, learning_rate=1e12,
                        seed=0, augment=False, **TINY_SEGMENTER)
    assert registered_versions(tracking_uri, SEGMENTER_MODEL_NAME) == []
    runs = mlflow.MlflowClient(tracking_uri).search_runs(
        [mlflow.MlflowClient(tracking_uri).get_experiment_by_name(SEGMENTER_MODEL_NAME).experiment_id])
    assert runs[0].info.status == "FAILED" and runs[0].data.tags["not_registered_reason"]


def test_unknown_class_folder_is_a_clear_error(tmp_path):
    from ml.phantoms import write_classification_dataset
    from ml.training import TrainingDataError, load_classification_split

    data = write_classification_dataset(tmp_path / "ct", images_per_split={"train": 1, "valid": 1}, size=32)
    (data / "train" / "banana").mkdir()
    with pytest.raises(TrainingDataError, match="banana.*does not name a known class"):
        load_classification_split(data / "train")
