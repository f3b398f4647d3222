"""The model catalogue routes a series by its DICOM kind, and never to a model trained on another kind."""

import pytest

from ml.catalogue import (
    BRAIN_MR_FLAIR,
    LUNG_CT,
    SeriesKind,
    mr_sequence,
    route_series,
)


@pytest.mark.parametrize(
    "kind",
    [
        SeriesKind(modality="CT", body_part="CHEST"),
        SeriesKind(modality="ct", body_part="Thorax"),
        SeriesKind(modality="CT", body_part=""),  # chest exports often leave BodyPartExamined empty
    ],
)
def test_chest_ct_goes_to_the_lung_pair(kind):
    routing = route_series(kind)
    assert routing.entry == LUNG_CT and routing.reason == ""
    assert (routing.entry.classifier_name, routing.entry.segmenter_name) == (
        "radassist-classifier", "radassist-segmenter")


@pytest.mark.parametrize(
    "kind",
    [
        SeriesKind(modality="MR", body_part="BRAIN", description="AX T2 FLAIR"),
        SeriesKind(modality="MR", body_part="HEAD", description="Dark Fluid tra"),
        SeriesKind(modality="MR", body_part="HEAD", description="t2_tirm_tra_dark-fluid"),
        SeriesKind(modality="MR", body_part="BRAIN", description="Series 4", scanning_sequence="SE\\IR",
                   inversion_time=2500.0),
        SeriesKind(modality="MR", body_part="brain", description="", sequence_variant="SK\\SP",
                   scanning_sequence="IR", inversion_time=1800.0),
    ],
)
def test_brain_flair_goes_to_the_brain_pair(kind):
    routing = route_series(kind)
    assert routing.entry == BRAIN_MR_FLAIR
    assert (routing.entry.classifier_name, routing.entry.segmenter_name) == (
        "radassist-brain-classifier", "radassist-brain-segmenter")
    assert routing.entry.pixel_source == "mr"


@pytest.mark.parametrize(
    ("kind", "named"),
    [
        (SeriesKind(modality="MR", body_part="KNEE", description="PD FLAIR"), "MR, body part KNEE, sequence FLAIR"),
        (SeriesKind(modality="MR", body_part="BRAIN", description="AX T1 POST"), "MR, body part BRAIN, sequence T1"),
        (SeriesKind(modality="MR", body_part="BRAIN", description="STIR", scanning_sequence="IR",
                    inversion_time=150.0), "sequence STIR"),
        # A T1-weighted FLAIR is an inversion recovery with a short TI: not the contrast the model reads.
        (SeriesKind(modality="MR", body_part="BRAIN", description="SAG T1 FLAIR", scanning_sequence="IR",
                    inversion_time=860.0), "sequence T1 FLAIR"),
        # A long-TI claim in the description is overruled by a short inversion time.
        (SeriesKind(modality="MR", body_part="BRAIN", description="FLAIR", inversion_time=150.0), "sequence STIR"),
        (SeriesKind(modality="MR", body_part="", description="AX FLAIR"), "body part not stated"),
        (SeriesKind(modality="MR", body_part="BRAIN", description="Localizer"), "sequence not recognised"),
        (SeriesKind(modality="CT", body_part="HEAD"), "CT, body part HEAD"),
    ],
)
def test_other_series_get_no_model_and_a_reason_naming_their_kind(kind, named):
    routing = route_series(kind)
    assert routing.entry is None
    assert routing.reason.startswith("No model for this kind of series (")
    assert named in routing.reason


def test_sequence_recognition_prefers_the_inversion_time():
    assert mr_sequence(SeriesKind(modality="MR", description="T2 FLAIR", inversion_time=2200.0)) == "FLAIR"
    assert mr_sequence(SeriesKind(modality="MR", description="whatever", inversion_time=2200.0)) == "FLAIR"
    assert mr_sequence(SeriesKind(modality="MR", description="AX DWI")) == "DWI"
    assert mr_sequence(SeriesKind(modality="MR", description="T2W TSE")) == "T2"
