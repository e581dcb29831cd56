"""Scheduled actions: EB's ``aws:autoscaling:scheduledaction`` namespace (pure).

Each action is a group of settings ``aws:autoscaling:scheduledaction:RESOURCE:OPTION`` that
sets some of MinSize, MaxSize and DesiredCapacity when it fires. A one-time action (StartTime,
no Recurrence) fires once, at StartTime. A recurring action fires at every minute its
Recurrence (a five-field Unix cron expression) matches; StartTime and EndTime, when given,
bound the period in which it fires (both inclusive). A suspended action never fires. What a
firing sets stays in force until another firing changes it: nothing reverts when an action's
period ends. Every time is UTC, with minute resolution (cron minutes; StartTime may carry
seconds), and every function takes ``now`` as epoch seconds: this module reads no clock.
"""

from __future__ import annotations

import calendar
import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from beanpole.core.errors import InvalidInput

NAMESPACE = "aws:autoscaling:scheduledaction"
OPTIONS = (
    "MinSize",
    "MaxSize",
    "DesiredCapacity",
    "StartTime",
    "EndTime",
    "Recurrence",
    "Suspend",
)

SIZE_LIMIT = 100  # as aws:autoscaling:asg MaxSize (core/settings/options.py)
"""The largest MinSize, MaxSize or DesiredCapacity an action may set."""

SEARCH_YEARS = 8
"""How far `Cron.next_after` and `Cron.latest_at_or_before` look before giving up (None).
Eight years, so that '0 0 29 2 *' is always found: the longest gap between two 29 Februaries
is eight years (2096 to 2104)."""

_SIZE_OPTIONS = ("MinSize", "MaxSize", "DesiredCapacity")
_RESOURCE = re.compile(r"[A-Za-z0-9._-]{1,255}")
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2}))?([Zz]|[+-]\d{2}:?\d{2})?"
)
_DIGITS = re.compile(r"[0-9]+")
_TIME_EXAMPLE = "2026-12-03T09:00:00Z"
_CRON_HINT = (
    "Use five fields: minute hour day-of-month month day-of-week, in UTC "
    "(for example '0 9 * * MON-FRI')."
)


def _key(resource: str, option: str) -> str:
    return f"{NAMESPACE}:{resource}:{option}"


def _number(text: str) -> int | None:
    """The value of ``text`` if it is ASCII digits (a huge one counts as 10**9), else None."""
    if not _DIGITS.fullmatch(text):
        return None
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= 9 else 10**9


# --- cron ---------------------------------------------------------------------------------

_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    names_hint: str = ""


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, {n: i + 1 for i, n in enumerate(_MONTH_NAMES)}, "JAN-DEC"),
    _Field("day-of-week", 0, 7, {n: i for i, n in enumerate(_DAY_NAMES)}, "SUN-SAT"),
)


def _value(field: _Field, text: str) -> int:
    number = _number(text)
    if number is not None:
        if not field.low <= number <= field.high:
            raise ValueError(f"{field.name} {text} is out of range {field.low}-{field.high}")
        return number
    named = field.names.get(text.upper())
    if named is not None:
        return named
    if field.names:
        raise ValueError(
            f"{field.name} {text!r} is not a number {field.low}-{field.high} "
            f"or a name {field.names_hint}"
        )
    raise ValueError(f"{field.name} {text!r} is not a number {field.low}-{field.high}")


def _part(field: _Field, part: str) -> range:
    base, slash, step_text = part.partition("/")
    step = 1
    if slash:
        step = _number(step_text) or 0
        if step < 1:
            raise ValueError(
                f"{field.name} step {step_text!r} in {part!r} must be a whole number of 1 or more"
            )
    if base == "*":
        return range(field.low, field.high + 1, step)
    first_text, dash, last_text = base.partition("-")
    if not first_text or (dash and not last_text):
        raise ValueError(f"{field.name} {part!r} is not a number, a range a-b or '*'")
    first = _value(field, first_text)
    if dash:
        last = _value(field, last_text)
    elif slash:
        last = field.high  # 'a/n': from a to the end, as cronie reads it
    else:
        last = first
    if last < first:
        raise ValueError(
            f"{field.name} range {base!r} runs backwards; write it as two ranges "
            f"('{first_text}-{field.high},{field.low}-{last_text}')"
        )
    return range(first, last + 1, step)


def _field(field: _Field, text: str) -> tuple[int, ...]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ValueError(f"{field.name} field {text!r} has an empty list item")
        values.update(_part(field, part))
    if field.name == "day-of-week" and 7 in values:
        values.discard(7)
        values.add(0)  # 0 and 7 are both Sunday
    return tuple(sorted(values))


def _after(values: tuple[int, ...], value: int) -> int | None:
    """The smallest of ``values`` that is >= ``value``."""
    i = bisect_left(values, value)
    return values[i] if i < len(values) else None


def _before(values: tuple[int, ...], value: int) -> int | None:
    """The largest of ``values`` that is <= ``value``."""
    i = bisect_right(values, value)
    return values[i - 1] if i else None


def _to_datetime(t: float) -> datetime:
    """The minute holding ``t``, as a naive UTC datetime."""
    return datetime.fromtimestamp(math.floor(t / 60) * 60, UTC).replace(tzinfo=None)


def _to_epoch(dt: datetime) -> float:
    return float(calendar.timegm(dt.timetuple()))


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression, evaluated in UTC.

    Fields hold the sorted values they match. Day-of-week 0 and 7 are both Sunday. Vixie
    cron's rule applies: when both day-of-month and day-of-week are restricted, a day matches
    if either matches. A field counts as unrestricted when it starts with '*' (so '*/2' counts
    as unrestricted here, as it does in Vixie cron and cronie).
    """

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Parse ``text``; raise ValueError with the precise reason when it is not valid."""
        fields = text.split()
        if not fields:
            raise ValueError("it is empty")
        if len(fields) != len(_FIELDS):
            raise ValueError(f"it has {len(fields)} fields, not five")
        minutes, hours, days, months, weekdays = (
            _field(spec, field) for spec, field in zip(_FIELDS, fields, strict=True)
        )
        return cls(
            text=" ".join(fields),
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            days_restricted=not fields[2].startswith("*"),
            weekdays_restricted=not fields[4].startswith("*"),
        )

    def __str__(self) -> str:
        return self.text

    def _day_matches(self, dt: datetime) -> bool:
        day_ok = dt.day in self.days
        weekday_ok = (dt.weekday() + 1) % 7 in self.weekdays  # Python's Monday is 0
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def matches(self, t: float) -> bool:
        """Whether the minute holding ``t`` is one the expression names."""
        dt = _to_datetime(t)
        return (
            dt.month in self.months
            and self._day_matches(dt)
            and dt.hour in self.hours
            and dt.minute in self.minutes
        )

    def next_after(self, t: float) -> float | None:
        """The first matching minute strictly after ``t`` (epoch seconds), or None when there
        is none within `SEARCH_YEARS` (e.g. '0 0 30 2 *')."""
        try:
            dt = _to_datetime(t) + timedelta(minutes=1)
            limit = dt.year + SEARCH_YEARS
            while dt.year <= limit:
                if dt.month not in self.months:
                    month = _after(self.months, dt.month + 1)
                    if month is None:
                        dt = datetime(dt.year + 1, self.months[0], 1)
                    else:
                        dt = datetime(dt.year, month, 1)
                    continue
                if not self._day_matches(dt):
                    dt = datetime(dt.year, dt.month, dt.day) + timedelta(days=1)
                    continue
                hour = _after(self.hours, dt.hour)
                if hour is None:
                    dt = datetime(dt.year, dt.month, dt.day) + timedelta(days=1)
                    continue
                if hour != dt.hour:
                    dt = dt.replace(hour=hour, minute=0)
                minute = _after(self.minutes, dt.minute)
                if minute is None:
                    dt = dt.replace(minute=0) + timedelta(hours=1)
                    continue
                return _to_epoch(dt.replace(minute=minute))
        except (OverflowError, ValueError, OSError):  # past year 9999
            return None
        return None

    def latest_at_or_before(self, t: float) -> float | None:
        """The last matching minute at or before ``t`` (epoch seconds), or None when there is
        none within `SEARCH_YEARS`."""
        try:
            dt = _to_datetime(t)
            limit = dt.year - SEARCH_YEARS
            while dt.year >= limit:
                if dt.month not in self.months:
                    month = _before(self.months, dt.month - 1)
                    year = dt.year if month is not None else dt.year - 1
                    month = month if month is not None else self.months[-1]
                    last_day = calendar.monthrange(year, month)[1]
                    dt = datetime(year, month, last_day, 23, 59)
                    continue
                if not self._day_matches(dt):
                    dt = datetime(dt.year, dt.month, dt.day) - timedelta(minutes=1)
                    continue
                hour = _before(self.hours, dt.hour)
                if hour is None:
                    dt = datetime(dt.year, dt.month, dt.day) - timedelta(minutes=1)
                    continue
                if hour != dt.hour:
                    dt = dt.replace(hour=hour, minute=59)
                minute = _before(self.minutes, dt.minute)
                if minute is None:
                    dt = dt.replace(minute=0) - timedelta(minutes=1)
                    continue
                return _to_epoch(dt.replace(minute=minute))
        except (OverflowError, ValueError, OSError):  # before year 1
            return None
        return None


@lru_cache(maxsize=256)
def _cron(text: str) -> Cron:
    return Cron.parse(text)


# --- settings -------------------------------------------------------------------------------


def _parse_time(text: str) -> float:
    """Epoch seconds for an ISO 8601 time; no offset means UTC. ValueError says why not."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError("it is not of the form YYYY-MM-DDTHH:MM:SSZ")
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as err:
        raise ValueError(f"it is not a real date and time ({err})") from None
    offset = match.group(7)
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise ValueError(f"its offset {offset} is not a valid UTC offset")
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return moment.timestamp()


def format_time(t: float) -> str:
    """``t`` as StartTime/EndTime are stored: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_option(resource: str, option: str, value: str) -> str:
    """Check one setting ``aws:autoscaling:scheduledaction:RESOURCE:OPTION = value`` and
    return the value normalised; raise InvalidInput naming the key, the problem and the fix."""
    key = _key(resource, option)
    if not _RESOURCE.fullmatch(resource):
        raise InvalidInput(
            f"Scheduled action name {resource!r} (in {key}) is not valid; use 1 to 255 "
            "letters, digits, '-', '_' or '.'."
        )
    if option not in OPTIONS:
        raise InvalidInput(
            f"Unknown option {option!r} for scheduled action {resource} (in {key}). "
            f"Known options: {', '.join(OPTIONS)}."
        )
    if option in _SIZE_OPTIONS:
        number = _number(value.strip())
        if number is None or number > SIZE_LIMIT:
            raise InvalidInput(
                f"{key} {value!r} is not a whole number between 0 and {SIZE_LIMIT}. "
                "Give a number of instances, for example '2'."
            )
        return str(number)
    if option in ("StartTime", "EndTime"):
        try:
            return format_time(_parse_time(value))
        except (ValueError, OverflowError, OSError) as err:
            raise InvalidInput(
                f"{key} {value!r} is not a valid time: {err}. Use ISO 8601 in UTC, "
                f"for example '{_TIME_EXAMPLE}'."
            ) from None
    if option == "Recurrence":
        try:
            return _cron(" ".join(value.split())).text
        except ValueError as err:
            raise InvalidInput(
                f"{key} {value!r} is not a valid cron expression: {err}. {_CRON_HINT}"
            ) from None
    lowered = value.strip().lower()  # Suspend
    if lowered not in ("true", "false"):
        raise InvalidInput(
            f"{key} {value!r} is not true or false. Use true to pause the action, "
            "false to let it run."
        )
    return lowered


@dataclass(frozen=True)
class ScheduledAction:
    """One action, its values checked and normalised (times as epoch seconds, the cron
    expression whitespace-collapsed)."""

    name: str
    min_size: int | None
    max_size: int | None
    desired: int | None
    start: float | None
    end: float | None
    recurrence: str | None
    suspended: bool


def _whole(name: str, options: Mapping[str, str]) -> ScheduledAction:
    def size(option: str) -> int | None:
        return int(options[option]) if option in options else None

    def moment(option: str) -> float | None:
        return _parse_time(options[option]) if option in options else None

    action = ScheduledAction(
        name=name,
        min_size=size("MinSize"),
        max_size=size("MaxSize"),
        desired=size("DesiredCapacity"),
        start=moment("StartTime"),
        end=moment("EndTime"),
        recurrence=options.get("Recurrence"),
        suspended=options.get("Suspend") == "true",
    )
    where = f"Scheduled action {name} ({NAMESPACE}:{name})"
    if action.min_size is None and action.max_size is None and action.desired is None:
        raise InvalidInput(
            f"{where} sets no size. Give at least one of MinSize, MaxSize or DesiredCapacity."
        )
    if action.start is None and action.recurrence is None:
        raise InvalidInput(
            f"{where} has neither StartTime nor Recurrence, so it would never run. Give "
            "StartTime for a one-time action, or Recurrence (a cron expression in UTC) for a "
            "recurring one."
        )
    low, high, desired = action.min_size, action.max_size, action.desired
    if low is not None and high is not None and low > high:
        raise InvalidInput(
            f"{where} has MinSize {low} above MaxSize {high}. Lower MinSize or raise MaxSize."
        )
    if desired is not None and low is not None and desired < low:
        raise InvalidInput(
            f"{where} has DesiredCapacity {desired} below its MinSize {low}. Raise "
            "DesiredCapacity or lower MinSize."
        )
    if desired is not None and high is not None and desired > high:
        raise InvalidInput(
            f"{where} has DesiredCapacity {desired} above its MaxSize {high}. Lower "
            "DesiredCapacity or raise MaxSize."
        )
    if action.start is not None and action.end is not None and action.end <= action.start:
        raise InvalidInput(
            f"{where} has EndTime {options['EndTime']}, which is not after its StartTime "
            f"{options['StartTime']}. Move EndTime later or remove it."
        )
    return action


def actions_from(values: Mapping[str, str]) -> list[ScheduledAction]:
    """The scheduled actions in a full settings mapping (keys outside the namespace are
    ignored), sorted by name. Raises InvalidInput for a bad setting or an action that is not
    whole (no size, no StartTime nor Recurrence, MinSize > MaxSize, DesiredCapacity outside
    its own MinSize..MaxSize, EndTime not after StartTime)."""
    prefix = f"{NAMESPACE}:"
    grouped: dict[str, dict[str, str]] = {}
    for key, value in values.items():
        if not key.startswith(prefix):
            continue
        resource, colon, option = key[len(prefix) :].rpartition(":")
        if not colon or not resource:
            raise InvalidInput(
                f"Setting {key!r} names no scheduled action; write it as "
                f"{NAMESPACE}:RESOURCE:OPTION (for example {NAMESPACE}:Nightly:MinSize)."
            )
        grouped.setdefault(resource, {})[option] = check_option(resource, option, value)
    return [_whole(name, grouped[name]) for name in sorted(grouped)]


# --- firings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    action: ScheduledAction
    at: float  # epoch seconds


def last_firing(action: ScheduledAction, now: float) -> float | None:
    """The latest time at or before ``now`` at which ``action`` fired: StartTime for a
    one-time action; for a recurring one the latest cron minute within StartTime..EndTime.
    None if suspended or it has not fired yet (or not within `SEARCH_YEARS`)."""
    if action.suspended:
        return None
    if action.recurrence is None:
        return action.start if action.start is not None and action.start <= now else None
    ceiling = now if action.end is None else min(now, action.end)
    at = _cron(action.recurrence).latest_at_or_before(ceiling)
    if at is None or (action.start is not None and at < action.start):
        return None
    return at


def next_firing(action: ScheduledAction, now: float) -> float | None:
    """The first time strictly after ``now`` at which ``action`` fires, within its
    StartTime..EndTime; None if suspended or it never fires again."""
    if action.suspended:
        return None
    if action.recurrence is None:
        return action.start if action.start is not None and action.start > now else None
    after = now
    if action.start is not None:
        # The minute before the first whole minute at or after StartTime.
        after = max(now, math.ceil(action.start / 60) * 60 - 60)
    at = _cron(action.recurrence).next_after(after)
    if at is None or (action.end is not None and at > action.end):
        return None
    return at


def in_force(actions: Iterable[ScheduledAction], now: float) -> Firing | None:
    """The latest firing at or before ``now`` across the unsuspended actions: the one whose
    values are in force. When several fired in the same minute, they count as applied in name
    order, so the last name wins. None if none has fired."""
    best: Firing | None = None
    for action in actions:
        at = last_firing(action, now)
        if at is not None and (best is None or (at, action.name) > (best.at, best.action.name)):
            best = Firing(action, at)
    return best


def upcoming(actions: Iterable[ScheduledAction], now: float, limit: int = 5) -> list[Firing]:
    """The next ``limit`` firings strictly after ``now`` across the actions, by time (then by
    name); a recurring action appears once per firing."""
    if limit <= 0:
        return []
    firings: list[Firing] = []
    for action in actions:
        at = next_firing(action, now)
        count = 0
        while at is not None and count < limit:
            firings.append(Firing(action, at))
            count += 1
            at = next_firing(action, at)
    firings.sort(key=lambda f: (f.at, f.action.name))
    return firings[:limit]


def describe(firing: Firing) -> str:
    """One line for people, e.g. 'Nightly sets MinSize 1, MaxSize 2 at 2026-12-03 02:00 UTC'."""
    action = firing.action
    sizes = [
        f"{label} {value}"
        for label, value in (
            ("MinSize", action.min_size),
            ("MaxSize", action.max_size),
            ("DesiredCapacity", action.desired),
        )
        if value is not None
    ]
    when = datetime.fromtimestamp(firing.at, UTC).strftime("%Y-%m-%d %H:%M")
    return f"{action.name} sets {', '.join(sizes) or 'nothing'} at {when} UTC"
