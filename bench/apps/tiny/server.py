"""The smallest keep-alive HTTP/1.1 app: one asyncio process, one canned response.

The load-balancer benchmark hits it both directly and through HAProxy, so it has to cost the
CPU as little as possible per request for HAProxy's own cost to show. Dependency-free (a
Procfile app); answers every request (GET /, the health check, anything) with 200 and its
instance id and pid in JSON.
"""

import asyncio
import json
import os

BODY = json.dumps({"instance": os.environ.get("BEANPOLE_INSTANCE_ID"), "pid": os.getpid()})
HEAD = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
KEEP = (HEAD + "\r\n" + BODY).encode()
CLOSE = (HEAD + "Connection: close\r\n\r\n" + BODY).encode()
MAX_HEAD = 64 * 1024


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""
        self.skip = 0  # body bytes of the current request still to discard

    def data_received(self, data):
        buffer = self.buffer + data
        out = []
        while True:
            if self.skip:
                taken = min(self.skip, len(buffer))
                buffer, self.skip = buffer[taken:], self.skip - taken
                if self.skip:
                    break
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            buffer = buffer[end + 4 :]
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip() == b"content-length" and value.strip().isdigit():
                    self.skip = int(value)
            request_line = head.split(b"\r\n", 1)[0]
            close = b"connection: close" in head or (
                request_line.endswith(b"http/1.0") and b"keep-alive" not in head
            )
            if close:
                out.append(CLOSE)
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            out.append(KEEP)
        if len(buffer) > MAX_HEAD:
            self.transport.close()
            return
        self.buffer = buffer
        if out:
            self.transport.write(b"".join(out))


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", int(os.environ["PORT"]), backlog=1024)
    print(f"listening on {os.environ['PORT']}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
