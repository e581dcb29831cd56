"""What the reconcile loop decides each tick, as a pure function: facts in, actions out.

The reconciler (`beanpole.services.reconciler`) gathers the facts (the store's records, the
observer's snapshot of the runtime and the load balancer, each environment's settings and
whether an operation runs), calls `decide`, and carries the actions out. Everything it must
remember between ticks (restart backoff, how long an instance has been failing) goes in and
comes out as a `Memory` value, so a test states a history tick by tick with a clock value
and starts no process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from beanpole.core.model import Environment, EnvStatus, Instance, InstanceState
from beanpole.core.repairs import plan_repair
from beanpole.core.runtime import InstanceObservation, ProcessStatus, ServerState

# Repaired: Ready ones, and Updating ones no operation holds (a restart interrupted it).
_REPAIRED = frozenset({EnvStatus.READY, EnvStatus.UPDATING})

#: Seconds between restarts of a process the runtime gave up on: 1, 2, 5 … then every minute.
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class Backoff:
    failures: int = 0
    next_try: float = 0.0


@dataclass(frozen=True)
class Memory:
    """What the loop carries from one tick to the next (instance id -> ...)."""

    backoff: Mapping[str, Backoff] = field(default_factory=dict)
    failing_since: Mapping[str, float] = field(default_factory=dict)
    # (instance id, process) -> the runtime's restart count last seen
    restarts: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceFacts:
    """One live instance: its record and what the runtime and the load balancer see.

    ``observed`` is None when the runtime runs no such instance; ``failure`` is the
    description of its dead process (with its last log lines) when it has one.
    """

    record: Instance
    observed: InstanceObservation | None
    server: ServerState | None
    failure: str | None = None


@dataclass(frozen=True)
class EnvFacts:
    """One environment: its record, its instances and what its settings ask for."""

    env: Environment
    instances: tuple[InstanceFacts, ...]
    busy: bool  # an operation (deploy, configure, repair...) is running on it
    release_key: str | None  # the key of its current release (None: no version yet)
    desired: int  # how many instances of that release should be in service
    replace_unhealthy: bool = True
    replace_after_s: float = 60.0


# -- actions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """Store the instance's current pid, check verdict and causes (they changed)."""

    instance_id: str
    pid: int
    healthy: bool
    causes: tuple[str, ...]


@dataclass(frozen=True)
class Restart:
    """Start again the instance's processes the runtime gave up on."""

    instance_id: str
    processes: tuple[str, ...]


@dataclass(frozen=True)
class Restarted:
    """The runtime restarted a process on its own since the last look: say how it died."""

    instance_id: str
    environment: str
    process: str
    how: str  # how its last death ended ("" when the runtime does not say)
    count: int  # restarts so far


@dataclass(frozen=True)
class Replace:
    """Stop an in-service instance that kept failing; the repair starts its successor."""

    instance_id: str
    environment: str
    reason: str
    failing_s: float


@dataclass(frozen=True)
class Vanished:
    """An in-service instance the runtime no longer runs: mark it stopped and say so."""

    instance_id: str
    environment: str


@dataclass(frozen=True)
class Lost:
    """An in-service instance the runtime says is lost (its node is down): take it out of
    the load balancer and stop it at once; the repair starts its successor elsewhere."""

    instance_id: str
    environment: str
    reason: str


@dataclass(frozen=True)
class Moved:
    """The runtime runs the instance at another address now (a cluster engine restarted its
    task): point the load balancer there."""

    instance_id: str
    host: str
    port: int


@dataclass(frozen=True)
class Repair:
    """Converge the environment on its release (count, version, settings). ``updating``: it
    runs instances of another release, so it is Updating (not Ready) until converged."""

    environment: str
    updating: bool = False


@dataclass(frozen=True)
class Recovered:
    """An Updating environment no operation holds has converged: one version, every instance
    in service. It is Ready again."""

    environment: str
    instances: int
    version: str


Action = Record | Restart | Restarted | Replace | Vanished | Lost | Moved | Repair | Recovered


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]
    memory: Memory


def decide(environments: Iterable[EnvFacts], memory: Memory, now: float) -> Decision:
    """This tick's actions, and what to remember for the next (``now``: a monotonic clock)."""
    actions: list[Action] = []
    backoff = dict(memory.backoff)
    failing_since = dict(memory.failing_since)
    restarts = dict(memory.restarts)
    seen: set[str] = set()
    for env in environments:
        replaced = False
        for facts in env.instances:
            seen.add(facts.record.id)
            _restarts(facts, restarts, actions)
            replaced |= _instance(env, facts, now, backoff, failing_since, actions)
        if replaced:
            continue
        if repair_needed(env):
            actions.append(Repair(env.env.name, updating=_runs_another_release(env)))
        elif _recovered(env):
            live = [f for f in env.instances if f.record.state is not InstanceState.STOPPED]
            actions.append(Recovered(env.env.name, len(live), env.env.version_label or ""))
    # An instance that left (stopped, terminated) leaves nothing behind.
    for instance_id in set(backoff) - seen:
        del backoff[instance_id]
    for instance_id in set(failing_since) - seen:
        del failing_since[instance_id]
    for key in [k for k in restarts if k[0] not in seen]:
        del restarts[key]
    return Decision(tuple(actions), Memory(backoff, failing_since, restarts))


def _restarts(
    facts: InstanceFacts, restarts: dict[tuple[str, str], int], actions: list[Action]
) -> None:
    """A restart count that grew since the last look is news; the first look only learns
    the count (restarts before a server restart were told by the server before)."""
    if facts.observed is None or facts.record.state is InstanceState.STOPPED:
        return
    for process in facts.observed.processes:
        key = (facts.record.id, process.name)
        before = restarts.get(key)
        restarts[key] = process.restarts
        if before is not None and process.restarts > before:
            actions.append(
                Restarted(
                    facts.record.id,
                    facts.record.environment,
                    process.name,
                    process.last_exit,
                    process.restarts,
                )
            )


def repair_needed(env: EnvFacts) -> bool:
    """An idle environment, Ready (or left Updating by a restart), whose in-service instances
    are not exactly ``desired`` of its current release, or which runs anything else besides
    them (`beanpole.core.repairs.plan_repair` says what the repair would do)."""
    if env.busy or env.env.status not in _REPAIRED or env.release_key is None:
        return False
    return plan_repair((f.record for f in env.instances), env.release_key, env.desired).needed


def _recovered(env: EnvFacts) -> bool:
    """Updating with no operation running, and nothing left to repair: Ready promises one
    version, every instance in service, and that now holds."""
    return (
        env.env.status is EnvStatus.UPDATING
        and not env.busy
        and env.release_key is not None
        and not repair_needed(env)
    )


def _runs_another_release(env: EnvFacts) -> bool:
    """A live instance of a release other than the current one (a deploy a crash cut short):
    the repair replaces versions, so the environment says Updating, not Ready."""
    return env.env.status is EnvStatus.READY and any(
        f.record.state is not InstanceState.STOPPED and f.record.release_key != env.release_key
        for f in env.instances
    )


def _instance(
    env: EnvFacts,
    facts: InstanceFacts,
    now: float,
    backoff: dict[str, Backoff],
    failing_since: dict[str, float],
    actions: list[Action],
) -> bool:
    """Decide for one instance; True when it is being replaced this tick."""
    record, observed, server = facts.record, facts.observed, facts.server
    if record.state is InstanceState.STOPPED:
        return False
    if observed is None or observed.lost:
        return _gone(record, observed, actions)
    moved = observed.endpoint
    if moved is not None and record.port and (moved.host, moved.port) != (record.host, record.port):
        actions.append(Moved(record.id, moved.host, moved.port))
    healthy = server is not None and server.passing
    causes: list[str] = []
    crashed = facts.failure is not None
    if facts.failure is not None:
        causes.append(facts.failure)
        # Not one that is leaving: a restart would race its stop and outlive it.
        if record.state in (InstanceState.PENDING, InstanceState.IN_SERVICE):
            _restart(observed, now, backoff, actions)
    elif server is not None and not server.passing and record.state is InstanceState.IN_SERVICE:
        causes.append(
            f"Load balancer health check: {server.status}, last check {server.check_status}."
        )
    else:
        backoff.pop(record.id, None)
    pid = observed.pid
    if pid != record.pid or healthy != record.healthy or tuple(causes) != record.causes:
        actions.append(Record(record.id, pid, healthy, tuple(causes)))
    down = server is not None and server.down
    if not (record.state is InstanceState.IN_SERVICE and (down or crashed)):
        failing_since.pop(record.id, None)
        return False
    since = failing_since.setdefault(record.id, now)
    failing_s = now - since
    if (
        not env.replace_unhealthy
        or failing_s < env.replace_after_s
        or env.env.status is not EnvStatus.READY
        or env.busy
    ):
        return False
    # It takes no traffic while its check fails, so stopping it first drops nothing.
    del failing_since[record.id]
    reason = "; ".join(causes) or "failing health checks"
    actions.append(Replace(record.id, record.environment, reason, failing_s))
    return True


def _gone(record: Instance, observed: InstanceObservation | None, actions: list[Action]) -> bool:
    """An instance the runtime no longer runs, or says is lost: an in-service one is
    replaced (True). Others belong to the operation that started or stops them."""
    if record.state is not InstanceState.IN_SERVICE:
        return False
    if observed is None:
        # Its processes vanished (the runtime restarted without it): a repair replaces it.
        actions.append(Vanished(record.id, record.environment))
    else:
        actions.append(Lost(record.id, record.environment, observed.lost))
    return True


def _restart(
    observed: InstanceObservation,
    now: float,
    backoff: dict[str, Backoff],
    actions: list[Action],
) -> None:
    """Restart what the runtime gave up on, no sooner than the backoff allows."""
    current = backoff.get(observed.instance_id, Backoff())
    if now < current.next_try:
        return
    given_up = tuple(p.name for p in observed.processes if p.status is ProcessStatus.FAILED)
    delay = RESTART_BACKOFF_S[min(current.failures, len(RESTART_BACKOFF_S) - 1)]
    backoff[observed.instance_id] = replace(
        current, failures=current.failures + 1, next_try=now + delay
    )
    if given_up:
        actions.append(Restart(observed.instance_id, given_up))
