"""A dependency-free web app for tests: answers with its instance id, pid and a greeting."""

import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

with open("VERSION") as f:
    VERSION = f.read().strip()


def instance_fault():
    """Tests make one instance misbehave by writing $FAULT_DIR/<instance id>: "500" or "slow N"."""
    folder = os.environ.get("FAULT_DIR")
    if not folder:
        return ""
    try:
        with open(os.path.join(folder, os.environ.get("BEANPOLE_INSTANCE_ID", "?"))) as f:
            return f.read().strip()
    except OSError:
        return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write per response: unbuffered writes stall behind a proxy

    def do_GET(self):
        if self.path == "/burn":  # tests of auto scaling: 20 ms of CPU per request
            end = time.process_time() + 0.02
            while time.process_time() < end:
                pass
        if self.path.startswith("/log/"):  # tests of `beanpole logs`: a marker on each stream
            marker = self.path.removeprefix("/log/")
            print(f"stdout {marker}", flush=True)
            print(f"stderr {marker}", file=sys.stderr, flush=True)
        # /healthz ignores per-instance faults, so a test can make an instance answer 5xx
        # (or slowly) while its load-balancer check keeps passing.
        fault = "" if self.path == "/healthz" else instance_fault()
        if os.path.exists("SLOW"):  # a version that answers every request slowly
            with open("SLOW") as f:
                time.sleep(float(f.read().strip() or "0.5"))
        if fault.startswith("slow"):
            time.sleep(float(fault.split()[1]) if " " in fault else 1.0)
        elif (
            fault == "500"
            or self.path == "/fail"
            or os.path.exists("UNHEALTHY")
            or os.environ.get("UNHEALTHY") == "1"  # one process of a Procfile
        ):
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(
            {
                "instance": os.environ.get("BEANPOLE_INSTANCE_ID"),
                "pid": os.getpid(),
                "greeting": os.environ.get("GREETING", "hello"),
                "version": VERSION,
                "proto": self.headers.get("X-Forwarded-Proto"),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    time.sleep(float(os.environ.get("START_DELAY", "0")))
    # Tests slow down instances started from now on by writing seconds to this file.
    delay_file = os.environ.get("START_DELAY_FILE")
    if delay_file and os.path.exists(delay_file):
        with open(delay_file) as f:
            time.sleep(float(f.read().strip() or "0"))
    print(f"listening on {os.environ['PORT']}", flush=True)
    sys.stdout.flush()

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # HAProxy's checks reset their connections: not worth a traceback each

    Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
