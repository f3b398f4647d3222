"""Serving private files: checked by the caller, recorded, then streamed or redirected to a short-lived URL."""

import mimetypes
from pathlib import PurePosixPath

from django.conf import settings
from django.http import FileResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

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
        url = storage.url(
            file_field.name,
            parameters={
                "ResponseContentDisposition": content_disposition_header(as_attachment, name),
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


class PrivateS3Storage(S3Storage):
    """The private bucket, with presigned URLs signed for the address browsers use.

    Inside the cluster the web process talks to ``endpoint_url`` (``http://minio:9000``),
    a name no browser can resolve, and a presigned URL's signature covers its host, so
    it cannot be rewritten afterwards. With ``public_endpoint_url`` set, download URLs
    are signed for that address instead; uploads and reads still use ``endpoint_url``.
    """

    def __init__(self, *, public_endpoint_url=None, **options):
        self.public_endpoint_url = public_endpoint_url
        self._public_client = None
        super().__init__(**options)

    def __getstate__(self):
        state = super().__getstate__()
        state["_public_client"] = None
        return state

    def url(self, name, parameters=None, expire=None, http_method=None):
        if not self.public_endpoint_url:
            return super().url(name, parameters=parameters, expire=expire, http_method=http_method)
        if self._public_client is None:
            self._public_client = self._create_session().client(
                "s3",
                region_name=self.region_name,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
                verify=self.verify,
            )
        params = dict(parameters or {}, Bucket=self.bucket_name, Key=self._normalize_name(clean_name(name)))
        return self._public_client.generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )
