"""An upstream answer as the egress layer hands it back: streamed, capped and optionally inflated.

The body is never held whole: it is read in chunks, each read bounded by the read timeout and the
call's total deadline, the raw bytes capped by `max_response_bytes` and, when decompression is
asked for, the inflated bytes capped by `max_decompressed_bytes` (zlib is asked for at most one
chunk at a time, so a gzip bomb costs no more memory than an honest answer).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from common.errors import ApiError

CHUNK = 64 * 1024
DRAIN_LIMIT = 64 * 1024
INFLATABLE = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class ResponseTooLarge(ApiError):
    status = 502
    code = "upstream_response_too_large"


class UpstreamTimeout(ApiError):
    status = 504
    code = "upstream_timeout"


class Inflater:
    """Incremental gzip/deflate decoding whose output is bounded chunk by chunk and in total."""

    def __init__(self, encoding: str, limit: int):
        self.wbits = INFLATABLE[encoding]
        self.limit = limit
        self.total = 0
        self.raw_deflate_tried = False
        self.obj = zlib.decompressobj(self.wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self.obj.decompress(data, CHUNK)
            except zlib.error:
                if self.wbits != zlib.MAX_WBITS or self.raw_deflate_tried or self.total:
                    raise ResponseTooLarge("The upstream answer could not be decompressed",
                                           code="upstream_bad_encoding") from None
                # Some servers send raw deflate without the zlib header the name promises.
                self.raw_deflate_tried, self.obj = True, zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            yield from self._count(out)
            if self.obj.eof and self.obj.unused_data:  # a second gzip member follows
                data, self.obj = self.obj.unused_data, zlib.decompressobj(self.wbits)
            else:
                data = self.obj.unconsumed_tail

    def _count(self, out: bytes) -> Iterator[bytes]:
        self.total += len(out)
        if self.total > self.limit:
            raise ResponseTooLarge(f"The upstream answer inflates to more than {self.limit} bytes")
        if out:
            yield out


class EgressResponse:
    """The status and headers of an upstream answer, and its body to stream."""

    def __init__(self, raw, deadline, config, egress_address: str | None, read_timeout: float):
        self.raw = raw
        self.status = raw.status
        self.headers = raw.headers
        self.deadline = deadline
        self.config = config
        self.egress_address = egress_address
        self.read_timeout = read_timeout

    def content_length(self) -> int | None:
        try:
            return int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None

    def check_declared_size(self) -> None:
        """Refuse, before any byte is read, an answer that announces more than the cap."""
        length = self.content_length()
        if length is not None and length > self.config.max_response_bytes:
            self.close()
            raise ResponseTooLarge(f"The upstream answer is {length} bytes, more than the "
                                   f"{self.config.max_response_bytes} allowed")

    def inflater(self, decompress: bool) -> Inflater | None:
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        if decompress and encoding in INFLATABLE:
            return Inflater(encoding, self.config.max_decompressed_bytes)
        return None

    def stream(self, decompress: bool = False) -> Iterator[bytes]:
        """The body in chunks, inflated when asked and possible; raises when a limit is crossed."""
        inflater = self.inflater(decompress)
        received, complete = 0, False
        try:
            for chunk in self._raw_chunks():
                received += len(chunk)
                if received > self.config.max_response_bytes:
                    raise ResponseTooLarge(f"The upstream answer exceeds {self.config.max_response_bytes} bytes")
                if inflater is None:
                    yield chunk
                else:
                    yield from inflater.feed(chunk)
            complete = True
        finally:
            if complete:
                self.raw.release_conn()  # read to the end: the connection serves the next call
            else:
                self.close()

    def _raw_chunks(self) -> Iterator[bytes]:
        while True:
            left = self.deadline.remaining()
            if left <= 0:
                raise UpstreamTimeout(f"The upstream answer took longer than {self.deadline.seconds:g} s")
            self._set_read_timeout(min(self.read_timeout, left))
            try:
                chunk = self.raw.read1(CHUNK, decode_content=False)
            except Exception as exc:  # a timeout or reset mid-body: the caller's stream must end
                raise UpstreamTimeout(f"The upstream answer stopped ({type(exc).__name__})") from None
            if not chunk:
                return
            yield chunk

    def _set_read_timeout(self, seconds: float) -> None:
        sock = getattr(getattr(self.raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(seconds)

    def read(self, limit: int | None = None, decompress: bool = True) -> bytes:
        """The whole body (small answers: token endpoints, retried errors), at most `limit` bytes."""
        parts, size = [], 0
        for chunk in self.stream(decompress):
            size += len(chunk)
            if limit is not None and size > limit:
                self.close()
                raise ResponseTooLarge(f"The upstream answer exceeds {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    def discard(self) -> None:
        """Drop the body, keeping the connection for reuse when what is left is small."""
        length = self.content_length()
        if length is not None and length <= DRAIN_LIMIT:
            try:
                self.raw.drain_conn()
                self.raw.release_conn()
                return
            except Exception:  # noqa: BLE001 - a connection that fails to drain is simply closed
                pass
        self.close()

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            self.raw.release_conn()
