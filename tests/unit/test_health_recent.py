"""`health` shows only a recent window's figures, and says how old the last ones are
otherwise (issue #7: a window 517 s old was shown as the current overall figures)."""

from rich.console import Console

from beanpole.cli.health import render
from beanpole.core.health import recent
from beanpole.core.metrics import WindowStats
from beanpole.services.monitor import _requests

NOW = 1_000_000.0


def window(ended_ago: float) -> WindowStats:
    return WindowStats(
        env="shop",
        instance=None,
        start=NOW - ended_ago - 10,
        duration_s=10,
        requests=4321,
        status_2xx=4321,
        status_3xx=0,
        status_4xx=0,
        status_5xx=0,
        latency_ms={99.0: 12.0, 90.0: 5.0, 75.0: 4.0, 50.0: 3.0, 10.0: 1.0},
        lines=4321,
    )


def test_a_window_is_recent_for_20_seconds_after_it_ends():
    assert recent(window(1), NOW) is not None
    assert recent(window(19.9), NOW) is not None
    assert recent(window(20), NOW) is None
    assert recent(None, NOW) is None


def test_the_snapshot_keeps_an_old_window_out_of_the_figures_but_says_when_it_ended():
    old = _requests(window(517), NOW)
    assert old == {"requests": None, "requests_ended_at": NOW - 517}
    fresh = _requests(window(3), NOW)
    assert fresh["requests"]["requests"] == 4321
    assert _requests(None, NOW) == {"requests": None, "requests_ended_at": None}


def rendered(requests, ended_at):
    data = {
        "name": "shop",
        "status": "Ok",
        "colour": "Green",
        "environment_status": "Ready",
        "at": NOW,
        "causes": [],
        "requests": requests,
        "requests_ended_at": ended_at,
        "sampling": 1,
        "host": None,
        "load_average": [0.1, 0.2],
        "instances": [],
    }
    console = Console(width=200, record=True)
    console.print(render(data))
    return console.export_text()


def test_health_says_how_old_the_last_requests_are_instead_of_showing_them():
    text = rendered(None, NOW - 517)
    assert "no requests recently; the last window ended 8 mins ago" in text
    assert "432" not in text  # no r/sec from the old window


def test_health_shows_a_recent_windows_figures():
    text = rendered(_requests(window(2), NOW)["requests"], NOW - 2)
    assert "432.1" in text and "no requests recently" not in text
