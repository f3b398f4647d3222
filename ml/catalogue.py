"""The model catalogue: which registered models analyse which kind of series.

Public interface:
    SeriesKind(modality, body_part, description, scanning_sequence, sequence_variant, inversion_time)
    CatalogueEntry(key, title, modality, body_parts, sequence, classifier_name, segmenter_name,
                   accepts_unstated_body_part, pixel_source)
    LUNG_CT, BRAIN_MR_FLAIR, CATALOGUE
    mr_sequence(kind) -> str                 ("FLAIR", "T1 FLAIR", "STIR", "T1", "T2", "DWI" or "")
    route_series(kind, *, entries=CATALOGUE) -> Routing(entry, reason)
    entry_by_key(key, *, entries=CATALOGUE) -> CatalogueEntry | None
    describe_kind(kind) -> str; no_model_reason(kind) -> str

Each entry declares the modality, body parts and (for MR) the sequence its models were trained
on, and the registered model names of its classifier and segmenter. A series is routed by what
its DICOM says: Modality, BodyPartExamined and, for MR, the sequence recognised from
SeriesDescription, ScanningSequence/SequenceVariant and InversionTime. A series that matches no
entry gets a reason and runs nothing: a model is never applied to images it was not trained on.

Django-free, so the worker, the commands and the tests read the same table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ml.registry import CLASSIFIER_MODEL_NAME, SEGMENTER_MODEL_NAME

BRAIN_CLASSIFIER_MODEL_NAME = "radassist-brain-classifier"
BRAIN_SEGMENTER_MODEL_NAME = "radassist-brain-segmenter"

#: FLAIR nulls cerebrospinal fluid with a long inversion time; 1.5 T to 3 T protocols use about
#: 1800-2800 ms. STIR (fat nulling, ~150 ms) and T1 FLAIR (~700-1200 ms) also invert, but give a
#: different contrast and must not reach a FLAIR model.
FLAIR_INVERSION_TIME_MS = (1500.0, 3000.0)


@dataclass(frozen=True)
class SeriesKind:
    """What a series' DICOM says about its kind (``scans.Series`` keeps these from ingest)."""

    modality: str
    body_part: str = ""
    description: str = ""
    scanning_sequence: str = ""
    sequence_variant: str = ""
    inversion_time: float | None = None

    @property
    def normalised_modality(self) -> str:
        return self.modality.strip().upper()

    @property
    def normalised_body_part(self) -> str:
        return re.sub(r"[\s_-]+", "", self.body_part.strip().upper())


@dataclass(frozen=True)
class CatalogueEntry:
    key: str
    title: str
    modality: str
    body_parts: frozenset[str]
    #: The MR sequence the models read (``mr_sequence``), or None for modalities without one.
    sequence: str | None
    classifier_name: str
    segmenter_name: str
    #: Whether a series without BodyPartExamined is taken to be this body part.
    accepts_unstated_body_part: bool
    #: How the stored pixels are read by ``ml.preprocessing``: "hounsfield" (CT) or "mr".
    pixel_source: str
    #: What an administrator does to install the models, for the reason a series shows without them.
    install_hint: str

    def describe(self) -> str:
        parts = ", ".join(sorted(self.body_parts))
        sequence = f", sequence {self.sequence}" if self.sequence else ""
        return f"{self.modality}, body part {parts}{sequence}"


LUNG_CT = CatalogueEntry(
    key="lung-ct",
    title="Lung CT",
    modality="CT",
    body_parts=frozenset({"CHEST", "LUNG", "THORAX"}),
    sequence=None,
    classifier_name=CLASSIFIER_MODEL_NAME,
    segmenter_name=SEGMENTER_MODEL_NAME,
    # Chest CT exports (and the PNG/JPG chest image set) often leave BodyPartExamined empty; the
    # lung models have always read such series. A CT that names another body part is not read.
    accepts_unstated_body_part=True,
    pixel_source="hounsfield",
    install_hint="python manage.py bootstrap_models installs demo models",
)

BRAIN_MR_FLAIR = CatalogueEntry(
    key="brain-mr-flair",
    title="Brain MRI (FLAIR)",
    modality="MR",
    body_parts=frozenset({"BRAIN", "HEAD", "SKULL"}),
    sequence="FLAIR",
    classifier_name=BRAIN_CLASSIFIER_MODEL_NAME,
    segmenter_name=BRAIN_SEGMENTER_MODEL_NAME,
    accepts_unstated_body_part=False,
    pixel_source="mr",
    install_hint=(
        f"register and promote models named {BRAIN_CLASSIFIER_MODEL_NAME} and {BRAIN_SEGMENTER_MODEL_NAME} "
        "in the model registry"
    ),
)

CATALOGUE: tuple[CatalogueEntry, ...] = (LUNG_CT, BRAIN_MR_FLAIR)


def _words(text: str) -> str:
    return " " + re.sub(r"[^A-Z0-9]+", " ", text.upper()) + " "


def _codes(value: str) -> set[str]:
    """A multi-valued code string (``SE\\IR``, ``['SE', 'IR']`` or ``SE IR``) as a set of codes."""
    return {code for code in re.split(r"[\\\s,\[\]'\"]+", value.upper()) if code}


def mr_sequence(kind: SeriesKind) -> str:
    """The MR sequence of a series, as far as its header tells; "" when it cannot be told.

    The inversion time decides when it is present: an inversion recovery with a FLAIR-length TI is
    FLAIR whatever the description says, and a short TI (STIR, T1 FLAIR) is never FLAIR even when
    the description says "FLAIR". Without a TI, the description decides ("FLAIR", "T2 FLAIR",
    "DARK FLUID", Siemens "TIRM"), and a T1 FLAIR named as such stays T1 FLAIR.
    """
    words = _words(kind.description)
    scanning = _codes(kind.scanning_sequence)
    inverted = "IR" in scanning or "IR" in _codes(kind.sequence_variant)
    named_flair = any(name in words for name in (" FLAIR ", " DARK FLUID ", " DARKFLUID ", " TIRM "))
    named_t1 = any(name in words for name in (" T1 ", " T1W ", " MPRAGE ", " SPGR "))
    if kind.inversion_time:
        low, high = FLAIR_INVERSION_TIME_MS
        if low <= kind.inversion_time <= high:
            return "T1 FLAIR" if named_t1 else "FLAIR"
        if kind.inversion_time < 400:
            return "STIR"
        return "T1 FLAIR" if named_flair or inverted else "T1"
    if named_flair:
        return "T1 FLAIR" if named_t1 else "FLAIR"
    if " STIR " in words:
        return "STIR"
    if any(name in words for name in (" DWI ", " DIFFUSION ", " ADC ", " TRACE ")):
        return "DWI"
    if named_t1:
        return "T1"
    if any(name in words for name in (" T2 ", " T2W ")):
        return "T2"
    return ""


@dataclass(frozen=True)
class Routing:
    entry: CatalogueEntry | None
    reason: str  # why no entry matched; "" when one did


def describe_kind(kind: SeriesKind) -> str:
    """"MR, body part KNEE, sequence T2": the kind of a series as its reasons name it."""
    body_part = kind.normalised_body_part or "not stated"
    description = f"{kind.normalised_modality or 'no modality'}, body part {body_part}"
    if kind.normalised_modality == "MR":
        description += f", sequence {mr_sequence(kind) or 'not recognised'}"
    return description


def no_model_reason(kind: SeriesKind) -> str:
    return (
        f"No model for this kind of series ({describe_kind(kind)}), so it was not analysed. "
        f"RadAssist analyses: {'; '.join(entry.title for entry in CATALOGUE)}."
    )


def _matches(entry: CatalogueEntry, kind: SeriesKind) -> bool:
    if kind.normalised_modality != entry.modality:
        return False
    body_part = kind.normalised_body_part
    if body_part not in entry.body_parts and not (entry.accepts_unstated_body_part and not body_part):
        return False
    return entry.sequence is None or mr_sequence(kind) == entry.sequence


def route_series(kind: SeriesKind, *, entries: tuple[CatalogueEntry, ...] = CATALOGUE) -> Routing:
    """The one entry whose models were trained on series of this kind, or a reason why there is none."""
    for entry in entries:
        if _matches(entry, kind):
            return Routing(entry=entry, reason="")
    return Routing(entry=None, reason=no_model_reason(kind))


def entry_by_key(key: str, *, entries: tuple[CatalogueEntry, ...] = CATALOGUE) -> CatalogueEntry | None:
    return next((entry for entry in entries if entry.key == key), None)
