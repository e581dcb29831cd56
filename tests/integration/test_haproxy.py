"""The HAProxy adapter against the real binary and real HTTP backends.

Each backend is a ThreadingHTTPServer on a loopback port answering its own name, so a response
body says which instance served it. HAProxy runs as the daemon it is in production; the
fixture stops it by pid.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from beanpole.adapters.lb.haproxy import HAProxy
from beanpole.core.errors import ComponentError, NotFound
from beanpole.core.lb.config import NO_ROUTE_BODY, Backend, HealthCheck, LoadBalancerSpec, Server

from lbkit import App, closed_port, free_port, haproxy_pid

pytestmark = pytest.mark.skipif(
    shutil.which("haproxy") is None,
    reason="the haproxy binary is not installed (apt install haproxy)",
)

FAST_CHECK = HealthCheck(interval_s=1, timeout_s=1, healthy_threshold=1, unhealthy_threshold=2)


def worker_pid(haproxy: HAProxy) -> str:
    info = dict(
        line.split(": ", 1) for line in haproxy.runtime("show info").splitlines() if ": " in line
    )
    return info["Pid"]


def wait_for(
    condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def spec_of(port: int, *backends: Backend) -> LoadBalancerSpec:
    return LoadBalancerSpec("127.0.0.1", port, backends)


def get(client: httpx.Client, host: str) -> httpx.Response:
    return client.get("/", headers={"Host": host})


def bodies(client: httpx.Client, host: str, n: int) -> Counter[str]:
    return Counter(get(client, host).text for _ in range(n))


def test_routes_by_host_and_answers_404_for_unknown_hosts(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    shop, blog = apps("shop-1"), apps("blog-1")
    port = free_port()
    lb.start(
        spec_of(
            port,
            Backend("shop", ("shop.localhost",), FAST_CHECK, (shop.server(),)),
            Backend("blog", ("blog.localhost", "www.blog.localhost"), FAST_CHECK, (blog.server(),)),
        )
    )
    assert lb.is_running()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert get(client, "shop.localhost").text == "shop-1"
        assert get(client, f"blog.localhost:{port}").text == "blog-1"  # port stripped
        assert get(client, "WWW.Blog.Localhost").text == "blog-1"  # case folded
        unknown = get(client, "nope.localhost")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "text/plain"
        assert unknown.text == NO_ROUTE_BODY
        # A Host naming a backend directly must not reach it: only the map routes.
        assert get(client, "env-shop").status_code == 404


def test_servers_weights_and_hosts_change_without_a_reload(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    first, second = apps("i-first"), apps("i-second")
    port = free_port()

    def shop(hosts: tuple[str, ...], *servers: Server) -> LoadBalancerSpec:
        return spec_of(port, Backend("shop", hosts, FAST_CHECK, servers))

    lb.start(shop(("shop.localhost",), first.server()))
    worker = worker_pid(lb)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        # Added with weight 0: checked, healthy, but given no traffic.
        lb.apply(shop(("shop.localhost",), first.server(), second.server(weight=0)))
        wait_for(lambda: lb.server_states()[("shop", "i-second")].healthy, what="i-second UP")
        assert lb.server_states()[("shop", "i-second")].weight == 0
        assert bodies(client, "shop.localhost", 20) == {"i-first": 20}

        lb.apply(shop(("shop.localhost",), first.server(), second.server(weight=1)))
        split = bodies(client, "shop.localhost", 20)
        assert set(split) == {"i-first", "i-second"}, split

        # Drain is runtime-only; the next apply puts the spec back (ready, weight 1).
        lb.drain("shop", "i-first")
        assert lb.server_states()[("shop", "i-first")].status == "DRAIN"
        assert bodies(client, "shop.localhost", 10) == {"i-second": 10}
        lb.set_weight("shop", "i-first", 3)
        assert lb.server_states()[("shop", "i-first")].weight == 3
        with pytest.raises(NotFound):
            lb.set_weight("shop", "i-nope", 1)

        # Hosts through the map. The first host stays: health checks send it (a change of
        # the first host is structural, see structural_key).
        hosts = ("shop.localhost", "shop2.localhost")
        lb.apply(shop(hosts, first.server(), second.server(weight=1)))
        assert lb.server_states()[("shop", "i-first")].status.startswith("UP")
        assert get(client, "shop2.localhost").status_code == 200
        lb.apply(shop(("shop.localhost", "shop3.localhost"), first.server(), second.server()))
        assert get(client, "shop2.localhost").status_code == 404
        assert get(client, "shop3.localhost").status_code == 200

        # Removing a server (its keep-alive connections from above notwithstanding).
        lb.apply(shop(("shop.localhost",), second.server()))
        assert ("shop", "i-first") not in lb.server_states()
        assert bodies(client, "shop.localhost", 10) == {"i-second": 10}
    assert worker_pid(lb) == worker, "a runtime change must not reload HAProxy"
    cfg = lb.paths.cfg.read_text()
    assert "server i-second " in cfg
    assert "i-first" not in cfg
    assert lb.paths.hosts_map.read_text() == "shop.localhost env-shop\n"


def test_a_refused_connection_is_retried_on_another_server(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    live = apps("i-live")
    port = free_port()
    dead = Server("i-dead", "127.0.0.1", closed_port(), 1)
    lb.start(spec_of(port, Backend("shop", ("shop.localhost",), FAST_CHECK, (live.server(), dead))))
    # Hold the dead server in rotation as if its checks had not caught it yet: that window is
    # what the retries are for.
    assert lb.runtime("disable health env-shop/i-dead").strip() == ""
    assert lb.runtime("set server env-shop/i-dead health up").strip() == ""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        statuses = Counter(get(client, "shop.localhost").status_code for _ in range(200))
        # Never sent, so safe to retry whatever the method (L7 retries are GET-only).
        posted = Counter(
            client.post("/", headers={"Host": "shop.localhost"}, content=b"x").status_code
            for _ in range(20)
        )
    assert statuses == {200: 200}
    assert posted == {200: 20}
    states = lb.server_states()
    assert states[("shop", "i-dead")].status == "no check"  # checks off, in rotation
    stat = lb.runtime("show stat -1 4 -1").removeprefix("# ").splitlines()
    header = stat[0].split(",")
    row = dict(zip(header, next(ln for ln in stat if ",i-dead," in ln).split(","), strict=False))
    # Each refused connection was redispatched to the live server.
    assert int(row["wredis"]) > 0, "the dead server should have been tried"


def test_adding_a_backend_reloads_without_failed_requests(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    shop, blog = apps("shop-1"), apps("blog-1")
    port = free_port()
    shop_backend = Backend("shop", ("shop.localhost",), FAST_CHECK, (shop.server(),))
    lb.start(spec_of(port, shop_backend))
    worker = worker_pid(lb)

    done = threading.Event()
    results: Counter[str] = Counter()

    def hammer() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(20_000):  # bounded even if the test body fails
                if done.is_set():
                    return
                try:
                    results[str(get(client, "shop.localhost").status_code)] += 1
                except httpx.HTTPError as exc:
                    results[type(exc).__name__] += 1

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        wait_for(lambda: results["200"] > 50, what="traffic before the reload")
        blog_backend = Backend("blog", ("blog.localhost",), FAST_CHECK, (blog.server(),))
        lb.apply(spec_of(port, shop_backend, blog_backend))
        first_reload = worker_pid(lb)
        # A second structural change: the health check path.
        changed = Backend(
            "shop", ("shop.localhost",), HealthCheck(path="/ping", interval_s=1), (shop.server(),)
        )
        lb.apply(spec_of(port, changed, blog_backend))
        before = results["200"]
        wait_for(lambda: results["200"] > before + 50, what="traffic after the reload")
    finally:
        done.set()
        thread.join(timeout=30)
    assert first_reload != worker
    assert worker_pid(lb) not in (worker, first_reload)
    assert set(results) == {"200"}, results
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert get(client, "blog.localhost").text == "blog-1"


def test_server_states_report_up_and_down(lb: HAProxy, apps: Callable[[str], App]) -> None:
    live = apps("i-live")
    port = free_port()
    dead = Server("i-dead", "127.0.0.1", closed_port(), 1)
    lb.start(
        spec_of(port, Backend("shop", ("shop.localhost",), FAST_CHECK, (live.server(2), dead)))
    )

    def settled() -> bool:
        states = lb.server_states()
        return states[("shop", "i-live")].healthy and states[("shop", "i-dead")].status == "DOWN"

    wait_for(settled, what="i-live UP and i-dead DOWN")
    states = lb.server_states()
    assert set(states) == {("shop", "i-live"), ("shop", "i-dead")}
    assert states[("shop", "i-live")].check_status == "L7OK"
    assert states[("shop", "i-live")].weight == 2
    assert states[("shop", "i-dead")].check_status == "L4CON"
    assert not states[("shop", "i-dead")].healthy


def test_start_adopts_a_running_haproxy_and_stop_ends_it(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    app = apps("i-1")
    port = free_port()
    spec = spec_of(port, Backend("shop", ("shop.localhost",), FAST_CHECK, (app.server(),)))
    lb.start(spec)
    master = haproxy_pid(lb)
    # A restarted control plane: a new adapter on the same directory adopts the daemon.
    again = HAProxy(lb.paths.directory)
    assert again.is_running()
    again.start(spec)
    assert haproxy_pid(lb) == master
    again.stop()
    assert not lb.is_running()
    assert not lb.paths.pid_file.exists()


def test_start_reports_haproxy_errors(lb: HAProxy) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(ComponentError, match=r"(?i)bind|address already in use"):
            lb.start(spec_of(port))
    assert not lb.is_running()


def test_a_server_added_at_run_time_reuses_its_connections(
    lb: HAProxy, apps: Callable[[str], App]
) -> None:
    """Regression: HAProxy 2.6 gives `add server` servers no idle-connection pool unless told
    (`SERVER_POOL`); each request then opened a new connection and cost 3x the CPU."""
    port = free_port()
    slow_check = HealthCheck(interval_s=3600, timeout_s=1, healthy_threshold=1)
    lb.start(spec_of(port, Backend("shop", ("shop.localhost",), slow_check, ())))
    app = apps("i-1")
    lb.apply(spec_of(port, Backend("shop", ("shop.localhost",), slow_check, (app.server(),))))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
        wait_for(lambda: get(client, "shop.localhost").status_code == 200, 10, "the new server")
        before = app.connections
        for _ in range(100):
            assert get(client, "shop.localhost").text == "i-1"
    assert app.connections - before <= 3, f"{app.connections - before} connections for 100"
