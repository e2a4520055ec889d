"""The transport under ``fetch_feed``: one deadline over every socket read, and bodies
decoded (gzip/deflate) chunk by chunk under a byte cap.
"""

from __future__ import annotations

import functools
import http.client
import io
import socket
import ssl
import time
import urllib.request
import zlib
from typing import Any

__all__ = ["CHUNK", "DeadlineHandler", "FetchFailed", "read_body"]

CHUNK = 64 * 1024  # bytes a read asks for


class FetchFailed(Exception):
    """Internal: stops a fetch with a one-line reason that becomes ``FetchResult.error``."""


def read_body(response: http.client.HTTPResponse, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchFailed(f"response over {max_bytes} bytes")
    decoder = _BodyDecoder(response.headers.get("Content-Encoding"), max_bytes)
    received = 0
    # Every read goes through _DeadlineReader, so a trickling server hits the deadline here.
    while chunk := response.read(CHUNK):
        received += len(chunk)
        if received > max_bytes:
            raise FetchFailed(f"response over {max_bytes} bytes")
        decoder.feed(chunk)
    return decoder.finish()


class _BodyDecoder:
    """Undo gzip/deflate chunk by chunk, never holding more than ``max_bytes`` of output."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        self._coding = (content_encoding or "identity").strip().lower()
        if self._coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise FetchFailed(f"unsupported content encoding {self._coding!r}")
        self._max_bytes = max_bytes
        self._out = bytearray()
        self._pending = b""
        self._inflater: Any = None

    def feed(self, chunk: bytes) -> None:
        if self._coding == "identity":
            self._append(chunk)
            return
        if self._inflater is None:
            self._pending += chunk
            if len(self._pending) < 2:
                return
            self._inflater = zlib.decompressobj(self._wbits(self._pending))
            chunk, self._pending = self._pending, b""
        self._inflate(chunk)

    def finish(self) -> bytes:
        if self._coding != "identity" and (self._pending or self._inflater is not None):
            if self._inflater is None or not self._inflater.eof:
                raise FetchFailed(f"truncated {self._coding} body")
        return bytes(self._out)

    def _wbits(self, head: bytes) -> int:
        if self._coding != "deflate":
            return 16 + zlib.MAX_WBITS
        # "deflate" should be zlib-wrapped (RFC 9110) but many servers send raw deflate.
        is_zlib = head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS

    def _inflate(self, data: bytes) -> None:
        while data:
            try:
                # max_length >= 1 always (_append fails first), so output stays bounded.
                self._append(self._inflater.decompress(data, self._max_bytes + 1 - len(self._out)))
            except zlib.error as error:
                raise FetchFailed(f"corrupt {self._coding} body: {error}") from error
            if not self._inflater.eof:
                data = self._inflater.unconsumed_tail
            elif self._inflater.unused_data[:2] == b"\x1f\x8b":  # another gzip member follows
                data = self._inflater.unused_data
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                return

    def _append(self, data: bytes) -> None:
        self._out += data
        if len(self._out) > self._max_bytes:
            what = "response" if self._coding == "identity" else "decompressed body"
            raise FetchFailed(f"{what} over {self._max_bytes} bytes")


# --- the deadline: every socket read gets only the time left ---------------------------------


class _DeadlineReader(io.RawIOBase):
    """Socket reader that sets the socket timeout to the time left before each read."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # holds a reference so the socket stays open
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("fetch deadline passed")
        self._sock.settimeout(remaining)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _DeadlineHTTPResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # Status line, headers and body are all read through the deadline-aware reader.
        self.fp.close()
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class DeadlineHandler(urllib.request.AbstractHTTPHandler):
    """http and https whose connections read responses under one deadline."""

    http_request = urllib.request.AbstractHTTPHandler.do_request_
    https_request = urllib.request.AbstractHTTPHandler.do_request_

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self._deadline = deadline
        self._tls = ssl.create_default_context()

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection(http.client.HTTPConnection), req)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(self._connection(http.client.HTTPSConnection), req, context=self._tls)

    def _connection(self, kind: type[http.client.HTTPConnection]) -> Any:
        def connect(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            connection = kind(*args, **kwargs)
            connection.response_class = functools.partial(  # type: ignore[assignment]
                _DeadlineHTTPResponse, deadline=self._deadline
            )
            return connection

        return connect
