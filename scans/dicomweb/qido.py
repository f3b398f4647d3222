"""QIDO-RS (PS3.18 10.6): search for studies, series and instances, answered in DICOM JSON.

Matching follows PS3.4 C.2.2.2 as far as the portal stores the attribute:
- single value: exact and case-sensitive, never an implicit substring; ``*`` and ``?`` make it a
  wildcard match, run as an SQL pattern (``matching``: no regular expressions, at most
  ``matching.MAXIMUM_WILDCARDS`` wildcards, else 400). PatientName and ReferringPhysicianName
  match the DICOM value as the files carried it (``Study.patient_name_dicom``), case-insensitively
  as PS3.4 allows for PN; a query without ``=`` matches the alphabetic group alone or the whole
  value ("Yamada^Tarou" finds "Yamada^Tarou=山田^太郎");
- UIDs, ModalitiesInStudy and Modality: a list, separated by commas or backslashes (or the key
  repeated), matches any of its values;
- dates: ``YYYYMMDD``, ``YYYYMMDD-YYYYMMDD``, ``-YYYYMMDD`` or ``YYYYMMDD-``;
- an empty value matches everything.
A key the portal cannot match on is ignored and named in a ``Warning: 299`` header, as PS3.18
8.3.4.4 allows. ``includefield`` adds optional attributes (or ``all``); ``limit``/``offset`` page
through results, and a truncated answer carries a ``Warning: 299`` header saying so.

Only DICOM instances are exposed: the PNG/JPEG slices of a web upload have no DICOM file to
retrieve, so they neither appear as instances nor count in NumberOf...RelatedInstances.

No match is answered with ``200`` and ``[]``: PS3.18 8.3.4.4.1 still says 204, but CP-2473 moves
it to 200 (RFC 9110 15.3.5: a 204 carries no content, while clients expect a JSON array);
dicomweb-client accepts both.
"""

import datetime
import re
from dataclasses import dataclass

from django.db.models import Count, Q
from django.urls import reverse

from scans.dicomweb.dicom_json import (
    SERIES_STATUS_ELEMENT,
    SPECIFIC_CHARACTER_SET,
    keyword_of,
    tag_of,
    to_dicom_json,
)
from scans.dicomweb.matching import InvalidQuery, checked_value, text_match, upper_match
from scans.models import Instance, Series, Study

MAXIMUM_RESULTS = 1000
MAXIMUM_LISTED_VALUES = 500
QUERY_CONTROL_PARAMETERS = {"limit", "offset", "includefield", "fuzzymatching", "emptyvaluematching"}

__all__ = ["InvalidQuery", "search_instances", "search_series", "search_studies"]


@dataclass(frozen=True)
class Match:
    #: ORM path from the searched level's own model.
    field: str
    #: How the value is matched: "text", "name", "uid", "date", "integer" or "modality_in_study".
    kind: str
    #: For "name": the upper-cased column that is searched (``field`` is the value answered).
    search_field: str = ""


STUDY_MATCHES = {
    "StudyInstanceUID": Match("study_instance_uid", "uid"),
    "PatientID": Match("patient__mrn", "text"),
    "PatientName": Match("patient_name_dicom", "name", search_field="patient_name_search"),
    "PatientBirthDate": Match("patient__birth_date", "date"),
    "PatientSex": Match("patient__sex", "text"),
    "StudyDate": Match("study_date", "date"),
    "StudyID": Match("dicom_study_id", "text"),
    "AccessionNumber": Match("accession_number", "text"),
    "StudyDescription": Match("description", "text"),
    "ReferringPhysicianName": Match(
        "referring_physician_dicom", "name", search_field="referring_physician_search"
    ),
    "ModalitiesInStudy": Match("pk", "modality_in_study"),
}
SERIES_MATCHES = {
    "SeriesInstanceUID": Match("series_instance_uid", "uid"),
    "Modality": Match("modality", "uid"),
    "SeriesNumber": Match("series_number", "integer"),
    "SeriesDescription": Match("description", "text"),
    "BodyPartExamined": Match("body_part", "text"),
}
INSTANCE_MATCHES = {
    "SOPInstanceUID": Match("sop_instance_uid", "uid"),
    "SOPClassUID": Match("sop_class_uid", "uid"),
    "InstanceNumber": Match("instance_number", "integer"),
}

STUDY_DEFAULT_FIELDS = (
    "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability",
    "ModalitiesInStudy", "ReferringPhysicianName", "RetrieveURL", "PatientName", "PatientID",
    "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDescription",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)
#: Study attributes shown with series or instances found outside a study's URL (PS3.18 10.6.3.3.2).
STUDY_FIELDS_OF_LOWER_LEVELS = (
    "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName", "PatientName", "PatientID",
    "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID", "StudyDescription",
)
SERIES_DEFAULT_FIELDS = (
    "SpecificCharacterSet", "Modality", "SeriesDescription", "RetrieveURL", "SeriesInstanceUID",
    "SeriesNumber", "NumberOfSeriesRelatedInstances", "StudyInstanceUID",
)
#: Image Pixel Module attributes a viewer reads before it asks for frames, answered from the stored header.
IMAGE_PIXEL_FIELDS = (
    "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
    "HighBit", "PixelRepresentation", "PlanarConfiguration", "NumberOfFrames",
)
INSTANCE_DEFAULT_FIELDS = (
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "RetrieveURL",
    "InstanceNumber", "StudyInstanceUID", "SeriesInstanceUID", *IMAGE_PIXEL_FIELDS,
)
SERIES_FIELDS_OF_INSTANCES = ("Modality", "SeriesDescription", "SeriesNumber")


def dicom_instances(user):
    """The instances DICOMweb exposes to this user: visible ones that are DICOM files."""
    return Instance.objects.visible_to(user).filter(file_format=Instance.Format.DICOM)


@dataclass
class SearchResult:
    results: list
    warnings: list


@dataclass(frozen=True)
class Query:
    """The parsed query string of one search."""

    filters: dict  # keyword -> raw value
    include_all: bool
    included: frozenset
    limit: int
    offset: int
    warnings: tuple

    @classmethod
    def from_parameters(cls, parameters, *, matchable):
        filters, included, warnings, include_all = {}, set(), [], False
        for key in parameters:
            values = [value for value in parameters.getlist(key)]
            if key == "includefield":
                for name in ",".join(values).split(","):
                    name = name.strip()
                    if name == "all":
                        include_all = True
                    elif name:
                        keyword = keyword_of(name)
                        if keyword is None:
                            raise InvalidQuery(f"includefield names an unknown attribute: {name!r}.")
                        included.add(keyword)
                continue
            if key in QUERY_CONTROL_PARAMETERS:
                continue
            keyword = keyword_of(key)
            if keyword is None:
                raise InvalidQuery(f"Unknown query key {key!r}: use an attribute keyword or tag.")
            if keyword not in matchable:
                warnings.append(f"The attribute {keyword} is not supported for matching and was ignored.")
                continue
            filters[keyword] = ",".join(value for value in values if value)
        if parameters.get("fuzzymatching", "").lower() == "true":
            warnings.append("Fuzzy matching is not supported; the search used exact and wildcard matching.")
        limit = _non_negative_integer(parameters, "limit", default=MAXIMUM_RESULTS)
        if limit > MAXIMUM_RESULTS:
            warnings.append(f"The limit was lowered to {MAXIMUM_RESULTS}.")
            limit = MAXIMUM_RESULTS
        return cls(
            filters=filters,
            include_all=include_all,
            included=frozenset(included),
            limit=limit,
            offset=_non_negative_integer(parameters, "offset", default=0),
            warnings=tuple(warnings),
        )

    def selects(self, keyword, defaults):
        return self.include_all or keyword in defaults or keyword in self.included


def _non_negative_integer(parameters, name, *, default):
    raw = parameters.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQuery(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 0:
        raise InvalidQuery(f"{name} must not be negative.")
    return value


def person_name_condition(match, raw, *, prefix, keyword):
    """Case-insensitive PN match on the upper-cased copy of the value as received (see the module docstring)."""
    value = checked_value(raw, keyword=keyword)
    field = prefix + match.search_field
    condition = Q(**upper_match(field, value, keyword=keyword))
    if "=" not in value:
        condition |= Q(**{f"{field}__upper_dicom_wildcard": value + "=*"})
    return condition


def parse_date(text):
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise InvalidQuery(f"Dates are written YYYYMMDD; {text!r} is not one.") from None


def condition(match, raw, *, prefix, visible_series, keyword):
    """The Q object that matches ``raw`` on one attribute (``visible_series``: the series the searcher may see)."""
    field = prefix + match.field
    if match.kind in ("uid", "modality_in_study"):
        values = [value.strip() for value in re.split(r"[,\\]", raw) if value.strip()]
        if len(values) > MAXIMUM_LISTED_VALUES:
            raise InvalidQuery(f"A list of values may hold at most {MAXIMUM_LISTED_VALUES} values.")
        if match.kind == "uid":
            return Q(**{f"{field}__in": values})
        studies = visible_series.filter(modality__in=values).values("study_id")
        return Q(**{f"{field}__in": studies})
    if match.kind == "integer":
        try:
            return Q(**{field: int(raw)})
        except ValueError:
            raise InvalidQuery(f"{raw!r} is not a whole number.") from None
    if match.kind == "date":
        if "-" not in raw:
            return Q(**{field: parse_date(raw)})
        start, _, end = raw.partition("-")
        if not start and not end:
            raise InvalidQuery("A date range needs a start, an end or both.")
        query = Q()
        if start:
            query &= Q(**{f"{field}__gte": parse_date(start)})
        if end:
            query &= Q(**{f"{field}__lte": parse_date(end)})
        return query
    if match.kind == "name":
        return person_name_condition(match, raw, prefix=prefix, keyword=keyword)
    return Q(**text_match(field, raw, keyword=keyword))


def filtered(queryset, query, *, matches_by_prefix, visible_series):
    """``queryset`` narrowed by every non-empty filter of the query (shared by QIDO-RS and DIMSE C-FIND)."""
    for keyword, raw in query.filters.items():
        if raw == "":
            continue
        for prefix, matches in matches_by_prefix:
            if keyword in matches:
                queryset = queryset.filter(
                    condition(matches[keyword], raw, prefix=prefix, visible_series=visible_series, keyword=keyword)
                )
                break
    return queryset


def page_of(queryset, query):
    """One page of results, and a warning when more remain (PS3.18 8.3.4.4).

    The offset is skipped over primary keys alone (read from the index that serves the order), then only
    the page's rows are read with their joins: a deep offset does not join and fetch every row it skips.
    """
    ids = list(queryset.values_list("pk", flat=True)[query.offset : query.offset + query.limit + 1])
    rows_by_id = queryset.order_by().in_bulk(ids)
    rows = [rows_by_id[pk] for pk in ids]
    warnings = list(query.warnings)
    if len(rows) > query.limit:
        rows = rows[: query.limit]
        warnings.append("There are more results: ask again with a larger offset.")
    return rows, warnings


def dicomweb_root(request):
    return request.build_absolute_uri(reverse("dicomweb:studies")).removesuffix("/studies")


def study_url(root, study_uid):
    return f"{root}/studies/{study_uid}"


def series_url(root, study_uid, series_uid):
    return f"{study_url(root, study_uid)}/series/{series_uid}"


def instance_url(root, study_uid, series_uid, sop_instance_uid):
    return f"{series_url(root, study_uid, series_uid)}/instances/{sop_instance_uid}"


def study_attributes(study):
    patient = study.patient
    return {
        "StudyDate": study.study_date,
        "StudyTime": study.study_time,
        "AccessionNumber": study.accession_number,
        "ReferringPhysicianName": study.referring_physician_for_dicom,
        "PatientName": study.patient_name_for_dicom,
        "PatientID": patient.mrn,
        "PatientBirthDate": patient.birth_date,
        "PatientSex": patient.sex,
        "StudyInstanceUID": study.study_instance_uid,
        "StudyID": study.dicom_study_id,
        "StudyDescription": study.description,
    }


def series_attributes(series):
    return {
        "Modality": series.modality,
        "SeriesDescription": series.description,
        "SeriesInstanceUID": series.series_instance_uid,
        "SeriesNumber": series.series_number,
        "BodyPartExamined": series.body_part,
        "StudyInstanceUID": series.study.study_instance_uid,
    }


def instance_attributes(instance):
    return {
        "SOPClassUID": instance.sop_class_uid,
        "SOPInstanceUID": instance.sop_instance_uid,
        "InstanceAvailability": "ONLINE",
        "InstanceNumber": instance.instance_number,
        "Rows": instance.rows,
        "Columns": instance.columns,
        "NumberOfFrames": instance.number_of_frames,
        "StudyInstanceUID": instance.series.study.study_instance_uid,
        "SeriesInstanceUID": instance.series.series_instance_uid,
        "AvailableTransferSyntaxUID": instance.transfer_syntax_uid,
        "PixelSpacing": instance.pixel_spacing,
        "SliceThickness": instance.slice_thickness,
        "ImagePositionPatient": instance.image_position_patient,
        "ImageOrientationPatient": instance.image_orientation_patient,
        "SliceLocation": instance.slice_location,
        "RescaleIntercept": instance.rescale_intercept,
        "RescaleSlope": instance.rescale_slope,
        "WindowCenter": instance.window_center,
        "WindowWidth": instance.window_width,
    }


def selected(attributes, query, defaults):
    return {keyword: value for keyword, value in attributes.items() if query.selects(keyword, defaults)}


def stored_header_attributes(instance, query, defaults):
    """The instance's own attributes asked for (its defaults, includefield, or all), from its stored header."""
    header = instance.dicom_header or {}
    if query.include_all:
        return {tag: element for tag, element in header.items() if "BulkDataURI" not in element}
    wanted = {tag_of(keyword) for keyword in (*defaults, *query.included)}
    return {tag: header[tag] for tag in wanted if tag in header}


def search_studies(*, request, user, parameters):
    query = Query.from_parameters(parameters, matchable=STUDY_MATCHES)
    studies = filtered(
        Study.objects.visible_to(user).select_related("patient"),
        query,
        matches_by_prefix=[("", STUDY_MATCHES)],
        visible_series=Series.objects.visible_to(user),
    ).order_by("-study_date", "-created_at", "-pk")
    page, warnings = page_of(studies, query)
    study_ids = [study.pk for study in page]
    series_counts = dict(
        Series.objects.visible_to(user).filter(study__in=study_ids).values_list("study").annotate(Count("pk"))
    )
    instance_counts = dict(
        dicom_instances(user).filter(series__study__in=study_ids).values_list("series__study").annotate(Count("pk"))
    )
    modalities = {}
    for study_id, modality in (
        Series.objects.visible_to(user).filter(study__in=study_ids).values_list("study", "modality").distinct()
    ):
        modalities.setdefault(study_id, set()).add(modality)
    root = dicomweb_root(request)
    results = []
    for study in page:
        attributes = {
            "SpecificCharacterSet": SPECIFIC_CHARACTER_SET,
            "InstanceAvailability": "ONLINE",
            "ModalitiesInStudy": sorted(modalities.get(study.pk, ())),
            "RetrieveURL": study_url(root, study.study_instance_uid),
            "NumberOfStudyRelatedSeries": series_counts.get(study.pk, 0),
            "NumberOfStudyRelatedInstances": instance_counts.get(study.pk, 0),
            **study_attributes(study),
        }
        results.append(to_dicom_json(selected(attributes, query, STUDY_DEFAULT_FIELDS)))
    return SearchResult(results=results, warnings=warnings)


def search_series(*, request, user, parameters, study_uid=None):
    """Series of one study (``study_uid``) or of every visible study, with their processing status."""
    query = Query.from_parameters(parameters, matchable={**SERIES_MATCHES, **STUDY_MATCHES})
    series_rows = Series.objects.visible_to(user).select_related("study", "study__patient")
    if study_uid is not None:
        series_rows = series_rows.filter(study__study_instance_uid=study_uid)
    series_rows = filtered(
        series_rows,
        query,
        matches_by_prefix=[("", SERIES_MATCHES), ("study__", STUDY_MATCHES)],
        visible_series=Series.objects.visible_to(user),
    ).order_by("study__study_instance_uid", "series_number", "created_at", "pk")
    page, warnings = page_of(series_rows, query)
    instance_counts = dict(
        dicom_instances(user).filter(series__in=[series.pk for series in page]).values_list("series").annotate(
            Count("pk")
        )
    )
    root = dicomweb_root(request)
    defaults = SERIES_DEFAULT_FIELDS if study_uid else SERIES_DEFAULT_FIELDS + STUDY_FIELDS_OF_LOWER_LEVELS
    results = []
    for series in page:
        attributes = {
            "SpecificCharacterSet": SPECIFIC_CHARACTER_SET,
            "RetrieveURL": series_url(root, series.study.study_instance_uid, series.series_instance_uid),
            "NumberOfSeriesRelatedInstances": instance_counts.get(series.pk, 0),
            **study_attributes(series.study),
            **series_attributes(series),
        }
        results.append(
            to_dicom_json(
                selected(attributes, query, defaults), private={SERIES_STATUS_ELEMENT: series.status}
            )
        )
    return SearchResult(results=results, warnings=warnings)


def search_instances(*, request, user, parameters, study_uid=None, series_uid=None):
    query = Query.from_parameters(parameters, matchable={**INSTANCE_MATCHES, **SERIES_MATCHES, **STUDY_MATCHES})
    instances = dicom_instances(user).select_related("series", "series__study", "series__study__patient")
    if study_uid is not None:
        instances = instances.filter(series__study__study_instance_uid=study_uid)
    if series_uid is not None:
        instances = instances.filter(series__series_instance_uid=series_uid)
    instances = filtered(
        instances,
        query,
        matches_by_prefix=[("", INSTANCE_MATCHES), ("series__", SERIES_MATCHES), ("series__study__", STUDY_MATCHES)],
        visible_series=Series.objects.visible_to(user),
    ).order_by("series__study__study_instance_uid", "series__series_number", "series", "slice_location",
               "instance_number", "pk")
    page, warnings = page_of(instances, query)
    root = dicomweb_root(request)
    defaults = INSTANCE_DEFAULT_FIELDS
    if series_uid is None:
        defaults += SERIES_FIELDS_OF_INSTANCES
    if study_uid is None:
        defaults += STUDY_FIELDS_OF_LOWER_LEVELS
    results = []
    for instance in page:
        series, study = instance.series, instance.series.study
        attributes = {
            "SpecificCharacterSet": SPECIFIC_CHARACTER_SET,
            "RetrieveURL": instance_url(
                root, study.study_instance_uid, series.series_instance_uid, instance.sop_instance_uid
            ),
            **study_attributes(study),
            **series_attributes(series),
            **instance_attributes(instance),
        }
        answered = {
            **stored_header_attributes(instance, query, defaults),
            **to_dicom_json(selected(attributes, query, defaults)),
        }
        results.append(dict(sorted(answered.items())))
    return SearchResult(results=results, warnings=warnings)
