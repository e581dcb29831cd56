"""The aws-chunked framing that ``STREAMING-*`` uploads arrive in, decoded as it streams."""

from __future__ import annotations

from beanpole.server.eb.s3.errors import Fault


class AwsChunked:
    """Decoder of the aws-chunked framing: ``<hex size>[;chunk-signature=…]\\r\\n<data>\\r\\n``
    repeated, a zero-size chunk, then optional trailer lines and an empty line."""

    _MAX_LINE = 4096

    def __init__(self) -> None:
        self.trailers: dict[str, str] = {}
        self._buf = bytearray()
        self._state = "size"
        self._left = 0

    def feed(self, data: bytes) -> bytes:
        """The payload bytes in ``data`` (framing held back until it is complete)."""
        self._buf += data
        out = bytearray()
        while self._buf:
            if self._state == "data":
                take = min(self._left, len(self._buf))
                out += self._buf[:take]
                del self._buf[:take]
                self._left -= take
                if not self._left:
                    self._state = "crlf"
            elif self._state == "crlf":
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise self._malformed()
                del self._buf[:2]
                self._state = "size"
            elif self._state == "done":
                if bytes(self._buf).strip():
                    raise self._malformed()
                self._buf.clear()
            elif (line := self._line()) is not None:
                self._framing(line)
            else:
                break
        return bytes(out)

    def finish(self) -> None:
        if self._state != "done":
            raise Fault(400, "IncompleteBody", "The aws-chunked body ended before its last chunk.")

    def _framing(self, line: bytes) -> None:
        if self._state == "size":
            try:
                self._left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise self._malformed() from None
            self._state = "data" if self._left else "trailer"
        elif not line:
            self._state = "done"
        else:
            name, _, value = line.decode("latin-1").partition(":")
            self.trailers[name.strip().lower()] = value.strip()

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > self._MAX_LINE:
                raise self._malformed()
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    @staticmethod
    def _malformed() -> Fault:
        return Fault(400, "InvalidRequest", "The aws-chunked body is malformed.")
