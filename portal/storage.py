"""Serving private files: checked by the caller, recorded, then streamed or redirected to a short-lived URL."""

import mimetypes
from pathlib import PurePosixPath

from django.conf import settings
from django.http import FileResponse, HttpResponseRedirect

from portal.audit import record_event
from portal.models import AuditAction


def private_file_response(*, request, file_field, target, download_name=None, as_attachment=True, audit=True):
    """Answer a request for a file the caller has already found through ``visible_to``.

    Local storage streams the file; S3 answers with a redirect to a presigned URL
    that expires after ``PRIVATE_URL_EXPIRY_SECONDS``. Either way one audit row is written.
    """
    if audit:
        record_event(
            action=AuditAction.DOWNLOAD if as_attachment else AuditAction.VIEW,
            target=target,
            request=request,
            detail={"file": file_field.name},
        )
    name = download_name or PurePosixPath(file_field.name).name
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    storage = file_field.storage
    if getattr(storage, "bucket_name", None):
        disposition = "attachment" if as_attachment else "inline"
        url = storage.url(
            file_field.name,
            parameters={
                "ResponseContentDisposition": f'{disposition}; filename="{name}"',
                "ResponseContentType": content_type,
            },
            expire=settings.PRIVATE_URL_EXPIRY_SECONDS,
        )
        return HttpResponseRedirect(url)
    response = FileResponse(
        storage.open(file_field.name, "rb"), as_attachment=as_attachment, filename=name, content_type=content_type
    )
    response["Cache-Control"] = "private, no-store"
    return response
