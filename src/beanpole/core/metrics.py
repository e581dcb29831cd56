"""Per-request samples, summed into fixed 10 s windows per instance and per environment.

EB's enhanced health reads one line per request from the proxy and reports, every 10 s, the
request rate, the counts per status class and latency percentiles (p99.9 … p10). This module
is that arithmetic and nothing else: no I/O and no clock, so every caller passes ``now``.

Windows are aligned to multiples of ``window_s`` since the epoch, so every key (instance or
environment) closes at the same instants and their windows line up. Counts are exact; the
latencies behind the percentiles are a bounded, uniform sample (reservoir sampling with a
seeded PRNG, so a run is reproducible), because a busy environment sees hundreds of thousands
of requests in a window and health only needs the shape of the distribution.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import NamedTuple

WINDOW_S = 10.0
PERCENTILES = (99.9, 99.0, 95.0, 90.0, 85.0, 75.0, 50.0, 10.0)
NO_SERVER = "<NOSRV>"
"""HAProxy's server name when it chose none (e.g. a 503 with no server up): environment only."""


class Sample(NamedTuple):
    """One request as HAProxy logged it (a tuple: made once per request line, so cheap)."""

    env: str  # environment name
    instance: str  # server name = instance id ("<NOSRV>" when no server was chosen)
    status: int  # HTTP status (-1 if none)
    latency_ms: float  # total time HAProxy spent on it (Ta)
    weight: int = 1  # >1 when the stream is sampled 1:N, so counts stay estimates of the totals
    at: float = 0.0  # when it ended (epoch s), as HAProxy logged it; 0 = unknown


@dataclass(frozen=True)
class WindowStats:
    """One closed window of one key: an instance, or the environment (``instance`` None)."""

    env: str
    instance: str | None  # None: the environment as a whole
    start: float  # window start (epoch s, aligned to the window length)
    duration_s: float
    requests: int  # weighted count
    status_2xx: int
    status_3xx: int
    status_4xx: int
    status_5xx: int
    latency_ms: dict[float, float]  # percentile -> ms (nearest rank); empty when no requests
    lines: int = 0  # request lines behind the counts (= requests unless sampled)
    latency_mean_ms: float = 0.0  # over every line (weighted), not only the kept sample

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    def share(self, status_class: int) -> float:
        """The fraction of requests in ``status_class`` (2 to 5): ``share(5)`` is the 5xx rate.

        Requests with no status (-1) or a 1xx count in ``requests`` but in no class, so the
        shares of a window can add up to less than 1. No requests: 0, not a division by zero.
        """
        counts = {
            2: self.status_2xx,
            3: self.status_3xx,
            4: self.status_4xx,
            5: self.status_5xx,
        }
        if status_class not in counts:
            raise ValueError(f"status class must be 2, 3, 4 or 5, not {status_class}")
        return counts[status_class] / self.requests if self.requests else 0.0


def percentile(
    sorted_values: Sequence[float], p: float, weights: Sequence[int] | None = None
) -> float:
    """The ``p``-th percentile by nearest rank: the smallest value with at least p% at or below.

    Nearest rank always returns a value that was observed (no interpolation between two
    requests' latencies), which is what "p99 is 4.2 s" means to someone reading a log. With
    ``n`` values the answer is the value of rank ``ceil(p/100 * n)`` (1-based, at least 1).

    ``weights`` (aligned with ``sorted_values``, each >= 1) give each value that many copies:
    the answer is exactly what the unweighted rule returns on the expanded list, without
    expanding it. This is how 1:N sampled streams keep honest percentiles.
    """
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p}")
    if weights is None:
        return sorted_values[_rank(p, len(sorted_values)) - 1]
    if len(weights) != len(sorted_values):
        raise ValueError("weights and values differ in length")
    cumulative = list(accumulate(weights))
    return sorted_values[bisect_left(cumulative, _rank(p, cumulative[-1]))]


def _rank(p: float, total: int) -> int:
    # Rounded before ceil so float noise (95 * 20 / 100 = 19.000000000000004) can't move a rank.
    return min(total, max(1, math.ceil(round(p * total / 100, 6))))


@dataclass
class _Open:
    """A window still collecting: exact counts plus a bounded reservoir of latencies."""

    requests: int = 0
    classes: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # 2xx, 3xx, 4xx, 5xx
    seen: int = 0  # samples offered to the reservoir (unweighted)
    reservoir: list[tuple[float, int]] = field(default_factory=list)  # (latency_ms, weight)
    latency_total_ms: float = 0.0  # weighted, for the mean


_Key = tuple[str, str | None]  # (env, instance or None for the environment)


class Windows:
    """Accumulates samples; closes windows as time passes.

    Memory is bounded: at most ``max_samples`` latencies are kept per open window per key,
    chosen uniformly by reservoir sampling (Vitter's algorithm R) from a PRNG seeded with
    ``seed``, so the same input gives the same percentiles. Counts are always exact. A kept
    sample keeps its weight, so a sampled stream's percentiles stay weighted.

    A sample arriving for a window that has already closed (``now`` behind a previous
    ``close_until``) is not added, because that window has been reported; it is counted in
    ``late`` instead.
    """

    def __init__(
        self, window_s: float = WINDOW_S, max_samples: int = 10_000, seed: int = 0
    ) -> None:
        if window_s <= 0 or max_samples < 1:
            raise ValueError("window_s must be positive and max_samples at least 1")
        self.window_s = window_s
        self.max_samples = max_samples
        self.late = 0  # weighted requests dropped because their window had closed
        self._rng = random.Random(seed)  # noqa: S311 - sampling latencies, not secrets
        self._open: dict[int, dict[_Key, _Open]] = {}  # window index -> key -> window
        self._closed_below = -(2**62)  # every window index below this has been closed
        self._latest: dict[_Key, WindowStats] = {}

    def _index(self, now: float) -> int:
        """Window number since the epoch; integers keep alignment free of float drift."""
        return math.floor(now / self.window_s)

    def add(self, sample: Sample, now: float) -> None:
        """Count ``sample`` in the window containing ``now``, for its instance and its env."""
        index = self._index(now)
        if index < self._closed_below:
            self.late += sample.weight
            return
        keys = self._open.setdefault(index, {})
        self._count(keys, (sample.env, None), sample)
        if sample.instance != NO_SERVER:
            self._count(keys, (sample.env, sample.instance), sample)

    def add_many(self, samples: Iterable[Sample], now: float) -> None:
        for sample in samples:
            self.add(sample, now)

    def _count(self, keys: dict[_Key, _Open], key: _Key, sample: Sample) -> None:
        window = keys.get(key)
        if window is None:
            window = keys[key] = _Open()
        window.requests += sample.weight
        status_class = sample.status // 100
        if 2 <= status_class <= 5:
            window.classes[status_class - 2] += sample.weight
        window.seen += 1
        window.latency_total_ms += sample.latency_ms * sample.weight
        if len(window.reservoir) < self.max_samples:
            window.reservoir.append((sample.latency_ms, sample.weight))
        else:
            slot = int(self._rng.random() * window.seen)
            if slot < self.max_samples:
                window.reservoir[slot] = (sample.latency_ms, sample.weight)

    def close_until(self, now: float) -> list[WindowStats]:
        """Close every window that ended at or before ``now``; return them in time order.

        Each closed window yields one `WindowStats` per key that saw a request in it: the
        environment first (``instance`` None), then its instances by id. A key with no request
        in a window yields nothing for it: absence means no data, not zero traffic measured.
        """
        below = self._index(now)
        self._closed_below = max(self._closed_below, below)
        closed: list[WindowStats] = []
        for index in sorted(i for i in self._open if i < below):
            keys = self._open.pop(index)
            order = sorted(keys, key=lambda k: (k[0], k[1] is not None, k[1] or ""))
            for key in order:
                stats = self._stats(index, key, keys[key])
                self._latest[key] = stats
                closed.append(stats)
        return closed

    def _stats(self, index: int, key: _Key, window: _Open) -> WindowStats:
        kept = sorted(window.reservoir)
        values = [latency for latency, _ in kept]
        weights = [weight for _, weight in kept]
        return WindowStats(
            env=key[0],
            instance=key[1],
            start=index * self.window_s,
            duration_s=self.window_s,
            requests=window.requests,
            status_2xx=window.classes[0],
            status_3xx=window.classes[1],
            status_4xx=window.classes[2],
            status_5xx=window.classes[3],
            latency_ms={p: percentile(values, p, weights) for p in PERCENTILES} if kept else {},
            lines=window.seen,
            latency_mean_ms=window.latency_total_ms / window.requests if window.requests else 0.0,
        )

    def latest(self, env: str, instance: str | None) -> WindowStats | None:
        """The most recent closed window for that key (however old: check ``start``)."""
        return self._latest.get((env, instance))

    def retain(self, live: set[tuple[str, str]], environments: set[str]) -> None:
        """Keep the latest windows of these instances and environments only."""
        for key in list(self._latest):
            env, instance = key
            if env not in environments or (instance is not None and (env, instance) not in live):
                del self._latest[key]
