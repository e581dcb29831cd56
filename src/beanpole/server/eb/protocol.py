"""AWS's query protocol as Elastic Beanstalk speaks it: a form-encoded request flattened
into ``Name.member.N.Field`` keys, an XML answer in EB's namespace, EB's error shape.

`Params` reads the flattened form back into lists and structures; `render` writes a result
(plain dicts, lists, strings, numbers, booleans and datetimes) as the response element;
`EBError` is an error as EB answers it (400, a code clients branch on, a message).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from beanpole.core.secrets import mask

NAMESPACE = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/"
VERSION = "2010-12-01"


class EBError(Exception):
    """An error in EB's shape: ``InvalidParameterValue`` and the like, status 400 (never a
    5xx for a client's mistake: the SDKs retry those for minutes)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def invalid(message: str) -> EBError:
    return EBError("InvalidParameterValue", message)


def missing(name: str) -> EBError:
    return EBError("MissingParameter", f"The request must contain the parameter {name}.")


class Params:
    """A query-protocol request's parameters, with the flattening undone on demand."""

    def __init__(self, form: Mapping[str, str]) -> None:
        self.form = dict(form)

    def get(self, name: str) -> str | None:
        """A scalar; an empty string counts as given (a description may be emptied)."""
        return self.form.get(name)

    def required(self, name: str) -> str:
        value = self.form.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.form.get(name)
        if value is None or value == "":
            return default
        if value.lower() not in ("true", "false"):
            raise invalid(f"Parameter {name} must be true or false, not {value!r}.")
        return value.lower() == "true"

    def number(self, name: str) -> int | None:
        value = self.form.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise invalid(f"Parameter {name} must be a whole number, not {value!r}.") from None

    def moment(self, name: str) -> float | None:
        value = self.form.get(name)
        if value is None or value == "":
            return None
        return parse_time(name, value)

    def strings(self, name: str) -> list[str]:
        """``Name.member.N`` (1-based) in order; ``Name=`` alone is the empty list."""
        return [v for _, v in self._members(name)]

    def structs(self, name: str) -> list[dict[str, str]]:
        """``Name.member.N.Field`` as a list of {Field: value}."""
        out: dict[int, dict[str, str]] = {}
        prefix = f"{name}.member."
        for key, value in self.form.items():
            if not key.startswith(prefix):
                continue
            index, _, field = key[len(prefix) :].partition(".")
            if index.isdigit() and field:
                out.setdefault(int(index), {})[field] = value
        return [out[i] for i in sorted(out)]

    def struct(self, name: str) -> dict[str, str]:
        """``Name.Field`` (nested fields keep their dots: ``A.B.C`` → {"B.C": …})."""
        prefix = name + "."
        return {k[len(prefix) :]: v for k, v in self.form.items() if k.startswith(prefix)}

    def _members(self, name: str) -> list[tuple[int, str]]:
        prefix = f"{name}.member."
        found = []
        for key, value in self.form.items():
            if key.startswith(prefix) and key[len(prefix) :].isdigit():
                found.append((int(key[len(prefix) :]), value))
        return sorted(found)


def parse_time(name: str, value: str) -> float:
    """ISO-8601 UTC with any fraction (Go trims zeros, botocore sends microseconds)."""
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            raise invalid(
                f"Parameter {name} must be an ISO-8601 time such as 2026-12-02T10:00:00Z, "
                f"not {value!r}."
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class Timestamp(float):
    """A time (epoch seconds) rendered as EB does: ``2026-12-02T10:00:00.123Z``."""


def render(action: str, result: Mapping[str, Any] | None, request_id: str) -> bytes:
    body = _element(f"{action}Result", result) if result else f"<{action}Result/>"
    return (
        f'<{action}Response xmlns="{NAMESPACE}">{body}'
        f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def render_error(error: EBError, request_id: str) -> bytes:
    kind = "Sender" if error.status < 500 else "Receiver"
    return (
        f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
        f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()


def _element(name: str, value: Any) -> str:
    if value is None:
        return ""
    return f"<{name}>{_content(value)}</{name}>"


def _content(value: Any) -> str:
    if isinstance(value, Mapping):
        return "".join(_element(k, v) for k, v in value.items())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        return format_time(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return escape(mask(value))  # no answer shows a secret's sealed form (core.secrets)
    if isinstance(value, Iterable):
        return "".join(f"<member>{_content(v)}</member>" for v in value)
    raise TypeError(f"cannot render {type(value).__name__}")


def format_time(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
