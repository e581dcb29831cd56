"""HTTP answers written in one piece: uvicorn writes a response's head and its body in two
socket writes, which TCP_NODELAY sends as two segments. Joined, they cost one send, and a
client reads an answer of up to a buffer's size (Go's 4 KiB) with the head in one read.

That matters for Terraform's AWS provider. A client race in its SDK (smithy-go's request
body answers `WriteTo` with `io.EOF` once closed; docs/terraform.md, "Keep max_retries above
1") can close the connection just after the head arrives. An answer already read whole
survives it: `terraform plan` failed 8 of 30 runs with split writes and 0 of 30 with joined
ones. Larger answers still depend on the SDK's retry. The writes a protocol makes within one
turn of the event loop are joined and sent at the end of that turn.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class _Coalescing:
    """A transport that joins the writes made in one loop turn; the rest is delegated."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data, self._pending = b"".join(self._pending), []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(_Coalescing(transport))  # type: ignore[arg-type]
