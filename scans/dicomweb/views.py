"""DICOMweb views: thin HTTP wrappers around ``qido``, ``stow``, ``rendering`` and the stored files.

They are DRF views for DRF's authentication (API key as ``Bearer``, or the session with its CSRF
check), the IsClinicalStaff permission and JSON errors, but they answer with plain Django
responses in the DICOMweb media types, and they never let DRF or Django parse a request body:
STOW-RS reads the raw stream itself.
"""

import json

import pydicom
from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from accounts.permissions import IsClinicalStaff
from portal.audit import record_event
from portal.models import AuditAction
from scans.dicomweb import qido, rendering, stow
from scans.dicomweb.dicom_json import MEDIA_TYPE as DICOM_JSON
from scans.dicomweb.multipart import MalformedMultipart, multipart_stream, new_boundary, parse_content_type
from scans.models import Instance, Series, Study


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


def require_dicom_multipart(request):
    """WADO-RS retrieve answers multipart/related; type="application/dicom" in the stored transfer syntax."""
    for media_type, parameters, _ in accepted_media_types(request):
        if media_type in ("*/*", "multipart/*", "application/dicom"):
            return
        if media_type == "multipart/related" and parameters.get("type", "application/dicom").lower() in (
            "application/dicom", "application/*", "*/*"
        ):
            return
    raise exceptions.NotAcceptable(
        'Instances are sent as multipart/related; type="application/dicom" in the transfer syntax they were stored in.'
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

    def get(self, request):
        found = qido.search_studies(request=request, user=request.user, parameters=request.GET)
        return dicom_json_response(found.results, warnings=found.warnings)

    def post(self, request):
        return store_response(request, study_uid=None)


class SeriesSearchView(DicomWebView):
    """``/series`` and ``/studies/{study}/series``: QIDO-RS search for series, with their processing status."""

    def get(self, request, study_uid=None):
        found = qido.search_series(request=request, user=request.user, parameters=request.GET, study_uid=study_uid)
        return dicom_json_response(found.results, warnings=found.warnings)


class InstanceSearchView(DicomWebView):
    """``/instances``, ``/studies/{study}/instances`` and ``/studies/{study}/series/{series}/instances``."""

    def get(self, request, study_uid=None, series_uid=None):
        found = qido.search_instances(
            request=request, user=request.user, parameters=request.GET, study_uid=study_uid, series_uid=series_uid
        )
        return dicom_json_response(found.results, warnings=found.warnings)


# WADO-RS ------------------------------------------------------------------------------------------


class RetrieveView(DicomWebView):
    """``/studies/{study}[/series/{series}[/instances/{instance}]]``: the DICOM files, streamed as multipart.

    Files go out as they were stored: a ``transfer-syntax`` asked for in Accept is not transcoded
    to; each part's Content-Type names the syntax it is in. POST on a study URL is STOW-RS into it.
    """

    def get(self, request, study_uid, series_uid=None, instance_uid=None):
        require_dicom_multipart(request)
        target = audit_target(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        files = list(
            stored_instances(
                request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid
            ).values_list("file", "transfer_syntax_uid")
        )
        if not files:
            raise Http404
        record_event(
            action=AuditAction.DOWNLOAD,
            target=target,
            request=request,
            detail={"transaction": "WADO-RS retrieve", "instances": len(files)},
        )
        storage = instance_storage()
        parts = (
            (f"application/dicom; transfer-syntax={transfer_syntax}", storage.open(name, "rb"))
            for name, transfer_syntax in files
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
    """``.../metadata``: the stored DICOM headers (without pixel data) as a DICOM JSON array."""

    def get(self, request, study_uid, series_uid=None, instance_uid=None):
        target = audit_target(request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid)
        names = list(
            stored_instances(
                request.user, study_uid=study_uid, series_uid=series_uid, sop_instance_uid=instance_uid
            ).values_list("file", flat=True)
        )
        if not names:
            raise Http404
        record_event(
            action=AuditAction.VIEW,
            target=target,
            request=request,
            detail={"transaction": "WADO-RS metadata", "instances": len(names)},
        )
        response = StreamingHttpResponse(metadata_stream(names), content_type=DICOM_JSON)
        response["Cache-Control"] = "private, no-store"
        return response


def metadata_stream(names):
    """A JSON array of headers, one stored file read at a time."""
    storage = instance_storage()
    yield b"["
    for index, name in enumerate(names):
        with storage.open(name, "rb") as stored:
            header = pydicom.dcmread(stored, stop_before_pixels=True)
        yield (b"," if index else b"") + json.dumps(header.to_json_dict()).encode()
    yield b"]"


class RenderedView(DicomWebView):
    """``.../instances/{instance}/rendered`` and ``.../frames/{frames}/rendered``: one frame as JPEG or PNG."""

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
        record_event(
            action=AuditAction.VIEW,
            target=instance,
            request=request,
            detail={"transaction": "WADO-RS rendered", "frame": int(frame_numbers[0])},
        )
        response = HttpResponse(image, content_type=media_type)
        response["Cache-Control"] = "private, no-store"
        return response
