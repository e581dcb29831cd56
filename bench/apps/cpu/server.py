"""A CPU-bound app for the auto scaling benchmark: each GET / costs about 10 ms of Python.

Dependency-free (a Procfile app). GET / (also the load balancer's health check: the default
HealthCheckPath) runs a pure-Python loop calibrated at start to about ``WORK_MS`` (10) ms of
CPU, then answers 200 with its instance id and pid in JSON. The loop holds the GIL, so however
many threads serve, one instance does at most about 1000 / WORK_MS requests a second on one
core: a handful of concurrent clients saturate it. GET /ping answers at once (no work): the
benchmark's probe, which should not add load of its own.
"""

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORK_S = float(os.environ.get("WORK_MS", "10")) / 1000


def burn(rounds):
    x = 0
    for i in range(rounds):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x


def calibrate(target_s):
    """How many rounds of `burn` take ``target_s`` of CPU: the median of a few tries."""
    sample = 100_000
    took = []
    for _ in range(7):
        started = time.process_time()
        burn(sample)
        took.append(time.process_time() - started)
    return max(1, int(sample * target_s / max(sorted(took)[len(took) // 2], 1e-6)))


ROUNDS = calibrate(WORK_S)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write per response: unbuffered writes stall behind a proxy

    def do_GET(self):
        if self.path != "/ping":
            burn(ROUNDS)
        body = json.dumps(
            {"instance": os.environ.get("BEANPOLE_INSTANCE_ID"), "pid": os.getpid()}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    print(f"listening on {os.environ['PORT']} ({ROUNDS} rounds a request)", flush=True)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # A saturated instance accepts late (the accepting thread waits for the GIL): with
        # the default backlog of 5, HAProxy's new connections would be dropped and their SYN
        # retried after 1 s, which is not the queueing this benchmark means to measure.
        request_queue_size = 1024

        def handle_error(self, request, client_address):
            pass  # HAProxy's checks reset their connections: not worth a traceback each

    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
