"""DICOMweb views: thin HTTP wrappers around ``qido``, ``stow``, ``rendering`` and the stored files.

They are DRF views for DRF's authentication (API key as ``Bearer``, or the session with its CSRF
check), the IsClinicalStaff permission and JSON errors, but they answer with plain Django
responses in the DICOMweb media types, and they never let DRF or Django parse a request body:
STOW-RS reads the raw stream itself.
"""

import functools
import json
import logging

from django.db.models import TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.permissions import IsClinicalStaff
from portal.audit import query_summary, record_event
from portal.models import AuditAction
from scans.dicomweb import frames, qido, rendering, stow, transcoding
from scans.dicomweb.dicom_json import MEDIA_TYPE as DICOM_JSON
from scans.dicomweb.dicom_json import to_dicom_json
from scans.dicomweb.multipart import MalformedMultipart, multipart_stream, new_boundary, parse_content_type
from scans.ingest.parsing import BULK_DATA_URI_PREFIX, stored_header_json
from scans.models import Instance, Series, Study

logger = logging.getLogger(__name__)


class ErrorsAsJson(BaseContentNegotiation):
    """DICOMweb picks its media types per view from the Accept header; DRF only renders errors, as JSON."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


@extend_schema(exclude=True)
class DicomWebView(APIView):
    """DICOMweb speaks application/dicom+json and multipart/related as PS3.18 defines them, not the
    REST API's JSON: its reference is the standard, so it stays out of the OpenAPI schema."""

    permission_classes = [IsClinicalStaff]
    renderer_classes = [JSONRenderer]
    parser_classes = []
    content_negotiation_class = ErrorsAsJson


def first_or_404(queryset):
    found = queryset.first()
    if found is None:
        raise Http404
    return found


def dicom_json_response(payload, *, status=200, warnings=()):
    response = HttpResponse(json.dumps(payload), status=status, content_type=DICOM_JSON)
    if warnings:
        response["Warning"] = ", ".join(f'299 radassist "{text}"' for text in warnings)
    return response


def accepted_media_types(request):
    """(media type, parameters, q) of each Accept entry, best first; ``*/*`` when the header is absent."""
    entries = []
    for raw in (request.META.get("HTTP_ACCEPT") or "*/*").split(","):
        if not raw.strip():
            continue
        media_type, parameters = parse_content_type(raw.strip())
        try:
            quality = float(parameters.get("q", "1"))
        except ValueError:
            quality = 0.0
        if quality > 0:
            entries.append((media_type, parameters, quality))
    return sorted(entries, key=lambda entry: -entry[2])


def retrieve_syntax(request, stored_syntaxes):
    """The transfer syntax WADO-RS retrieve sends: None for each file as stored, or Explicit VR Little Endian.

    Accept entries are tried best first: no ``transfer-syntax`` or ``*`` takes the stored files; a
    named syntax is honoured when every file is stored in it, or when it is Explicit VR Little
    Endian (the files are then transcoded, compressed ones decoded); anything else is 406, never a
    silently different syntax.
    """
    for media_type, parameters, _ in accepted_media_types(request):
        accepted = media_type in ("*/*", "multipart/*", "application/dicom") or (
            media_type == "multipart/related"
            and parameters.get("type", "application/dicom").lower() in ("application/dicom", "application/*", "*/*")
        )
        if not accepted:
            continue
        asked = parameters.get("transfer-syntax")
        if asked in (None, "*") or stored_syntaxes == {asked}:
            return None
        if asked == transcoding.EXPLICIT_VR_LITTLE_ENDIAN and all(map(transcoding.can_transcode, stored_syntaxes)):
            return asked
    raise exceptions.NotAcceptable(
        'Instances are sent as multipart/related; type="application/dicom", in the transfer syntax they were '
        "stored in or in Explicit VR Little Endian (transfer-syntax=1.2.840.10008.1.2.1)."
    )


def rendered_media_type(request):
    for media_type, _, _ in accepted_media_types(request):
        if media_type in rendering.RENDERED_MEDIA_TYPES:
            return media_type
        if media_type in ("*/*", "image/*"):
            return "image/jpeg"
    raise exceptions.NotAcceptable("Rendered frames are available as image/jpeg or image/png.")


def stored_instances(user, *, study_uid, series_uid=None, sop_instance_uid=None):
    instances = qido.dicom_instances(user).filter(series__study__study_instance_uid=study_uid)
    if series_uid is not None:
        instances = instances.filter(series__series_instance_uid=series_uid)
    if sop_instance_uid is not None:
        instances = instances.filter(sop_instance_uid=sop_instance_uid)
    return instances.order_by("series__series_number", "series", "slice_location", "instance_number", "pk")


def audit_target(user, *, study_uid, series_uid=None, sop_instance_uid=None):
    """The study, series or instance a request is about, found through ``visible_to``; 404 if not visible."""
    if sop_instance_uid is not None:
        return first_or_404(stored_instances(
            user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=sop_instance_uid
        ))
    if series_uid is not None:
        return first_or_404(Series.objects.visible_to(user).filter(
            study__study_instance_uid=study_uid, series_instance_uid=series_uid
        ))
    return first_or_404(Study.objects.visible_to(user).filter(study_instance_uid=study_uid))


def instance_storage():
    return Instance._meta.get_field("file").storage


#: The resource a read is about, named by the deepest UID in its URL.
TARGET_TYPES = (("instance_uid", "scans.Instance"), ("series_uid", "scans.Series"), ("study_uid", "scans.Study"))


def audited_read(transaction, *, action, searched_type=None):
    """Record one audit event for every successful read through a DICOMweb view's ``get``.

    Applied to every DICOMweb read in this module, so no view writes its own read events: who
    (the request's user and hospital), what (the resource's UIDs, or the search's query), when
    and from where. ``searched_type`` names what a search without UIDs in its URL looks for.
    """

    def decorate(get):
        @functools.wraps(get)
        def audited_get(view, request, **uids):
            response = get(view, request, **uids)
            if 200 <= response.status_code < 300:
                target_type, target_id = next(
                    ((label, uids[name]) for name, label in TARGET_TYPES if uids.get(name)), (searched_type, "")
                )
                detail = {"transaction": transaction, **{name: value for name, value in uids.items() if value}}
                if request.GET:
                    detail["query"] = query_summary(request.GET)
                record_event(
                    action=action, target_type=target_type, target_id=target_id, request=request, detail=detail
                )
            return response

        return audited_get

    return decorate


# QIDO-RS and STOW-RS ------------------------------------------------------------------------------


class LengthRequired(exceptions.APIException):
    status_code = 411
    default_detail = "This server cannot read chunked request bodies; send a Content-Length header."


def request_body_stream(request):
    """The raw body as a file-like object, without Django reading it into memory.

    Clients such as dicomweb-client send large bodies with ``Transfer-Encoding: chunked`` and no
    Content-Length; Django's request then looks empty, but a server that de-chunks (gunicorn sets
    ``wsgi.input_terminated``) hands the whole body over ``wsgi.input``. runserver cannot do that.
    """
    django_request = request._request
    if django_request.META.get("CONTENT_LENGTH"):
        return django_request
    if "chunked" in django_request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        if django_request.META.get("wsgi.input_terminated"):
            return django_request.META["wsgi.input"]
        raise LengthRequired()
    raise MalformedMultipart("The request has no body.")


def store_response(request, *, study_uid):
    """STOW-RS: check the media type, store every part, answer the Store Instances Response."""
    media_type, parameters = parse_content_type(request.META.get("CONTENT_TYPE", ""))
    if media_type != "multipart/related":
        raise exceptions.UnsupportedMediaType(
            media_type or "(none)", 'STOW-RS takes multipart/related; type="application/dicom".'
        )
    if parameters.get("type", stow.DICOM_MEDIA_TYPE).lower() != stow.DICOM_MEDIA_TYPE:
        raise exceptions.UnsupportedMediaType(
            parameters["type"], "Only application/dicom parts (PS3.10 files) are stored, not metadata and bulk data."
        )
    if request.user.hospital_id is None:
        raise exceptions.PermissionDenied("Only users of a hospital can store instances.")
    root = qido.dicomweb_root(request)
    outcome = stow.store_instances(
        user=request.user,
        stream=request_body_stream(request),
        boundary=parameters.get("boundary", ""),
        study_uid=study_uid,
        root=root,
    )
    if not outcome.referenced and not outcome.failed:
        raise MalformedMultipart("The request contains no instances.")
    dataset = stow.response_dataset(outcome, root=root, study_uid=study_uid)
    return dicom_json_response(dataset.to_json_dict(), status=outcome.http_status)


class StudiesView(DicomWebView):
    """``/studies``: QIDO-RS search for studies (GET), STOW-RS store (POST)."""

    @audited_read("QIDO-RS studies", action=AuditAction.SEARCH, searched_type="scans.Study")
    def get(self, request):
        found = qido.search_studies(request=request, user=request.user, parameters=request.GET)
        return dicom_json_response(found.results, warnings=found.warnings)

    def post(self, request):
        return store_response(request, study_uid=None)


class SeriesSearchView(DicomWebView):
    """``/series`` and ``/studies/{study}/series``: QIDO-RS search for series, with their processing status."""

    @audited_read("QIDO-RS series", action=AuditAction.SEARCH, searched_type="scans.Series")
    def get(self, request, study_uid=None):
        found = qido.search_series(request=request, user=request.user, parameters=request.GET, study_uid=study_uid)
        return dicom_json_response(found.results, warnings=found.warnings)


class InstanceSearchView(DicomWebView):
    """``/instances``, ``/studies/{study}/instances`` and ``/studies/{study}/series/{series}/instances``."""

    @audited_read("QIDO-RS instances", action=AuditAction.SEARCH, searched_type="scans.Instance")
    def get(self, request, study_uid=None, series_uid=None):
        found = qido.search_instances(
            request=request, user=request.user, parameters=request.GET, study_uid=study_uid, series_uid=series_uid
        )
        return dicom_json_response(found.results, warnings=found.warnings)


# WADO-RS ------------------------------------------------------------------------------------------


class RetrieveView(DicomWebView):
    """``/studies/{study}[/series/{series}[/instances/{instance}]]``: the DICOM files, streamed as multipart.

    Files go out as they were stored, or transcoded to Explicit VR Little Endian when that is asked
    for (``retrieve_syntax``); each part's Content-Type names the syntax it is in. POST on a study
    URL is STOW-RS into it.
    """

    def get(self, request, study_uid, series_uid=None, instance_uid=None):
        target = audit_target(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        files = list(
            stored_instances(
                request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid
            ).values_list("file", "transfer_syntax_uid")
        )
        if not files:
            raise Http404
        asked_syntax = retrieve_syntax(request, {transfer_syntax for _, transfer_syntax in files})
        record_event(
            action=AuditAction.DOWNLOAD,
            target=target,
            request=request,
            detail={"transaction": "WADO-RS retrieve", "instances": len(files)},
        )
        storage = instance_storage()
        if asked_syntax is None:
            parts = (
                (f"application/dicom; transfer-syntax={transfer_syntax}", storage.open(name, "rb"))
                for name, transfer_syntax in files
            )
        else:
            parts = (
                (f"application/dicom; transfer-syntax={asked_syntax}",
                 transcoding.explicit_little_endian(storage, name))
                for name, _ in files
            )
        boundary = new_boundary()
        response = StreamingHttpResponse(
            multipart_stream(parts, boundary),
            content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        )
        response["Cache-Control"] = "private, no-store"
        return response

    def post(self, request, study_uid, series_uid=None, instance_uid=None):
        if series_uid is not None:
            raise exceptions.MethodNotAllowed("POST")
        return store_response(request, study_uid=study_uid)


class MetadataView(DicomWebView):
    """``.../metadata``: the headers stored at ingest (``Instance.dicom_header``) as a DICOM JSON array.

    The files are not opened: an instance stored before headers were kept is read once here, and
    ``manage.py backfill_dicom_headers`` stores those headers for good.
    """

    def get(self, request, study_uid, series_uid=None, instance_uid=None):
        target = audit_target(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        rows = list(
            stored_instances(
                request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid
            ).values_list(
                "series__study__study_instance_uid", "series__series_instance_uid", "sop_instance_uid", "pk"
            )
        )
        if not rows:
            raise Http404
        record_event(
            action=AuditAction.VIEW,
            target=target,
            request=request,
            detail={"transaction": "WADO-RS metadata", "instances": len(rows)},
        )
        response = StreamingHttpResponse(
            metadata_stream(rows, root=qido.dicomweb_root(request)), content_type=DICOM_JSON
        )
        response["Cache-Control"] = "private, no-store"
        return response


METADATA_BATCH_SIZE = 200


def metadata_stream(rows, *, root):
    """A JSON array of stored headers, fetched from the database a batch at a time; BulkDataURIs made absolute.

    The headers are read as the database's JSON text and passed on without decoding them: both
    SQLite (Django's ``json.dumps``) and PostgreSQL (``jsonb::text``) write ``"key": "value"``,
    so the relative BulkDataURIs are found by their text.
    """
    yield b"["
    for start in range(0, len(rows), METADATA_BATCH_SIZE):
        batch = rows[start : start + METADATA_BATCH_SIZE]
        stored = dict(
            Instance.objects.filter(pk__in=[pk for *_, pk in batch])
            .annotate(header_text=Cast("dicom_header", output_field=TextField()))
            .values_list("pk", "header_text")
        )
        for index, (study_uid, series_uid, sop_instance_uid, pk) in enumerate(batch, start=start):
            header_text = stored.get(pk)
            if header_text is None or header_text == "null":
                header_text = json.dumps(header_from_file(pk))
            instance_url = qido.instance_url(root, study_uid, series_uid, sop_instance_uid)
            text = header_text.replace(
                f'"BulkDataURI": "{BULK_DATA_URI_PREFIX}', f'"BulkDataURI": "{instance_url}/{BULK_DATA_URI_PREFIX}'
            )
            yield (b"," if index else b"") + text.encode()
    yield b"]"


def header_from_file(pk):
    """The header of an instance stored before headers were kept, read from its file.

    A file that cannot be read (missing from storage, damaged) is logged and answered with the
    identifying attributes the database holds, so that the rest of the series still opens.
    """
    instance = Instance.objects.select_related("series__study").get(pk=pk)
    try:
        with instance_storage().open(instance.file.name, "rb") as stored:
            return stored_header_json(stored)
    except Exception:  # noqa: BLE001 - storage and pydicom raise many kinds; the answer must not break mid-stream
        logger.exception("stored instance file unreadable", extra={"instance_id": pk})
        return to_dicom_json({
            "SOPClassUID": instance.sop_class_uid,
            "SOPInstanceUID": instance.sop_instance_uid,
            "StudyInstanceUID": instance.series.study.study_instance_uid,
            "SeriesInstanceUID": instance.series.series_instance_uid,
        })


class RenderedView(DicomWebView):
    """``.../instances/{instance}/rendered`` and ``.../frames/{frames}/rendered``: one frame as JPEG or PNG."""

    @audited_read("WADO-RS rendered", action=AuditAction.VIEW)
    def get(self, request, study_uid, series_uid, instance_uid, frame_list="1"):
        media_type = rendered_media_type(request)
        frame_numbers = [number for number in frame_list.split(",") if number]
        if len(frame_numbers) != 1:
            raise rendering.CannotRender("Ask for one frame at a time.")
        instance = first_or_404(
            stored_instances(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        )
        window = request.GET.get("window")
        quality = request.GET.get("quality", "")
        with instance_storage().open(instance.file.name, "rb") as stored:
            image = rendering.render_frame(
                fileobj=stored,
                instance=instance,
                frame_number=int(frame_numbers[0]),
                media_type=media_type,
                window=rendering.window_from_parameter(window) if window else None,
                quality=int(quality) if quality.isdigit() and 1 <= int(quality) <= 100 else rendering.JPEG_QUALITY,
            )
        response = HttpResponse(image, content_type=media_type)
        response["Cache-Control"] = "private, no-store"
        return response


def frame_numbers_of(frame_list):
    numbers = [int(number) for number in frame_list.split(",") if number]
    if not numbers:
        raise rendering.CannotRender("Name at least one frame.")
    return numbers


def multipart_response(parts, *, multipart_type):
    """A multipart/related answer from (Content-Type, bytes) parts, produced as it is sent."""
    boundary = new_boundary()

    def stream():
        for content_type, data in parts:
            yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1")
            yield data
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode("latin-1")

    response = StreamingHttpResponse(
        stream(), content_type=f'multipart/related; type="{multipart_type}"; boundary={boundary}'
    )
    response["Cache-Control"] = "private, no-store"
    return response


def pixel_parts(request, *, instance, frame_numbers):
    """Negotiate, then read every asked frame before answering, so that a decoding error is a clean 4xx."""
    with instance_storage().open(instance.file.name, "rb") as stored:
        source = frames.pixel_source(stored)
        # Rows stored before ingest recorded the syntax name none: the file's own meta header says it.
        stored_syntax = instance.transfer_syntax_uid or str(source.transfer_syntax)
        choice = frames.negotiate(request.META.get("HTTP_ACCEPT"), stored_syntax)
        numbers = frame_numbers or range(1, source.number_of_frames + 1)
        frames.check_frame_numbers(numbers, source)
        return list(frames.frame_parts(stored, source, numbers, choice)), choice


class FramesView(DicomWebView):
    """``.../instances/{instance}/frames/{list}``: pixel data of the listed frames (see ``frames``)."""

    def get(self, request, study_uid, series_uid, instance_uid, frame_list):
        numbers = frame_numbers_of(frame_list)
        instance = first_or_404(
            stored_instances(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        )
        parts, choice = pixel_parts(request, instance=instance, frame_numbers=numbers)
        record_event(
            action=AuditAction.VIEW,
            target=instance,
            request=request,
            detail={"transaction": "WADO-RS frames", "frames": numbers[:20]},
        )
        return multipart_response(parts, multipart_type=choice.multipart_type)


class BulkDataView(DicomWebView):
    """``.../instances/{instance}/bulkdata/{tag path}``: the values the stored headers name by BulkDataURI.

    Pixel Data is answered frame by frame, negotiated like ``frames``; any other binary value as
    application/octet-stream.
    """

    def get(self, request, study_uid, series_uid, instance_uid, tag_path):
        instance = first_or_404(
            stored_instances(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        )
        if tag_path == "7FE00010":
            parts, choice = pixel_parts(request, instance=instance, frame_numbers=None)
            multipart_type = choice.multipart_type
        else:
            with instance_storage().open(instance.file.name, "rb") as stored:
                parts = [(frames.OCTET_STREAM, frames.bulk_value(stored, tag_path))]
            multipart_type = frames.OCTET_STREAM
        record_event(
            action=AuditAction.VIEW,
            target=instance,
            request=request,
            detail={"transaction": "WADO-RS bulk data", "tag": tag_path},
        )
        return multipart_response(parts, multipart_type=multipart_type)


MAXIMUM_RENDERED_INSTANCES = 1000


def rendered_part_type(request):
    """The image type of a multipart rendered answer: ``multipart/related; type="image/jpeg"`` (or png)."""
    for media_type, parameters, _ in accepted_media_types(request):
        part_type = parameters.get("type", "image/jpeg").lower() if media_type == "multipart/related" else media_type
        if part_type in rendering.RENDERED_MEDIA_TYPES:
            return part_type
        if part_type in ("*/*", "image/*", "multipart/*"):
            return "image/jpeg"
    raise exceptions.NotAcceptable('Rendered studies and series are sent as multipart/related; type="image/jpeg".')


class RenderedCollectionView(DicomWebView):
    """``/studies/{study}/rendered`` and ``.../series/{series}/rendered``: the first frame of every instance,
    rendered (stored window, else as ``rendering`` chooses), one part each, in series and slice order."""

    def get(self, request, study_uid, series_uid=None):
        part_type = rendered_part_type(request)
        target = audit_target(request.user, study_uid=study_uid, series_uid=series_uid)
        instances = list(stored_instances(request.user, study_uid=study_uid, series_uid=series_uid)[
            : MAXIMUM_RENDERED_INSTANCES + 1
        ])
        if not instances:
            raise Http404
        if len(instances) > MAXIMUM_RENDERED_INSTANCES:
            raise rendering.CannotRender(
                f"More than {MAXIMUM_RENDERED_INSTANCES} instances: ask for the rendered series one at a time."
            )
        viewport = request.GET.get("viewport")
        parts = []
        for instance in instances:
            with instance_storage().open(instance.file.name, "rb") as stored:
                parts.append((part_type, rendering.render_frame(
                    fileobj=stored, instance=instance, frame_number=1, media_type=part_type,
                    viewport=rendering.viewport_from_parameter(viewport) if viewport else None,
                )))
        record_event(
            action=AuditAction.VIEW,
            target=target,
            request=request,
            detail={"transaction": "WADO-RS rendered", "instances": len(parts)},
        )
        return multipart_response(parts, multipart_type=part_type)


THUMBNAIL_VIEWPORT = (128, 128)


def representative_instance(instances):
    """The middle instance (in slice order) of the first series: what a person would pick to recognise a scan."""
    first = instances.first()
    if first is None:
        raise Http404
    of_series = instances.filter(series=first.series_id)
    return of_series[of_series.count() // 2]


class ThumbnailView(DicomWebView):
    """``.../thumbnail`` of a study, series or instance (PS3.18 8.3.5.1.4): a small rendered frame."""

    def get(self, request, study_uid, series_uid=None, instance_uid=None):
        media_type = rendered_media_type(request)
        viewport = request.GET.get("viewport")
        instance = representative_instance(
            stored_instances(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        )
        with instance_storage().open(instance.file.name, "rb") as stored:
            image = rendering.render_frame(
                fileobj=stored,
                instance=instance,
                frame_number=1,
                media_type=media_type,
                viewport=rendering.viewport_from_parameter(viewport) if viewport else THUMBNAIL_VIEWPORT,
            )
        record_event(
            action=AuditAction.VIEW, target=instance, request=request, detail={"transaction": "WADO-RS thumbnail"}
        )
        response = HttpResponse(image, content_type=media_type)
        response["Cache-Control"] = "private, no-store"
        return response


class WadoUriView(DicomWebView):
    """WADO-URI (PS3.18 9): ``/dicomweb/wado?requestType=WADO&studyUID=&seriesUID=&objectUID=``, for older clients.

    ``contentType=application/dicom`` answers the file as stored (a ``transferSyntax`` other than
    the stored one is 406); otherwise (default image/jpeg, or image/png) one rendered frame,
    ``frameNumber``, ``windowCenter``/``windowWidth`` and ``rows``/``columns`` honoured.
    """

    def get(self, request):
        parameters = request.GET
        if parameters.get("requestType") != "WADO":
            raise rendering.CannotRender("requestType must be WADO.")
        uids = [parameters.get(name, "") for name in ("studyUID", "seriesUID", "objectUID")]
        if not all(uids):
            raise rendering.CannotRender("studyUID, seriesUID and objectUID are all required.")
        instance = first_or_404(
            stored_instances(request.user, study_uid=uids[0], series_uid=uids[1], sop_instance_uid=uids[2])
        )
        content_type = parameters.get("contentType", "image/jpeg").split(",")[0].strip().lower()
        if content_type == "application/dicom":
            asked_syntax = parameters.get("transferSyntax")
            if asked_syntax and asked_syntax != instance.transfer_syntax_uid:
                raise frames.NotAcceptable(
                    f"The instance is stored as {instance.transfer_syntax_uid} and is sent as stored."
                )
            record_event(
                action=AuditAction.DOWNLOAD, target=instance, request=request, detail={"transaction": "WADO-URI"}
            )
            response = StreamingHttpResponse(
                instance_storage().open(instance.file.name, "rb"), content_type=content_type
            )
        elif content_type in rendering.RENDERED_MEDIA_TYPES:
            response = HttpResponse(wado_uri_image(request, instance, content_type), content_type=content_type)
        else:
            raise frames.NotAcceptable("contentType may be application/dicom, image/jpeg or image/png.")
        response["Cache-Control"] = "private, no-store"
        return response


def wado_uri_image(request, instance, media_type):
    parameters = request.GET
    window = None
    if parameters.get("windowCenter") and parameters.get("windowWidth"):
        window = rendering.window_from_parameter(f"{parameters['windowCenter']},{parameters['windowWidth']}")
    viewport = None
    if parameters.get("columns") or parameters.get("rows"):
        viewport = rendering.viewport_from_parameter(f"{parameters.get('columns', '')},{parameters.get('rows', '')}")
    frame_number = parameters.get("frameNumber", "1")
    if not frame_number.isdigit():
        raise rendering.CannotRender("frameNumber must be a whole number.")
    with instance_storage().open(instance.file.name, "rb") as stored:
        image = rendering.render_frame(
            fileobj=stored, instance=instance, frame_number=int(frame_number), media_type=media_type,
            window=window, viewport=viewport,
        )
    record_event(action=AuditAction.VIEW, target=instance, request=request, detail={"transaction": "WADO-URI"})
    return image


def unknown_resource(request, *args, **kwargs):
    """Paths under /dicomweb/ that name no DICOMweb resource: 404 in JSON, whatever the method or login."""
    return JsonResponse({"detail": "There is no DICOMweb resource at this path."}, status=404)
