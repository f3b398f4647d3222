"""Study Root C-FIND (PS3.4 C.4.1) at study and series level, over one hospital's data.

Matching is QIDO-RS's (``scans.dicomweb.qido``: single value, wildcards, UID lists, date ranges,
person names component by component); an attribute the portal cannot match on is returned but
not matched, as PS3.4 C.2.2.1 allows for optional keys. Each response carries exactly the
requested keys, filled where the portal knows the value. Series responses also carry the
series' processing status in the private element (0011,xx01) of creator "RADASSIST", as QIDO-RS
series results do. Only DICOM instances count (PNG/JPEG slices of a web upload have no DICOM
file); the hospital is the one of the called AE title, so another hospital's studies are never seen.
"""

from django.db.models import Count
from pydicom.multival import MultiValue

from scans.dicomweb.dicom_json import (
    SERIES_STATUS_ELEMENT,
    SPECIFIC_CHARACTER_SET,
    dataset_from_attributes,
)
from scans.dicomweb.qido import (
    SERIES_MATCHES,
    STUDY_MATCHES,
    InvalidQuery,
    Query,
    filtered,
    series_attributes,
    study_attributes,
)
from scans.models import Instance, Series, Study

STUDY_LEVEL = "STUDY"
SERIES_LEVEL = "SERIES"
#: Results are read from the database this many at a time, so a broad query streams.
CHUNK_SIZE = 200
#: Elements of the identifier that are not keys to match or return.
NOT_KEYS = {"QueryRetrieveLevel", "SpecificCharacterSet", "TimezoneOffsetFromUTC"}


class InvalidFindQuery(Exception):
    """An identifier the SCP cannot answer; the message goes back as the ErrorComment."""


def find(*, hospital, identifier):
    """Check the identifier, then return a generator of response identifiers (pydicom datasets)."""
    level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
    if level not in (STUDY_LEVEL, SERIES_LEVEL):
        raise InvalidFindQuery(f"Query level {level or '(none)'} is not supported; ask at STUDY or SERIES level.")
    keys = [element.keyword for element in identifier if element.keyword and element.keyword not in NOT_KEYS]
    matchable = STUDY_MATCHES if level == STUDY_LEVEL else {**SERIES_MATCHES, **STUDY_MATCHES}
    filters = {}
    for keyword in keys:
        if keyword in matchable:
            element = identifier[keyword]
            if element.VR != "SQ":
                filters[keyword] = matching_value(element.value)
    query = Query(
        filters=filters, include_all=False, included=frozenset(), limit=0, offset=0, warnings=()
    )
    try:
        if level == STUDY_LEVEL:
            return _study_responses(hospital, _matching_studies(hospital, query), keys)
        return _series_responses(hospital, _matching_series(hospital, query), keys)
    except InvalidQuery as error:  # a malformed date or number in a key
        raise InvalidFindQuery(str(error)) from None


def matching_value(value):
    """An element's value as QIDO's matcher reads a query parameter (several values joined by backslashes)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(item) for item in value)
    return str(value).strip()


def _matching_studies(hospital, query):
    return filtered(
        Study.objects.for_hospital(hospital).select_related("patient"),
        query,
        matches_by_prefix=[("", STUDY_MATCHES)],
        visible_series=Series.objects.for_hospital(hospital),
    ).order_by("-study_date", "-created_at", "pk")


def _study_responses(hospital, studies, keys):
    visible_series = Series.objects.for_hospital(hospital)
    for chunk in _chunks(studies):
        study_ids = [study.pk for study in chunk]
        series_counts = dict(
            visible_series.filter(study__in=study_ids).values_list("study").annotate(Count("pk"))
        )
        instance_counts = dict(
            _dicom_instances(hospital).filter(series__study__in=study_ids)
            .values_list("series__study").annotate(Count("pk"))
        )
        modalities = {}
        study_modalities = visible_series.filter(study__in=study_ids).values_list("study", "modality").distinct()
        for study_id, modality in study_modalities:
            modalities.setdefault(study_id, set()).add(modality)
        for study in chunk:
            attributes = {
                "ModalitiesInStudy": sorted(modalities.get(study.pk, ())),
                "NumberOfStudyRelatedSeries": series_counts.get(study.pk, 0),
                "NumberOfStudyRelatedInstances": instance_counts.get(study.pk, 0),
                "InstanceAvailability": "ONLINE",
                **study_attributes(study),
            }
            yield _response(STUDY_LEVEL, attributes, keys)


def _matching_series(hospital, query):
    visible_series = Series.objects.for_hospital(hospital)
    return filtered(
        visible_series.select_related("study", "study__patient"),
        query,
        matches_by_prefix=[("", SERIES_MATCHES), ("study__", STUDY_MATCHES)],
        visible_series=visible_series,
    ).order_by("study__study_instance_uid", "series_number", "created_at", "pk")


def _series_responses(hospital, series_rows, keys):
    for chunk in _chunks(series_rows):
        instance_counts = dict(
            _dicom_instances(hospital).filter(series__in=[series.pk for series in chunk])
            .values_list("series").annotate(Count("pk"))
        )
        for series in chunk:
            attributes = {
                "NumberOfSeriesRelatedInstances": instance_counts.get(series.pk, 0),
                "InstanceAvailability": "ONLINE",
                **study_attributes(series.study),
                **series_attributes(series),
            }
            yield _response(SERIES_LEVEL, attributes, keys, status=series.status)


def _dicom_instances(hospital):
    return Instance.objects.for_hospital(hospital).filter(file_format=Instance.Format.DICOM)


def _chunks(queryset):
    start = 0
    while chunk := list(queryset[start : start + CHUNK_SIZE]):
        yield chunk
        start += CHUNK_SIZE


def _response(level, attributes, keys, *, status=None):
    """The requested keys, with the values the portal knows (an unknown one is returned empty)."""
    requested = {keyword: attributes.get(keyword) for keyword in keys}
    return dataset_from_attributes(
        {"SpecificCharacterSet": SPECIFIC_CHARACTER_SET, "QueryRetrieveLevel": level, **requested},
        private={SERIES_STATUS_ELEMENT: status} if status else None,
    )
