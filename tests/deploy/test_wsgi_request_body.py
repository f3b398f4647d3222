"""portal.wsgi's reader of gunicorn request bodies: the fast path must apply to real gunicorn requests.

The wrapper steps aside when gunicorn's body does not look as it expects (a reader with ``read``,
a buffer with ``tell``, an unreader with ``mxchunk`` and ``sock``): uploads then still work, only
through gunicorn's 1 KB steps, and nothing else would notice. Here gunicorn's own parser reads
real requests from a socket, so a gunicorn upgrade that renames any of these fails this test.
"""

import socket
import threading

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.http.parser import RequestParser

import portal.wsgi
from portal.wsgi import RequestBody

BODY = bytes(range(256)) * 4096  # 1 MiB: 1,024 of gunicorn's own steps, 128 of its socket reads
CLIENT_ADDRESS = ("127.0.0.1", 40000)
SERVER_ADDRESS = ("127.0.0.1", 8000)


def with_length(body):
    head = f"POST /dicomweb/studies HTTP/1.1\r\nHost: portal.test\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def chunked(body, chunk_size=64 * 1024):
    chunks = [body[start : start + chunk_size] for start in range(0, len(body), chunk_size)]
    encoded = b"".join(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" for chunk in chunks) + b"0\r\n\r\n"
    return b"POST /dicomweb/studies HTTP/1.1\r\nHost: portal.test\r\nTransfer-Encoding: chunked\r\n\r\n" + encoded


class RecordingSocket:
    """The server end of the connection, recording the size of each read gunicorn asks the socket for."""

    def __init__(self, connection):
        self.connection = connection
        self.read_sizes = []

    def recv(self, size):
        self.read_sizes.append(size)
        return self.connection.recv(size)

    def __getattr__(self, name):
        return getattr(self.connection, name)


@pytest.fixture
def gunicorn_request():
    """``send(raw_request)`` -> (environ as gunicorn builds it, the recording socket)."""
    opened = []

    def send(raw_request):
        server_end, client_end = socket.socketpair()
        opened.extend([server_end, client_end])
        sender = threading.Thread(target=client_end.sendall, args=(raw_request,), daemon=True)
        sender.start()
        recording = RecordingSocket(server_end)
        config = Config()
        request = next(RequestParser(config, recording, CLIENT_ADDRESS))
        _, environ = gunicorn_wsgi.create(request, recording, CLIENT_ADDRESS, SERVER_ADDRESS, config)
        return environ, recording

    yield send
    for end in opened:
        end.close()


def serve(environ, monkeypatch, handle_body):
    """Run ``portal.wsgi.application`` with Django replaced by ``handle_body(wsgi.input)``."""
    handled = {}

    def django_application(environ, start_response):
        handled["body"] = environ["wsgi.input"]
        handled["result"] = handle_body(environ["wsgi.input"])
        return []

    monkeypatch.setattr(portal.wsgi, "django_application", django_application)
    portal.wsgi.application(environ, lambda status, headers: None)
    return handled["body"], handled["result"]


def count_reader_calls(environ):
    """Record each size asked of gunicorn's length or de-chunking reader (gunicorn's Body asks 1,024 at a time)."""
    reader = environ["wsgi.input"].reader
    sizes = []
    read = reader.read

    def recording_read(size):
        sizes.append(size)
        return read(size)

    reader.read = recording_read
    return sizes


@pytest.mark.parametrize("raw_request", [with_length(BODY), chunked(BODY)], ids=["content-length", "chunked"])
def test_a_large_read_goes_to_gunicorns_reader_in_one_call_with_large_socket_reads(
    gunicorn_request, monkeypatch, raw_request
):
    environ, connection = gunicorn_request(raw_request)
    reader_sizes = count_reader_calls(environ)
    header_reads = len(connection.read_sizes)

    body, data = serve(environ, monkeypatch, lambda body: body.read(len(BODY)))

    assert isinstance(body, RequestBody), "gunicorn's body no longer looks as portal.wsgi expects"
    assert data == BODY
    assert reader_sizes == [len(BODY)], "the read went through gunicorn's 1 KB steps"
    body_reads = connection.read_sizes[header_reads:]
    assert body_reads and set(body_reads) == {RequestBody.SOCKET_READ_BYTES}, "socket reads stayed small"


def test_a_read_after_readline_gets_the_rest_of_the_body_exactly(gunicorn_request, monkeypatch):
    body_with_lines = b"--boundary\r\nContent-Type: application/dicom\r\n\r\n" + BODY
    environ, _ = gunicorn_request(with_length(body_with_lines))

    _, (first_line, rest) = serve(environ, monkeypatch, lambda body: (body.readline(), body.read(len(body_with_lines))))

    assert first_line + rest == body_with_lines
