"""Events, filtered as EB's clients rely on: severity at least the one asked for, from
StartTime on, by the request that started an operation, newest first."""

from __future__ import annotations

import asyncio

from beanpole.core.model import Event, Severity
from beanpole.server.eb.actions.base import Action, Result
from beanpole.server.eb.context import EB
from beanpole.server.eb.protocol import Params, Timestamp, invalid

ORDER = [s.value for s in Severity]
PAGE = 1000


async def describe_events(eb: EB, p: Params) -> Result:
    severity = p.get("Severity")
    if severity and severity not in ORDER:
        raise invalid(f"Severity must be one of {', '.join(ORDER)}, not {severity!r}.")
    env_id = p.get("EnvironmentId")
    env_name = p.get("EnvironmentName")
    store = eb.ctx.store
    if not env_id and env_name:
        # the live environment of that name, else the last one that had it
        matches = [e for e in store.environments(include_terminated=True) if e.name == env_name]
        live = [e for e in matches if e.status != "Terminated"]
        chosen = live or sorted(matches, key=lambda e: e.updated_at)[-1:]
        if not chosen:
            return {"Events": []}
        env_id = chosen[0].id
    limit = p.number("MaxRecords") or PAGE
    token = p.get("NextToken")
    events = await asyncio.to_thread(
        store.find_events,
        application=p.get("ApplicationName") or None,
        environment_id=env_id or None,
        version_label=p.get("VersionLabel") or None,
        request_id=p.get("RequestId") or None,
        severities=tuple(ORDER[ORDER.index(severity) :]) if severity else (),
        start=p.moment("StartTime"),
        end=p.moment("EndTime"),
        before_id=int(token) if token and token.isdigit() else None,
        limit=limit + 1,
    )
    result: dict[str, object] = {"Events": [_event(e) for e in events[:limit]]}
    if len(events) > limit:
        result["NextToken"] = str(events[limit - 1].id)
    return result


def _event(e: Event) -> dict[str, object]:
    return {
        "EventDate": Timestamp(e.time),
        "Message": e.message,
        "ApplicationName": e.application,
        "VersionLabel": e.version_label,
        "EnvironmentName": e.environment,
        "RequestId": e.request_id,
        "Severity": str(e.severity),
    }


ACTIONS: dict[str, Action] = {"DescribeEvents": describe_events}
