"""Parsing HAProxy's request lines, choosing the sampling ratio, and deployment taps (pure)."""

import time

import pytest

from beanpole.adapters.lb.requests import MAX_RATIO, Tap, parse, sampling_ratio
from beanpole.core.metrics import NO_SERVER, Sample


def test_a_line_becomes_a_sample_with_its_weight_and_end_time():
    line = b'1796153000230 env-shop i-1a2b 200 12 1 532 127.0.0.1 GET "/cart?id=3"'
    assert parse(line) == Sample("shop", "i-1a2b", 200, 12.0, 1, at=1796153000.23)
    sampled = b'1796153000000 env-shop i-1a2b 503 7 16 0 127.0.0.1 GET "/"'
    assert parse(sampled) == Sample("shop", "i-1a2b", 503, 7.0, 16, at=1796153000.0)


def test_a_line_haproxy_answered_itself_weighs_one():
    # "-": the sampling variable was never set (the request did not reach a backend's rules)
    line = b'1000 env-shop <NOSRV> 503 0 - 0 127.0.0.1 GET "/"'
    assert parse(line) == Sample("shop", NO_SERVER, 503, 0.0, 1, at=1.0)


def test_an_aborted_request_has_no_negative_latency():
    # HAProxy logs -1 for timers it never measured
    assert parse(b'1000 env-a i-1 -1 -1 1 0 ::1 GET "/"') == Sample("a", "i-1", -1, 0.0, 1, 1.0)


def test_a_listener_rules_process_counts_as_its_environment():
    line = b'1000 env-shop.api i-1 200 3 1 0 ::1 GET "/api/x"'
    assert parse(line) == Sample("shop", "i-1", 200, 3.0, 1, 1.0)


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"garbage",
        b'1000 fe-http <NOSRV> 400 0 - 0 127.0.0.1 <BADREQ> "<BADREQ>"',  # not an environment
        b'1000 no-environment <NOSRV> 404 0 - 0 127.0.0.1 GET "/"',
        b'1000 env-a i-1 abc 1 1 0 ::1 GET "/"',
        b'1000 env-a i-1 200 1.x 1 0 ::1 GET "/"',
        b'1000 env-a i-1 200 1 x 0 ::1 GET "/"',
        b'x1000 env-a i-1 200 1 1 0 ::1 GET "/"',
        b'env-a i-1 200 1 1 0 ::1 GET "/"',  # the old format, without the time
        b"1000 env-a i-1 200",
        # not HAProxy's: a stray datagram must name no file and break no arithmetic
        b"9" * 400 + b' env-a i-1 200 1 1 0 ::1 GET "/"',  # a time too big for a float
        b'1000 env-../../x i-1 200 1 1 0 ::1 GET "/"',  # a path in the environment name
        b'1000 env-a ../i-1 200 1 1 0 ::1 GET "/"',
        b'1000 env-a.. i-1 200 1 1 0 ::1 GET "/"',
        b'1000 env-a.b.c i-1 200 1 1 0 ::1 GET "/"',
        b'1000 env-a i-1 200 inf 1 0 ::1 GET "/"',
        b'1000 env-a i-1 200 nan 1 0 ::1 GET "/"',
        b'-5 env-a i-1 200 1 1 0 ::1 GET "/"',
        b'1000 env-a i-1 99999 1 1 0 ::1 GET "/"',
    ],
)
def test_lines_that_are_not_an_environments_request_are_skipped(line):
    assert parse(line) is None


def test_no_sampling_below_the_budget():
    assert sampling_ratio(0, 1, budget_per_s=1000) == 1
    assert sampling_ratio(1000, 1, budget_per_s=1000) == 1


def test_the_ratio_rises_at_once_to_the_power_of_two_that_fits_the_budget():
    assert sampling_ratio(1001, 1, budget_per_s=1000) == 2
    assert sampling_ratio(20_000, 1, budget_per_s=1000) == 32  # 20 needed -> 32
    assert sampling_ratio(20_000, 4, budget_per_s=1000) == 32
    assert sampling_ratio(10**12, 1, budget_per_s=1000) == MAX_RATIO


def test_the_ratio_falls_only_once_the_rate_fits_a_quarter_of_the_current_one():
    # at 1:32, 8,001 req/s needs 1:16 but stays at 1:32 (no flapping near a boundary) ...
    assert sampling_ratio(8_001, 32, budget_per_s=1000) == 32
    assert sampling_ratio(16_000, 32, budget_per_s=1000) == 32
    # ... and falls once it needs a quarter or less: 8,000 req/s -> 1:8
    assert sampling_ratio(8_000, 32, budget_per_s=1000) == 8
    assert sampling_ratio(0, 32, budget_per_s=1000) == 1


def test_a_tap_counts_weighted_requests_of_its_instances():
    tap = Tap("shop", frozenset({"i-1"}))
    for latency in (10.0, 20.0, 30.0):
        tap.add(Sample("shop", "i-1", 200, latency, 4))
    tap.add(Sample("shop", "i-1", 502, 900.0, 4))
    assert tap.requests == 16 and tap.status_5xx == 4
    assert tap.latency_ms(50.0) == 20.0
    assert tap.latency_ms(99.0) == 900.0
    assert Tap("shop", frozenset()).latency_ms(99.0) is None


def test_a_tap_keeps_a_bounded_sample_of_latencies():
    tap = Tap("shop", frozenset({"i-1"}), max_samples=100)
    for n in range(10_000):
        tap.add(Sample("shop", "i-1", 200, float(n % 1000), 1))
    assert tap.requests == 10_000
    p50 = tap.latency_ms(50.0)
    assert p50 is not None and 300 <= p50 <= 700  # a uniform sample of 0..999


def test_the_stream_hands_samples_on_counts_them_and_feeds_open_taps(tmp_path):
    from beanpole.adapters.lb.requests import AccessLogs, RequestStream

    seen = []
    stream = RequestStream(seen.append, AccessLogs(tmp_path))
    with stream.tap("shop", frozenset({"i-1"})) as tap:
        stream.line_received(b'1000 env-shop i-1 200 3 2 10 ::1 GET "/"')
        stream.line_received(b'1000 env-shop i-2 200 3 2 10 ::1 GET "/"')
        stream.line_received(b'1000 env-blog i-1 200 3 1 10 ::1 GET "/"')
        stream.line_received(b"junk")
    stream.line_received(b'1000 env-shop i-1 200 3 2 10 ::1 GET "/"')  # tap closed
    assert len(seen) == 4 and stream.received == 5
    assert tap.requests == 2  # one line of i-1 in shop, weight 2
    assert stream.take_counts() == {"shop": 6, "blog": 1}
    assert stream.take_counts() == {}
    stream.flush()
    lines = (tmp_path / "shop.access.log").read_text().splitlines()
    assert len(lines) == 3 and lines[0].endswith('1000 env-shop i-1 200 3 2 10 ::1 GET "/"')
    # stamped with the request's own time (epoch 1 s), not when its line arrived
    assert lines[0].startswith(time.strftime("%Y-%m-%dT%H:%M:%S ", time.localtime(1)))


def test_with_a_token_only_lines_that_carry_it_count_and_the_token_is_not_logged(tmp_path):
    """Any local process can send the request port a datagram: with the token HAProxy
    starts each line with, a forged line feeds no health, no gate and no access log."""
    from beanpole.adapters.lb.requests import AccessLogs, RequestStream

    seen = []
    stream = RequestStream(seen.append, AccessLogs(tmp_path), token="s3cr3ts3cr3ts3cr3t")
    good = b'1000 env-shop i-1 500 3 - 10 ::1 GET "/"'
    stream.line_received(b"s3cr3ts3cr3ts3cr3t " + good)
    stream.line_received(good)  # forged: no token
    stream.line_received(b"wrongwrongwrongwrong " + good)
    stream.line_received(b"s3cr3ts3cr3ts3cr3" + good)  # a prefix of it is not it
    assert [s.status for s in seen] == [500]
    assert (stream.received, stream.forged) == (4, 3)
    assert stream.take_counts() == {"shop": 1}
    stream.flush()
    (line,) = (tmp_path / "shop.access.log").read_text().splitlines()
    assert line.endswith(" " + good.decode()) and "s3cr3t" not in line


def test_a_huge_weight_is_capped_not_trusted():
    from beanpole.adapters.lb.requests import MAX_RATIO

    sample = parse(b'1000 env-a i-1 200 1 99999999999 0 ::1 GET "/"')
    assert sample is not None and sample.weight == MAX_RATIO


def test_a_line_that_breaks_its_consumer_is_dropped_and_the_stream_goes_on(tmp_path):
    import socket

    from beanpole.adapters.lb.requests import AccessLogs, Listener, RequestStream, bind

    got = []

    def consume(sample):
        if sample.latency_ms == 13:
            raise RuntimeError("a bug downstream")
        got.append(sample)

    listener = Listener(bind(0), RequestStream(consume, AccessLogs(tmp_path)))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for latency in (1, 13, 2):
                line = b'1000 env-shop i-1 200 %d 1 10 ::1 GET "/"' % latency
                sender.sendto(line, ("127.0.0.1", listener.port))
        assert listener.drain() == 3
    finally:
        listener.close()
    assert [s.latency_ms for s in got] == [1.0, 2.0]


def test_the_listener_drains_every_waiting_datagram_in_one_batch(tmp_path):
    import socket

    from beanpole.adapters.lb.requests import AccessLogs, Listener, RequestStream, bind

    got = []
    listener = Listener(bind(0), RequestStream(got.append, AccessLogs(tmp_path)))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for n in range(500):  # far more than a unix datagram socket would queue (10)
                line = b'%d env-shop i-1 200 %d 1 10 ::1 GET "/"\n' % (1000 + n, n % 50)
                sender.sendto(line, ("127.0.0.1", listener.port))
        assert listener.drain() == 500
        assert listener.drain() == 0
    finally:
        listener.close()
    assert len(got) == 500 and got[0].at == 1.0 and got[-1].latency_ms == 49.0


def test_binding_a_taken_port_fails_so_the_server_can_choose_another():
    from beanpole.adapters.lb.requests import bind

    first = bind(0)
    try:
        with pytest.raises(OSError):
            bind(first.getsockname()[1])
    finally:
        first.close()


def test_the_rate_rises_at_once_and_decays_slowly():
    from beanpole.adapters.lb.requests import smoothed_rate

    assert smoothed_rate(100.0, 5000.0) == 5000.0
    rate = 5000.0
    for _ in range(3):  # three idle seconds
        rate = smoothed_rate(rate, 0.0, decay=0.8)
    assert rate == pytest.approx(5000 * 0.8**3)
    assert sampling_ratio(rate, 8, budget_per_s=1000) == 8  # still sampled after a pause
