"""Listener rules and an environment's processes: paths or hosts routed to a second process.

Elastic Beanstalk's Application Load Balancer sends a request to an environment's
``default`` process unless a listener rule matches it first:

- ``aws:elasticbeanstalk:environment:process:NAME`` declares a process: the ``Port`` it
  listens on in each instance (a Procfile line of that name gets it as ``PORT``) and its
  health check, in the same options as the default process.
- ``aws:elbv2:listenerrule:NAME`` matches ``HostHeaders`` (case-insensitive) and/or
  ``PathPatterns`` (case-sensitive, the path without its query), each a comma-separated
  list of up to 5 patterns where ``*`` is any run of characters and ``?`` one, and sends
  what matches to its ``Process``; rules are tried by ``Priority``, lowest first.
- ``aws:elbv2:listener:default`` / ``:443`` ``Rules`` attach rules to a listener. A rule no
  listener names applies to both (EB would leave it unused; a rule written and not attached
  is almost always an oversight, and routing it is what its author expects).

Pure: settings in, records out; `core.lb.desired` turns them into backends and
`core.lb.config` into HAProxy's ``use_backend`` lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from beanpole.core.errors import InvalidInput

PROCESS_PREFIX = "aws:elasticbeanstalk:environment:process:"
DEFAULT_PROCESS = "default"
RULE_PREFIX = "aws:elbv2:listenerrule:"
HTTP_LISTENER = "aws:elbv2:listener:default"
HTTP_LISTENER_80 = "aws:elbv2:listener:80"  # EB's other name for the port-80 listener
HTTPS_LISTENER = "aws:elbv2:listener:443"
MAX_PATTERNS = 5  # per condition, as on EB
MIN_PRIORITY, MAX_PRIORITY = 1, 1000

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A health check's path, as HAProxy's ``http-check send`` takes it unquoted.
HEALTH_CHECK_PATH = re.compile(r"/[A-Za-z0-9._~!*+,;=:@%/?&-]*")
MAX_WILDCARDS = 4  # '*' per pattern: each is a backtracking ".*" for every request
# EB's characters for a path pattern, less the quotes: every one is literal in a regex or
# written as a one-character class, so no backslash reaches HAProxy's config parser.
_PATH_PATTERN = re.compile(r"/[A-Za-z0-9_.$/~@:+&*?-]{0,127}")
_HOST_PATTERN = re.compile(r"[a-z0-9*?](?:[a-z0-9.*?-]{0,126}[a-z0-9*?])?")

# A named process's options: those with a meaning here, and EB's that are kept as given.
PROCESS_OPTIONS = frozenset(
    {
        "Port",
        "HealthCheckPath",
        "HealthCheckInterval",
        "HealthCheckTimeout",
        "HealthyThresholdCount",
        "UnhealthyThresholdCount",
        "MatcherHTTPCode",
    }
)
PROCESS_INERT = frozenset(
    {
        "Protocol",
        "DeregistrationDelay",  # an instance drains as a whole, by the default process's
        "StickinessEnabled",
        "StickinessLBCookieDuration",
        "StickinessType",
    }
)
RULE_OPTIONS = frozenset({"HostHeaders", "PathPatterns", "Priority", "Process"})
_PROCESS_DEFAULTS = {
    "Port": "80",
    "HealthCheckPath": "/",
    "HealthCheckInterval": "15",
    "HealthCheckTimeout": "5",
    "HealthyThresholdCount": "3",
    "UnhealthyThresholdCount": "5",
    "MatcherHTTPCode": "200",
}


@dataclass(frozen=True)
class Process:
    """A process of an environment's instances that a rule sends requests to."""

    name: str
    port: int
    options: Mapping[str, str]  # its health check's options, EB's names, defaults filled in


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int
    process: str
    hosts: tuple[str, ...]  # lower-case patterns
    paths: tuple[str, ...]
    http: bool  # applies on the HTTP listener
    https: bool  # applies on the HTTPS listener

    def host_regex(self) -> str:
        return _regex(self.hosts)

    def path_regex(self) -> str:
        return _regex(self.paths)


def _regex(patterns: tuple[str, ...]) -> str:
    """An anchored regex matching any of ``patterns`` (``*`` any run, ``?`` one character)."""
    special = {"*": ".*", "?": ".", ".": "[.]", "$": "[$]", "+": "[+]"}
    alternatives = ["".join(special.get(c, c) for c in p) for p in patterns]
    return "^(" + "|".join(alternatives) + ")$"


def check_name(kind: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{kind} name {name!r} is not valid: use letters, digits, '_' and '-' "
            "(at most 64), like a Procfile line's name."
        )


def check_process_option(process: str, option: str, value: str) -> str:
    """One ``aws:elasticbeanstalk:environment:process:NAME`` option (not ``default``'s)."""
    check_name("Process", process)
    if process == "web":
        raise InvalidInput(
            f"{PROCESS_PREFIX}web: the Procfile's web line is the default process; set its "
            f"options in {PROCESS_PREFIX}{DEFAULT_PROCESS}, and give other processes "
            "names of their own (for example api)."
        )
    key = f"{PROCESS_PREFIX}{process}:{option}"
    if option in PROCESS_INERT:
        return value
    if option not in PROCESS_OPTIONS:
        raise InvalidInput(
            f"Unknown option {option!r} in namespace {PROCESS_PREFIX}{process}. Known options: "
            f"{', '.join(sorted(PROCESS_OPTIONS | PROCESS_INERT))}."
        )
    if option == "Port":
        return str(_int(key, value, 1, 65535))
    if option == "HealthCheckPath":
        check_health_check_path(key, value)
        return value
    if option == "MatcherHTTPCode":
        return value
    low, high = {
        "HealthCheckInterval": (1, 300),
        "HealthCheckTimeout": (1, 60),
        "HealthyThresholdCount": (1, 10),
        "UnhealthyThresholdCount": (1, 10),
    }[option]
    return str(_int(key, value, low, high))


def check_health_check_path(key: str, value: str) -> None:
    if not HEALTH_CHECK_PATH.fullmatch(value):
        raise InvalidInput(
            f"Option {key} must be a path starting with '/', of letters, digits and "
            f"._~!*+,;=:@%/?&- (no spaces, quotes or '#'), not {value!r}."
        )


def check_rule_option(rule: str, option: str, value: str) -> str:
    """One ``aws:elbv2:listenerrule:NAME`` option, normalised."""
    check_name("Listener rule", rule)
    key = f"{RULE_PREFIX}{rule}:{option}"
    if option not in RULE_OPTIONS:
        raise InvalidInput(
            f"Unknown option {option!r} in namespace {RULE_PREFIX}{rule}. Known options: "
            f"{', '.join(sorted(RULE_OPTIONS))}."
        )
    if option == "Priority":
        return str(_int(key, value, MIN_PRIORITY, MAX_PRIORITY))
    if option == "Process":
        check_name("Process", value.strip())
        return value.strip()
    patterns = _split(value)
    for p in patterns:
        if p.count("*") > MAX_WILDCARDS:
            raise InvalidInput(
                f"Option {key} has the pattern {p!r} with {p.count('*')} '*'; use at most "
                f"{MAX_WILDCARDS}, each matches any run of characters."
            )
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(
            f"Option {key} lists {len(patterns)} patterns; a rule takes at most {MAX_PATTERNS} "
            "per condition: split it into two rules."
        )
    if option == "HostHeaders":
        patterns = [p.lower() for p in patterns]
        for p in patterns:
            if not _HOST_PATTERN.fullmatch(p):
                raise InvalidInput(
                    f"Option {key} has the host pattern {p!r}: use host names of letters, "
                    "digits, '-' and '.', with '*' for any run of characters and '?' for one "
                    "(for example api.example.com or *.example.com)."
                )
    else:
        for p in patterns:
            if not _PATH_PATTERN.fullmatch(p):
                raise InvalidInput(
                    f"Option {key} has the path pattern {p!r}: start it with '/' and use "
                    "letters, digits and _ - . $ / ~ @ : + &, with '*' for any run of "
                    "characters and '?' for one (for example /api/*), at most 128 characters."
                )
    return ",".join(patterns)


def check_rules_list(key: str, value: str) -> str:
    """A listener's ``Rules``: comma-separated rule names."""
    names = _split(value)
    for name in names:
        check_name("Listener rule", name)
    return ",".join(names)


def _split(value: str) -> list[str]:
    return list(dict.fromkeys(p.strip() for p in value.split(",") if p.strip()))


def _int(key: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(
            f"Option {key} has value {value!r}, which is not a whole number."
        ) from None
    if not low <= number <= high:
        raise InvalidInput(f"Option {key} has value {number}; it must be between {low} and {high}.")
    return number


def _named(values: Mapping[str, str], prefix: str) -> dict[str, dict[str, str]]:
    """``{NAME: {Option: value}}`` for the keys ``prefix + NAME:Option``."""
    out: dict[str, dict[str, str]] = {}
    for key, value in values.items():
        if key.startswith(prefix):
            name, _, option = key.removeprefix(prefix).rpartition(":")
            if name:
                out.setdefault(name, {})[option] = value
    return out


def processes(values: Mapping[str, str]) -> dict[str, Process]:
    """The named processes an environment's settings declare (not ``default``). One whose
    options are not valid (stored before Beanpole gave them a meaning) is left out."""
    out = {}
    for name, options in sorted(_named(values, PROCESS_PREFIX).items()):
        if name == DEFAULT_PROCESS:
            continue
        try:
            checked = {k: check_process_option(name, k, v) for k, v in options.items()}
        except InvalidInput:
            continue
        merged = {**_PROCESS_DEFAULTS, **{k: v for k, v in checked.items() if k in PROCESS_OPTIONS}}
        out[name] = Process(name, int(merged["Port"]), merged)
    return out


def ports(values: Mapping[str, str]) -> dict[str, int]:
    """Each declared process's port: what its instances are started with."""
    return {name: process.port for name, process in processes(values).items()}


def rules(values: Mapping[str, str]) -> tuple[Rule, ...]:
    """The listener rules, by priority then name, each with the listeners it applies on."""
    on_http = set(_split(values.get(f"{HTTP_LISTENER}:Rules", "")))
    on_http |= set(_split(values.get(f"{HTTP_LISTENER_80}:Rules", "")))
    on_https = set(_split(values.get(f"{HTTPS_LISTENER}:Rules", "")))
    out = []
    for name, given in _named(values, RULE_PREFIX).items():
        try:  # normalised again: one stored before Beanpole gave rules a meaning is left out
            options = {k: check_rule_option(name, k, v) for k, v in given.items()}
        except InvalidInput:
            continue
        if not options.get("HostHeaders") and not options.get("PathPatterns"):
            continue  # no condition: refused when set (`check`), never routed
        attached = name in on_http or name in on_https
        out.append(
            Rule(
                name=name,
                priority=int(options.get("Priority", "1")),
                process=options.get("Process", DEFAULT_PROCESS),
                hosts=tuple(_split(options.get("HostHeaders", ""))),
                paths=tuple(_split(options.get("PathPatterns", ""))),
                http=name in on_http or not attached,
                https=name in on_https or not attached,
            )
        )
    return tuple(sorted(out, key=lambda r: (r.priority, r.name)))


def check(values: Mapping[str, str]) -> None:
    """What no single option shows: processes have ports of their own, each rule has a
    condition and a declared process, each listener's rules exist and have priorities of
    their own."""
    declared = processes(values)
    _check_ports(declared)
    named = _named(values, RULE_PREFIX)
    for listener in (HTTP_LISTENER, HTTP_LISTENER_80, HTTPS_LISTENER):
        for name in _split(values.get(f"{listener}:Rules", "")):
            if name not in named:
                raise InvalidInput(
                    f"{listener} Rules names the rule {name!r}, which has no options: set "
                    f"{RULE_PREFIX}{name} PathPatterns or HostHeaders, and Process."
                )
    for name, options in named.items():
        if not _split(options.get("HostHeaders", "")) and not _split(
            options.get("PathPatterns", "")
        ):
            raise InvalidInput(
                f"Listener rule {name!r} has no condition: set {RULE_PREFIX}{name} "
                "PathPatterns (for example /api/*) or HostHeaders (for example api.example.com)."
            )
    found = rules(values)
    for rule in found:
        if rule.process != DEFAULT_PROCESS and rule.process not in declared:
            raise InvalidInput(
                f"Listener rule {rule.name!r} sends requests to the process {rule.process!r}, "
                f"which is not declared: set {PROCESS_PREFIX}{rule.process} Port to the port "
                "it listens on in each instance (a Procfile line of that name gets it as PORT)."
            )
    for listener, applies in (("HTTP", "http"), ("HTTPS", "https")):
        _check_priorities(listener, [r for r in found if getattr(r, applies)])


def _check_ports(declared: Mapping[str, Process]) -> None:
    by_port: dict[int, str] = {}
    for process in declared.values():
        other = by_port.setdefault(process.port, process.name)
        if other != process.name:
            raise InvalidInput(
                f"Processes {other!r} and {process.name!r} both have Port {process.port}: "
                f"give each the port its Procfile line listens on ({PROCESS_PREFIX}NAME Port)."
            )


def _check_priorities(listener: str, found: list[Rule]) -> None:
    by_priority: dict[int, str] = {}
    for rule in found:
        other = by_priority.setdefault(rule.priority, rule.name)
        if other != rule.name:
            raise InvalidInput(
                f"Listener rules {other!r} and {rule.name!r} both have Priority "
                f"{rule.priority} on the {listener} listener: give each a priority of "
                f"its own ({MIN_PRIORITY} to {MAX_PRIORITY}, lowest first)."
            )
