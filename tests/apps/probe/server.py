"""A dependency-free app for the isolation tests: it tries what the query string asks, as its
own user, and answers with what happened.

    /read?path=P     open and read the file P
    /list?path=P     list the folder P
    /environ?pid=N   read /proc/N/environ (N: "self" for its own)
    /whoami          its uid, gid and user name
    /exec?path=P     run the program P with the argument -u (id -u: the effective uid)
    /privileges      its NoNewPrivs flag and TMPDIR

Each answers ``{"ok": true, "size": …}`` or ``{"ok": false, "errno": "EACCES"}``."""

import errno
import json
import os
import pwd
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def attempt(action, target):
    try:
        if action == "read":
            with open(target, "rb") as f:
                return {"ok": True, "size": len(f.read())}
        if action == "list":
            return {"ok": True, "size": len(os.listdir(target))}
        if action == "environ":
            with open(f"/proc/{target}/environ", "rb") as f:
                data = f.read()
            return {
                "ok": True,
                "size": len(data),
                "names": sorted(
                    item.split(b"=", 1)[0].decode() for item in data.split(b"\0") if item
                ),
            }
    except OSError as exc:
        return {"ok": False, "errno": errno.errorcode.get(exc.errno, str(exc.errno))}
    return {"ok": False, "errno": "unknown action"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        action = url.path.strip("/")
        if action == "whoami":
            answer = {
                "uid": os.getuid(),
                "gid": os.getgid(),
                "user": pwd.getpwuid(os.getuid()).pw_name,
                "pid": os.getpid(),
            }
        elif action == "exec":
            done = subprocess.run(
                [query.get("path", ""), "-u"], capture_output=True, text=True, check=False
            )
            answer = {"ok": done.returncode == 0, "output": done.stdout.strip()}
        elif action == "privileges":
            with open("/proc/self/status") as f:
                flags = dict(line.split(":", 1) for line in f if ":" in line)
            answer = {
                "no_new_privs": flags["NoNewPrivs"].strip(),
                "tmpdir": os.environ.get("TMPDIR", ""),
            }
        else:
            answer = attempt(action, query.get("path") or query.get("pid") or "")
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # HAProxy's checks reset their connections: not worth a traceback each


Server(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
