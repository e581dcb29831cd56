"""Apps that listen on a fixed port and ignore PORT deploy unchanged (issue 8, part 4).

AWS's Express sample listens on 8080; EB's Python platform proxies to 8000. With a network
namespace per instance (Beanpole as root, with ip and nft), several instances of such an
app run side by side on one host. Skipped with the reason where namespaces are unavailable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from beanpole.adapters.runtime import netns

from harness import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        netns.unavailable() is not None,
        reason=f"network namespaces are not available here: {netns.unavailable()}",
    ),
]

EXPRESS_8080 = Path(__file__).parent.parent / "apps" / "express8080"  # AWS's sample, in short
PYTHON_APP = """\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pid": os.getpid()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
"""


def our_namespaces(home: Path) -> dict[str, int]:
    """Instance id → slot of the namespaces this Beanpole home holds."""
    return netns.Namespaces().registry.slots(str(home))


def leftovers(slots: set[int]) -> list[str]:
    """Which of these slots still have a namespace or a veth on the host."""
    out = []
    for slot in slots:
        box = netns.Sandbox(slot)
        if box.path.exists():
            out.append(box.name)
        if Path("/sys/class/net", box.link).exists():
            out.append(box.link)
    return out


def pids_served(bp, env: str, requests: int = 60) -> set[int]:
    pids = set()
    for _ in range(requests):
        status, body = bp.get(env, "/")
        assert status == 200, body
        pids.add(json.loads(body)["pid"])
    return pids


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_express_app_on_fixed_port_8080_with_three_instances(beanpole, tmp_path):
    app = tmp_path / "express-8080"
    shutil.copytree(EXPRESS_8080, app)
    beanpole.cli("create", "fixed", "--app", "fixed", "--source", str(app), "--scale", "3")
    instances = beanpole.status("fixed")["instances"]
    assert [i["state"] for i in instances] == ["in-service"] * 3, instances
    assert {(i["network"], i["port"]) for i in instances} == {("own", 8080)}
    assert len({i["host"] for i in instances}) == 3
    # three processes answer (the pids in status are npm's, whose child node answers)
    assert len(pids_served(beanpole, "fixed")) == 3

    slots = set(our_namespaces(beanpole.home).values())
    assert len(slots) == 3
    beanpole.cli("terminate", "fixed")
    assert our_namespaces(beanpole.home) == {}
    assert leftovers(slots) == []


def test_python_app_on_fixed_port_8000_survives_a_server_kill(beanpole, tmp_path):
    app = tmp_path / "py-8000"
    app.mkdir()
    (app / "app.py").write_text(PYTHON_APP)
    (app / "requirements.txt").write_text("")
    (app / "Procfile").write_text("web: python app.py\n")
    beanpole.cli("create", "py8000", "--app", "py8000", "--source", str(app), "--scale", "2")
    instances = beanpole.status("py8000")["instances"]
    assert {(i["state"], i["network"], i["port"]) for i in instances} == {
        ("in-service", "own", 8000)
    }
    assert pids_served(beanpole, "py8000", 40) == {i["pid"] for i in instances}
    host_net = Path("/proc/self/ns/net").readlink()
    for i in instances:  # entered as root, then dropped to the app user: both must hold
        assert Path(f"/proc/{i['pid']}/ns/net").readlink() != host_net
        assert Path(f"/proc/{i['pid']}").stat().st_uid != 0
    held = our_namespaces(beanpole.home)
    assert set(held) == {i["id"] for i in instances}
    # only root (HAProxy, the probes) connects to an instance; a host process of another user
    # does not
    code = f"import socket; socket.create_connection(({instances[0]['host']!r}, 8000), 3)"
    as_root = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, check=False)
    as_nobody = subprocess.run(
        ["/usr/bin/python3", "-c", code], user="nobody", capture_output=True, check=False
    )
    assert (as_root.returncode, as_nobody.returncode != 0) == (0, True), as_nobody.stderr

    # kill -9 the control plane; meanwhile a crash left a namespace no instance runs in
    beanpole.kill_server()
    ghost = netns.Namespaces().create(str(beanpole.home), "i-ghost000", [8000])
    beanpole.start()
    wait_for(lambda: "i-ghost000" not in our_namespaces(beanpole.home), 30, "the ghost reclaimed")
    assert leftovers({ghost.slot}) == []
    assert our_namespaces(beanpole.home) == held  # the live instances keep theirs
    assert pids_served(beanpole, "py8000", 20) <= {i["pid"] for i in instances}

    beanpole.cli("terminate", "py8000")
    assert our_namespaces(beanpole.home) == {}
    assert leftovers(set(held.values())) == []
