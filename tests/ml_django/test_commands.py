"""The training management commands are thin wrappers: options in, plain training functions called, a summary out."""

from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from ml.registry import RegisteredModelVersion


def registered(name, version, *, champion=True, metric="accuracy", score=0.75):
    return RegisteredModelVersion(name=name, version=version, run_id="run", validation_metric=metric,
                                  validation_score=score, is_demo=True, is_champion=champion)


@pytest.fixture
def empty_store(settings, tmp_path):
    settings.MLFLOW_TRACKING_URI = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings.MLFLOW_ARTIFACT_ROOT = str(tmp_path / "artifacts")
    return settings


def test_bootstrap_does_nothing_when_champions_exist(settings, tiny_model_store):
    settings.MLFLOW_TRACKING_URI = tiny_model_store
    output = StringIO()
    with mock.patch("ml.training.bootstrap_demo_models") as bootstrap:
        call_command("bootstrap_models", stdout=output)
    bootstrap.assert_not_called()
    assert "radassist-classifier version 1 (demo)" in output.getvalue()
    assert "Nothing to do" in output.getvalue()


def test_bootstrap_trains_demo_models_when_no_champion(empty_store, tmp_path):
    output = StringIO()
    trained = (registered("radassist-classifier", 1), registered("radassist-segmenter", 1, metric="dice"))
    with mock.patch("ml.training.bootstrap_demo_models", return_value=trained) as bootstrap:
        call_command("bootstrap_models", stdout=output)
    kwargs = bootstrap.call_args.kwargs
    assert kwargs["tracking_uri"] == empty_store.MLFLOW_TRACKING_URI
    assert kwargs["artifact_location"] == (tmp_path / "artifacts").as_uri()
    assert "radassist-classifier version 1: champion" in output.getvalue()
    assert "Demo model, not for clinical use." in output.getvalue()


def test_train_classifier_passes_its_options_and_reports_the_version(empty_store, tmp_path):
    weights = tmp_path / "vgg16_notop.h5"
    weights.write_bytes(b"weights")
    output = StringIO()
    with mock.patch("ml.training.train_classifier", return_value=registered("radassist-classifier", 3)) as train:
        call_command("train_classifier", "--data", str(tmp_path), "--epochs", "2", "--input-size", "64",
                     "--base-weights", str(weights), "--seed", "7", stdout=output)
    kwargs = train.call_args.kwargs
    assert (kwargs["data_dir"], kwargs["epochs"], kwargs["input_size"]) == (tmp_path, 2, 64)
    assert kwargs["base_weights_path"] == weights and kwargs["seed"] == 7
    assert "radassist-classifier version 3" in output.getvalue() and "now the champion" in output.getvalue()


def test_train_classifier_names_an_unknown_class_folder(empty_store, tmp_path):
    from ml.phantoms import write_classification_dataset

    data = write_classification_dataset(tmp_path / "ct", images_per_split={"train": 1, "valid": 1}, size=32)
    (data / "valid" / "lymphoma").mkdir()
    with pytest.raises(CommandError, match="lymphoma: the folder name does not name a known class"):
        call_command("train_classifier", "--data", str(data), "--input-size", "32")


def test_train_classifier_rejects_a_folder_without_the_expected_layout(empty_store, tmp_path):
    with pytest.raises(CommandError, match="has no train/ folder"):
        call_command("train_classifier", "--data", str(tmp_path))


def test_train_segmenter_trains_and_registers_a_tiny_unet(empty_store, tmp_path):
    from ml.phantoms import write_segmentation_dataset
    from ml.registry import champion_version

    data = write_segmentation_dataset(tmp_path / "lgg", patients=3, slices_per_patient=2, size=32)
    output = StringIO()
    call_command("train_segmenter", "--data", str(data), "--epochs", "1", "--input-size", "16", "--depth", "1",
                 "--base-filters", "4", "--batch-size", "4", stdout=output)
    assert "radassist-segmenter version 1" in output.getvalue()
    # A real model is registered but never made champion by training: that takes promote_model.
    assert "promote_model --name radassist-segmenter --version 1" in output.getvalue()
    assert champion_version("radassist-segmenter", tracking_uri=empty_store.MLFLOW_TRACKING_URI) is None

    call_command("promote_model", "--name", "radassist-segmenter", "--version", "1", "--evaluation-data", str(data),
                 "--reason", "first validated segmenter", "--approved-by", "dr.lead", stdout=output)
    champion = champion_version("radassist-segmenter", tracking_uri=empty_store.MLFLOW_TRACKING_URI)
    assert champion is not None and champion.version == 1
    assert "now the champion, approved by dr.lead" in output.getvalue()
    with pytest.raises(CommandError, match="already the champion"):
        call_command("promote_model", "--name", "radassist-segmenter", "--version", "1", "--evaluation-data",
                     str(data), "--reason", "again")
    with pytest.raises(CommandError, match="version 99 is not registered"):
        call_command("promote_model", "--name", "radassist-segmenter", "--version", "99", "--evaluation-data",
                     str(data), "--reason", "x")
