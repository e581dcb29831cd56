"""Request samples become 10 s windows per instance and per environment (fake clock: floats)."""

import pytest

from beanpole.core.metrics import PERCENTILES, Sample, Windows, WindowStats, percentile


def s(instance="i-1", status=200, latency=10.0, env="web", weight=1):
    return Sample(env=env, instance=instance, status=status, latency_ms=latency, weight=weight)


def by_key(closed):
    return {(w.env, w.instance, w.start): w for w in closed}


# --- percentile: nearest rank ---------------------------------------------------------------

TEN = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.0, 10.0),  # rank clamps to 1: the smallest value
        (10.0, 10.0),  # ceil(0.1 * 10) = 1
        (10.1, 20.0),  # ceil(1.01) = 2: just past a rank moves to the next value
        (50.0, 50.0),  # ceil(5) = 5: no interpolation between 50 and 60
        (75.0, 80.0),  # ceil(7.5) = 8
        (90.0, 90.0),
        (99.0, 100.0),  # ceil(9.9) = 10
        (99.9, 100.0),
        (100.0, 100.0),
    ],
)
def test_nearest_rank_on_ten_values(p, expected):
    assert percentile(TEN, p) == expected


def test_a_single_sample_is_every_percentile():
    assert {p: percentile([42.0], p) for p in PERCENTILES} == dict.fromkeys(PERCENTILES, 42.0)


def test_exact_ranks_are_not_pushed_up_by_float_noise():
    thousand = [float(v) for v in range(1, 1001)]
    assert percentile(thousand, 99.9) == 999.0  # rank 999, though 99.9 is not exact in binary
    assert percentile(thousand, 99.0) == 990.0
    assert percentile(thousand, 10.0) == 100.0
    twenty = [float(v) for v in range(1, 21)]
    assert percentile(twenty, 95.0) == 19.0  # 95 * 20 / 100 = 19.000000000000004 in floats


def test_p999_needs_a_thousand_samples_to_differ_from_the_maximum():
    hundred = [float(v) for v in range(1, 101)]
    assert percentile(hundred, 99.9) == 100.0
    assert percentile(hundred, 99.0) == 99.0


def test_weights_give_the_same_answer_as_expanding_the_list():
    values, weights = [1.0, 2.0, 3.0, 7.0], [1, 3, 8, 2]
    expanded = [v for v, w in zip(values, weights, strict=True) for _ in range(w)]
    for p in [0.0, 1.0, 7.0, 7.2, 10.0, 28.0, 28.6, 50.0, 85.0, 85.8, 90.0, 99.0, 99.9, 100.0]:
        assert percentile(values, p, weights) == percentile(expanded, p), p


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50.0)
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 100.1)
    with pytest.raises(ValueError, match="length"):
        percentile([1.0, 2.0], 50.0, [1])


# --- windows: alignment and closing --------------------------------------------------------


def test_samples_land_in_the_window_containing_their_arrival_time():
    w = Windows()
    w.add(s(latency=1.0), now=0.1)
    w.add(s(latency=2.0), now=9.9)
    w.add(s(latency=3.0), now=10.0)  # the boundary belongs to the next window
    assert w.close_until(9.99) == []
    first = by_key(w.close_until(10.0))
    assert set(first) == {("web", None, 0.0), ("web", "i-1", 0.0)}
    assert first["web", "i-1", 0.0].requests == 2
    assert first["web", "i-1", 0.0].latency_ms[99.0] == 2.0
    assert first["web", "i-1", 0.0].duration_s == 10.0
    assert w.close_until(19.99) == []
    second = by_key(w.close_until(20.0))
    assert second["web", "i-1", 10.0].requests == 1
    assert second["web", "i-1", 10.0].latency_ms[50.0] == 3.0


def test_windows_are_aligned_to_the_epoch_not_to_the_first_sample():
    w = Windows()
    w.add(s(), now=1_700_000_003.7)
    (env, _inst) = w.close_until(1_700_000_010.0)
    assert env.start == 1_700_000_000.0


def test_a_late_caller_gets_every_ended_window_in_time_order_env_first():
    w = Windows()
    for t in (25.0, 5.0, 15.0):
        w.add(s("i-2"), now=t)
        w.add(s("i-1"), now=t)
    closed = w.close_until(35.0)
    assert [(c.start, c.instance) for c in closed] == [
        (0.0, None),
        (0.0, "i-1"),
        (0.0, "i-2"),
        (10.0, None),
        (10.0, "i-1"),
        (10.0, "i-2"),
        (20.0, None),
        (20.0, "i-1"),
        (20.0, "i-2"),
    ]
    assert w.close_until(35.0) == []  # closed once only


def test_environments_are_kept_apart():
    w = Windows()
    w.add(s(env="web"), now=1.0)
    w.add(s(env="api", instance="i-9"), now=1.0)
    w.close_until(10.0)
    assert w.latest("web", None).requests == 1
    assert w.latest("api", "i-9").requests == 1
    assert w.latest("web", "i-9") is None


def test_a_key_with_no_request_in_a_window_emits_nothing_for_it():
    w = Windows()
    w.add(s("i-1"), now=1.0)
    w.add(s("i-2"), now=1.0)
    w.close_until(10.0)
    w.add(s("i-2"), now=11.0)
    closed = w.close_until(20.0)
    assert [(c.instance, c.start) for c in closed] == [(None, 10.0), ("i-2", 10.0)]
    assert w.latest("web", "i-1").start == 0.0  # latest is the last one with data
    assert w.latest("web", "i-2").start == 10.0


def test_nothing_is_closed_or_latest_before_a_window_ends():
    w = Windows()
    w.add(s(), now=3.0)
    assert w.latest("web", "i-1") is None
    w.close_until(9.0)
    assert w.latest("web", "i-1") is None


def test_a_sample_for_an_already_closed_window_is_counted_as_late_not_added():
    w = Windows()
    w.add(s(), now=12.0)
    w.close_until(20.0)
    w.add(s(weight=3), now=19.0)  # a clock that stepped back
    assert w.late == 3
    assert w.close_until(30.0) == []


# --- what a window counts ------------------------------------------------------------------


def test_counts_per_status_class_and_shares():
    w = Windows()
    for status in (200, 204, 301, 404, 499, 500, 503, 503, -1, 101):
        w.add(s(status=status), now=1.0)
    env = w.close_until(10.0)[0]
    assert env.requests == 10  # a request with no status (-1) or a 1xx still counts
    assert (env.status_2xx, env.status_3xx, env.status_4xx, env.status_5xx) == (2, 1, 2, 3)
    assert env.share(5) == 0.3
    assert env.share(2) == 0.2
    assert env.requests_per_s == 1.0
    with pytest.raises(ValueError, match="status class"):
        env.share(1)


def test_shares_of_an_empty_window_are_zero():
    empty = WindowStats("web", None, 0.0, 10.0, 0, 0, 0, 0, 0, {})
    assert empty.share(5) == 0.0
    assert empty.requests_per_s == 0.0


def test_the_environment_window_merges_its_instances_samples():
    w = Windows()
    for v in range(1, 51):
        w.add(s("i-1", latency=float(v)), now=1.0)
    for v in range(51, 101):
        w.add(s("i-2", latency=float(v), status=500), now=2.0)
    closed = by_key(w.close_until(10.0))
    env, one, two = closed["web", None, 0.0], closed["web", "i-1", 0.0], closed["web", "i-2", 0.0]
    assert env.requests == 100
    assert env.share(5) == 0.5
    assert (one.latency_ms[50.0], two.latency_ms[50.0], env.latency_ms[50.0]) == (25, 75, 50)
    # Percentiles over all requests, not the mean of the instances' (50 and 100 -> 75).
    assert env.latency_ms[99.0] == 99.0
    assert env.latency_ms[10.0] == 10.0


def test_requests_no_server_took_count_for_the_environment_only():
    w = Windows()
    w.add(s("i-1", status=200), now=1.0)
    w.add(s("<NOSRV>", status=503, latency=0.0), now=1.0)
    closed = w.close_until(10.0)
    assert [c.instance for c in closed] == [None, "i-1"]
    assert closed[0].status_5xx == 1
    assert closed[0].requests == 2
    assert closed[1].requests == 1
    assert w.latest("web", "<NOSRV>") is None


def test_weighted_samples_estimate_the_true_totals_and_weigh_on_percentiles():
    w = Windows()
    w.add(s(status=500, latency=900.0, weight=10), now=1.0)  # a 1:10 sampled stream
    for _ in range(90):
        w.add(s(status=200, latency=10.0), now=1.0)
    env = w.close_until(10.0)[0]
    assert env.requests == 100
    assert env.status_5xx == 10
    assert env.share(5) == 0.1
    assert env.latency_ms[90.0] == 10.0
    assert env.latency_ms[95.0] == 900.0  # 10 of 100 requests are slow, not 1 of 91


def test_add_many_is_add_for_each():
    w = Windows()
    w.add_many([s("i-1"), s("i-2"), s("i-1")], now=4.0)
    closed = by_key(w.close_until(10.0))
    assert closed["web", "i-1", 0.0].requests == 2
    assert closed["web", None, 0.0].requests == 3


# --- memory bound ---------------------------------------------------------------------------


def test_memory_is_bounded_counts_stay_exact_and_percentiles_close():
    w = Windows(max_samples=1000)
    for v in range(100_000):  # in increasing order: the worst case for a naive "keep first N"
        w.add(s("i-1", status=500 if v % 4 == 0 else 200, latency=float(v)), now=5.0)
    for key in w._open[0].values():
        assert len(key.reservoir) == 1000
    env, inst = w.close_until(10.0)
    for window in (env, inst):
        assert window.requests == 100_000
        assert window.status_5xx == 25_000
        assert window.status_2xx == 75_000
        for p, tolerance in [(10.0, 3000), (50.0, 5000), (90.0, 3000), (99.0, 1000)]:
            assert abs(window.latency_ms[p] - p * 1000) <= tolerance, (p, window.latency_ms[p])


def test_the_same_seed_gives_the_same_percentiles():
    def run(seed):
        w = Windows(max_samples=50, seed=seed)
        w.add_many([s(latency=float(v)) for v in range(5000)], now=1.0)
        return w.close_until(10.0)[0].latency_ms

    assert run(7) == run(7)


def test_nonsense_settings_are_refused():
    with pytest.raises(ValueError):
        Windows(max_samples=0)
    with pytest.raises(ValueError):
        Windows(window_s=0.0)


def test_retain_keeps_only_the_latest_windows_of_live_keys():
    w = Windows()
    for env, instance in (("web", "i-1"), ("web", "i-2"), ("api", "i-9")):
        w.add(s(env=env, instance=instance), now=1.0)
    w.close_until(10.0)
    w.retain({("web", "i-1")}, {"web"})
    assert w.latest("web", "i-1") is not None and w.latest("web", None) is not None
    assert w.latest("web", "i-2") is None  # departed instance
    assert w.latest("api", None) is None and w.latest("api", "i-9") is None  # gone environment
