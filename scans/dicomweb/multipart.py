"""multipart/related (RFC 2387) bodies, read and written as streams.

STOW-RS requests carry whole series (a 300-slice 512x512 CT is about 150 MB), so the request body
is never held in memory: ``read_parts`` scans it in chunks and spools each part to a
``SpooledTemporaryFile`` (in memory up to ``FILE_UPLOAD_MAX_MEMORY_SIZE``, then on disk), handing
parts over one at a time. WADO-RS answers are written the same way by ``multipart_stream``.

Kept instead of a library: Django's ``MultiPartParser`` is for forms and skips every part without a
form field name (no STOW-RS part has one); the ``email`` package and requests-toolbelt's
``MultipartDecoder`` hold the whole body in memory; a streaming parser such as python-multipart
would add a dependency for the boundary scan alone, while spooling, the header limit and the messages
for the PACS would stay here anyway.
"""

import tempfile
import uuid
from dataclasses import dataclass
from email.message import Message

from django.conf import settings

from portal.errors import UserFacingError

READ_CHUNK_SIZE = 256 * 1024
WRITE_CHUNK_SIZE = 256 * 1024
MAXIMUM_HEADER_BYTES = 16 * 1024


class MalformedMultipart(UserFacingError):
    status_code = 400


def parse_content_type(value):
    """``'multipart/related; type="application/dicom"; boundary=x'`` -> ("multipart/related", {"type": ..., ...})."""
    message = Message()
    message["Content-Type"] = value or ""
    media_type = message.get_content_type() if value else ""
    parameters = {name.lower(): parameter_value for name, parameter_value in message.get_params()[1:]}
    return media_type.lower(), parameters


@dataclass
class Part:
    headers: dict  # lower-case header name -> value
    file: tempfile.SpooledTemporaryFile
    size: int

    @property
    def content_type(self):
        return parse_content_type(self.headers.get("content-type", "application/octet-stream"))


def _spooled_file():
    return tempfile.SpooledTemporaryFile(
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )


def _parse_headers(block):
    headers = {}
    for line in block.decode("latin-1").split("\r\n"):
        if not line:
            continue
        name, separator, value = line.partition(":")
        if not separator:
            raise MalformedMultipart(f"A part header line has no colon: {line[:80]!r}.")
        headers[name.strip().lower()] = value.strip()
    return headers


def _find_header_end(buffer, fill):
    """Where the current part's headers end, read in as needed; headers over the limit are refused.

    The limit applies however the bytes arrived: a whole part header in one read counts like one
    trickled in over many.
    """
    while True:
        header_end = buffer.find(b"\r\n\r\n", 0, MAXIMUM_HEADER_BYTES + 4)
        if header_end >= 0:
            return header_end
        if len(buffer) >= MAXIMUM_HEADER_BYTES + 4:
            raise MalformedMultipart(f"A part's headers are longer than {MAXIMUM_HEADER_BYTES // 1024} KB.")
        if not fill():
            raise MalformedMultipart("A part's headers do not end with an empty line.")


def read_parts(stream, boundary):
    """Yield each part of a multipart body read from ``stream`` (anything with ``read(size)``).

    The caller owns each part's file and closes it when done with it (the ingest service keeps a
    group of parts open until their rows are written), so memory stays bounded by the chunk size,
    the spool threshold and what the caller keeps. Raises
    ``MalformedMultipart`` for a body without the boundary, a part without a header end, or a body
    that ends before its closing delimiter.
    """
    if not boundary:
        raise MalformedMultipart("The Content-Type has no boundary parameter.")
    dash_boundary = b"--" + boundary.encode("latin-1")
    delimiter = b"\r\n" + dash_boundary
    buffer = bytearray()
    finished = False

    def fill():
        nonlocal finished
        if finished:
            return False
        chunk = stream.read(READ_CHUNK_SIZE)
        if not chunk:
            finished = True
            return False
        buffer.extend(chunk)
        return True

    # Preamble: everything up to the first boundary line is ignored (RFC 2046 5.1.1).
    while True:
        start = buffer.find(dash_boundary)
        if start >= 0:
            del buffer[: start + len(dash_boundary)]
            break
        del buffer[: max(0, len(buffer) - len(dash_boundary))]
        if not fill():
            raise MalformedMultipart("The body does not contain the boundary given in the Content-Type.")

    while True:
        while len(buffer) < 2 and fill():
            pass
        if buffer[:2] == b"--":
            return
        header_end = _find_header_end(buffer, fill)
        line_end = buffer.find(b"\r\n")
        headers = _parse_headers(bytes(buffer[line_end + 2 : header_end]))
        del buffer[: header_end + 4]

        spool = _spooled_file()
        size = 0
        while True:
            end = buffer.find(delimiter)
            if end >= 0:
                spool.write(buffer[:end])
                size += end
                del buffer[: end + len(delimiter)]
                break
            keep = len(delimiter) - 1
            if len(buffer) > keep:
                spool.write(buffer[: len(buffer) - keep])
                size += len(buffer) - keep
                del buffer[: len(buffer) - keep]
            if not fill():
                spool.close()
                raise MalformedMultipart("The body ended before the closing boundary: was the upload cut short?")
        spool.seek(0)
        yield Part(headers=headers, file=spool, size=size)


def new_boundary():
    return uuid.uuid4().hex


def multipart_stream(parts, boundary):
    """The bytes of a multipart body, chunk by chunk; ``parts`` yields (content type, open binary file).

    Each file is read in chunks and closed once sent, so a whole study is never in memory.
    """
    for content_type, fileobj in parts:
        yield f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode("latin-1")
        with fileobj:
            while chunk := fileobj.read(WRITE_CHUNK_SIZE):
                yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")
