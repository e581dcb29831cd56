"""What HAProxy should look like, and the text that makes it so.

Pure: dataclasses that validate themselves and functions that render them, no I/O. The adapter
(``beanpole.adapters.lb.haproxy``) writes the text and drives the process; keeping the
rendering here lets every rule about the config be tested without a running HAProxy.

The routing model: one frontend routes by ``Host`` through a map file (host -> backend) to one
backend per environment; an environment's listener rules (`beanpole.core.listener_rules`)
send the requests they match to a backend of their process (``env-<environment>.<process>``).
Hosts, servers and weights change through the runtime API without a reload; everything else
(listener, backends, health checks, rules) is *structural* and needs a reload.
:func:`structural_key` tells the two apart.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path

from beanpole.core import listener_rules, staticfiles
from beanpole.core.errors import InvalidInput

#: Bumped whenever the template below changes, so that an upgraded Beanpole reloads HAProxy
#: once to pick up the new template even when the spec is unchanged.
TEMPLATE_VERSION = 8

# One line per request, sent raw (no syslog header) as a UDP datagram to the server on
# loopback (`LoadBalancerSpec.log_port`; see `beanpole.adapters.lb.requests` for why UDP):
#   end-ms backend server status total-ms weight bytes client-ip method "uri"
# ``end-ms`` is when the line was made, the request's end, in epoch milliseconds (HAProxy's
# accept date would be the previous request's end on a kept-alive connection); ``weight`` is
# N when the line stands for N requests (the backend is sampled 1:N, see `sample_var`), "-"
# (= 1) when HAProxy answered before reaching a backend. `beanpole.adapters.lb.requests` parses
# exactly this; change both together. With a token (`LoadBalancerSpec.log_token`), each line
# starts with it and a space: the server takes only lines that carry it, so no other local
# process can forge a request line (health, the deployment gate, the autoscaler read them).
WEIGHT_VAR = "txn.bp_w"
LOG_FORMAT = f"%[date(0,ms)] %b %s %ST %Ta %[var({WEIGHT_VAR})] %B %ci %HM %{{+Q}}HU"

BACKEND_PREFIX = "env-"
STATIC_PREFIX = "static-"  # an environment's static files: Beanpole's file server
#: Set by HAProxy on requests it sends to the static file server (and removed from every
#: client request first): the environment whose files are asked for.
STATIC_HEADER = "x-beanpole-env"
NO_ROUTE_BACKEND = "no-environment"
NO_ROUTE_BODY = "No environment is served at this address."

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,98}[A-Za-z0-9])?")
_PROCESS = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: What a listener rule's regexes may hold (`listener_rules` writes them): no backslash, no
#: space, no quote, nothing HAProxy's config parser would read as anything but the regex.
_RULE_REGEX = re.compile(r"\^\([A-Za-z0-9_.$/~@:+&*?|\[\]-]+\)\$")
PROCESS_SEPARATOR = "."  # env-<environment>.<process>: neither name can hold a dot
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
_PATH = listener_rules.HEALTH_CHECK_PATH
_CODE_PART = re.compile(r"(\d{3})(?:-(\d{3}))?")
# Characters that would need quoting somewhere in the config or the ``-S`` argument
# (which splits on commas); refusing them is simpler than quoting them everywhere.
_SAFE_PATH = re.compile(r"[A-Za-z0-9._/+@=-]+")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")
MIN_STATUS, MAX_STATUS = 100, 599
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
MIN_TLS = TLS_VERSIONS[0]  # the HTTPS listener's floor: older versions are never offered
MAX_WEIGHT = 256
MAX_SAMPLE_RATIO = 1 << 20


def _check_name(kind: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise InvalidInput(
            f"{kind} {value!r} is not valid: use letters, digits and hyphens "
            "(not at either end), at most 100 characters."
        )


def _check_port(kind: str, port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(f"{kind} {port!r} is not a TCP port: use 1 to 65535.")


def _check_ip(kind: str, value: str) -> None:
    # Only literal addresses: dynamic servers never resolve names ("init-addr none").
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidInput(f"{kind} {value!r} is not an IP address.") from None


def parse_matcher(matcher: str) -> tuple[int, ...]:
    """The status codes an EB ``MatcherHTTPCode`` accepts: "200", "200,302", "200-299"."""
    codes: set[int] = set()
    parts = [part.strip() for part in matcher.split(",")]
    for part in parts:
        m = _CODE_PART.fullmatch(part)
        if m is None:
            raise InvalidInput(
                f"Health check matcher {matcher!r} is not valid: use HTTP codes like "
                '"200", "200,302" or a range "200-299".'
            )
        low = int(m.group(1))
        high = int(m.group(2) or low)
        if not MIN_STATUS <= low <= high <= MAX_STATUS:
            raise InvalidInput(
                f"Health check matcher {matcher!r} is not valid: codes must be between "
                f"{MIN_STATUS} and {MAX_STATUS}, and a range must go from low to high."
            )
        codes.update(range(low, high + 1))
    return tuple(sorted(codes))


def _digit_runs(digits: list[int]) -> str:
    """``[0,1,2,5]`` -> ``"[0-25]"``: a regex character class for sorted distinct digits."""
    if len(digits) == 1:
        return str(digits[0])
    out: list[str] = []
    start = prev = digits[0]
    for d in [*digits[1:], -2]:
        if d != prev + 1:
            out.append(f"{start}-{prev}" if prev > start else str(start))
            start = d
        prev = d
    return "[" + "".join(out) + "]"


def status_regex(codes: tuple[int, ...]) -> str:
    """An anchored regex matching exactly ``codes``; ranges stay short (``2[0-9][0-9]``).

    HAProxy's ``http-check expect`` takes one ``status`` or one ``rstatus`` regex, so a list or a
    range of codes becomes a regex.
    """
    alternatives: list[str] = []
    for hundred in sorted({c // 100 for c in codes}):
        in_hundred = [c for c in codes if c // 100 == hundred]
        if len(in_hundred) == 100:
            alternatives.append(f"{hundred}[0-9][0-9]")
            continue
        for ten in sorted({c // 10 % 10 for c in in_hundred}):
            units = [c % 10 for c in in_hundred if c // 10 % 10 == ten]
            alternatives.append(f"{hundred}{ten}{_digit_runs(units)}")
    return "^(" + "|".join(alternatives) + ")$"


@dataclass(frozen=True)
class HealthCheck:
    """An environment's active health check, in EB's terms (``...:environment:process``)."""

    path: str = "/"
    interval_s: int = 15
    timeout_s: int = 5
    healthy_threshold: int = 3  # HAProxy rise
    unhealthy_threshold: int = 5  # HAProxy fall
    matcher: str = "200"

    def __post_init__(self) -> None:
        if not _PATH.fullmatch(self.path):
            raise InvalidInput(
                f"Health check path {self.path!r} is not valid: it must start with '/' and "
                "contain no spaces or quotes."
            )
        for label, value, low in (
            ("interval", self.interval_s, 1),
            ("timeout", self.timeout_s, 1),
            ("healthy threshold", self.healthy_threshold, 1),
            ("unhealthy threshold", self.unhealthy_threshold, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 3600:
                raise InvalidInput(
                    f"Health check {label} {value!r} is not valid: use a whole number "
                    f"from {low} to 3600."
                )
        parse_matcher(self.matcher)

    def expect_line(self) -> str:
        """The ``http-check expect`` directive for the matcher."""
        codes = parse_matcher(self.matcher)
        if len(codes) == 1:
            return f"http-check expect status {codes[0]}"
        return f"http-check expect rstatus {status_regex(codes)}"

    def server_params(self) -> str:
        """The check parameters of a ``server`` line.

        Rendered on every server because dynamic servers (``add server``) ignore
        ``default-server``; the same string is used for both so they cannot drift apart.
        ``downinter`` never exceeds ``inter``, so a recovered instance is noticed as fast as the
        interval promises.
        """
        down = min(2, self.interval_s)
        fast = 1
        return (
            f"check inter {self.interval_s}s fastinter {fast}s downinter {down}s "
            f"fall {self.unhealthy_threshold} rise {self.healthy_threshold}"
        )


@dataclass(frozen=True)
class Server:
    """One instance behind an environment's backend."""

    name: str  # instance id like "i-1a2b3c4d"
    address: str  # "127.0.0.1"
    port: int
    weight: int  # 0..256; 0 = present but gets no new traffic (starting or draining)

    def __post_init__(self) -> None:
        _check_name("Server name", self.name)
        _check_ip("Server address", self.address)
        _check_port("Server port", self.port)
        if isinstance(self.weight, bool) or not isinstance(self.weight, int):
            raise InvalidInput(f"Server weight {self.weight!r} is not a whole number.")
        if not 0 <= self.weight <= MAX_WEIGHT:
            raise InvalidInput(f"Server weight {self.weight} is not valid: use 0 to {MAX_WEIGHT}.")

    @property
    def endpoint(self) -> str:
        """``addr:port`` as HAProxy parses it (IPv6 needs brackets to keep its colons apart)."""
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class StaticFiles:
    """An environment's static files: URL paths served from folders of the version in
    service (`beanpole.core.staticfiles`), by Beanpole's file server, not the app."""

    mappings: tuple[tuple[str, str], ...]  # (URL path, folder), the most specific first
    # the app folders to look in, in order: the newest version in service first, then the
    # others still serving during a deployment (a file missing from the first is looked
    # for in the next, so pages of either version find their files)
    roots: tuple[str, ...]

    def __post_init__(self) -> None:
        for path, folder in self.mappings:
            if staticfiles.check_mapping(path, folder) != (path, folder):
                raise InvalidInput(f"Static files mapping {path}: {folder} is not normalised.")
        for root in self.roots:
            if not root.startswith("/"):
                raise InvalidInput(f"Static files root {root!r} is not an absolute path.")


@dataclass(frozen=True)
class Certificate:
    """A stored certificate the HTTPS listener offers by SNI (`beanpole.core.certificates`)."""

    name: str
    path: str  # its PEM (leaf, chain, key), which HAProxy loads and the runtime API renews
    fingerprint: str  # SHA-1 of the leaf, upper-case hex, as ``show ssl cert`` prints it
    min_tls: str = "TLSv1.2"  # the oldest TLS version served with it (its strictest policy)

    def __post_init__(self) -> None:
        if not _SAFE_PATH.fullmatch(self.path) or not self.path.startswith("/"):
            raise InvalidInput(f"Certificate path {self.path!r} is not a plain absolute path.")
        if not re.fullmatch(r"[0-9A-F]{40}", self.fingerprint):
            raise InvalidInput(f"Certificate fingerprint {self.fingerprint!r} is not SHA-1 hex.")
        if self.min_tls not in TLS_VERSIONS:
            raise InvalidInput(f"TLS version {self.min_tls!r} is not one of {TLS_VERSIONS}.")

    @property
    def crt_list_line(self) -> str:
        """Its line in the listener's crt-list (and the payload of ``add ssl crt-list``)."""
        if self.min_tls == MIN_TLS:
            return self.path
        return f"{self.path} [ssl-min-ver {self.min_tls}]"


@dataclass(frozen=True)
class RoutingRule:
    """A listener rule: requests for its environment that match go to ``target``."""

    name: str
    target: str  # the process's backend: "<environment>.<process>"
    host_regex: str = ""  # "": any host of the environment
    path_regex: str = ""  # "": any path
    http: bool = True  # applies on the HTTP listener
    https: bool = True  # and on the HTTPS one

    def __post_init__(self) -> None:
        for regex in (self.host_regex, self.path_regex):
            if regex and not _RULE_REGEX.fullmatch(regex):
                raise InvalidInput(f"Listener rule {self.name!r} has the pattern {regex!r}.")
        if not self.host_regex and not self.path_regex:
            raise InvalidInput(f"Listener rule {self.name!r} has no condition.")

    def condition(self, backend: str, var: str) -> str:
        """The ACLs of its ``use_backend`` line (``var``: the backend the host maps to)."""
        parts = [f"{{ var({var}) -m str {backend_id(backend)} }}"]
        if self.host_regex:
            parts.append(f"{{ req.hdr(host),lower,field(1,:) -m reg {self.host_regex} }}")
        if self.path_regex:
            parts.append(f"{{ path -m reg {self.path_regex} }}")
        if not self.http:
            parts.append("{ ssl_fc }")
        elif not self.https:
            parts.append("!{ ssl_fc }")
        return " ".join(parts)


@dataclass(frozen=True)
class Backend:
    """One environment, or one of its processes (``name`` "<environment>.<process>"): the
    hosts routed to it, its health check, its instances."""

    name: str  # environment name; HAProxy backend is f"env-{name}"
    hosts: tuple[str, ...]  # lower-case host names routed here
    check: HealthCheck
    servers: tuple[Server, ...]
    sample_ratio: int = 1  # log one request in N (changed at run time, see `sample_var`)
    static: StaticFiles | None = None  # None or no mappings: every request goes to the app
    max_body_bytes: int = 0  # 413 for a larger Content-Length; 0: no limit
    gzip_types: tuple[str, ...] = ()  # content types HAProxy compresses; (): none
    http: bool = True  # answers on the HTTP listener (aws:elbv2:listener:default)
    https: bool = False  # answers on the HTTPS listener (aws:elbv2:listener:443)
    redirect_https: bool = False  # HTTP requests get a 301 to the same URL over HTTPS
    min_tls: str = "TLSv1.2"  # its SSLPolicy's oldest TLS version, whatever the SNI asked
    rules: tuple[RoutingRule, ...] = ()  # an environment's listener rules, by priority
    check_hostname: str = ""  # a process's checks send its environment's first host

    def __post_init__(self) -> None:
        _check_name("Environment name", self.environment)
        self._check_process()
        if self.min_tls not in TLS_VERSIONS:
            raise InvalidInput(f"TLS version {self.min_tls!r} is not one of {TLS_VERSIONS}.")
        if self.redirect_https and not self.https:
            raise InvalidInput(
                f"Environment {self.name!r} redirects HTTP to HTTPS but has no HTTPS listener."
            )
        if isinstance(self.max_body_bytes, bool) or self.max_body_bytes < 0:
            raise InvalidInput(f"Request body limit {self.max_body_bytes!r} is not valid.")
        for kind in self.gzip_types:
            if not _CONTENT_TYPE.fullmatch(kind):
                raise InvalidInput(f"Content type {kind!r} is not valid for compression.")
        for host in self.hosts:
            if not _HOST.fullmatch(host):
                raise InvalidInput(
                    f"Host {host!r} of environment {self.name!r} is not a lower-case host name."
                )
        if len(set(self.hosts)) != len(self.hosts):
            raise InvalidInput(f"Environment {self.name!r} lists a host twice.")
        names = [s.name for s in self.servers]
        if len(set(names)) != len(names):
            raise InvalidInput(f"Environment {self.name!r} lists a server name twice.")
        if isinstance(self.sample_ratio, bool) or not 1 <= self.sample_ratio <= MAX_SAMPLE_RATIO:
            raise InvalidInput(
                f"Sampling ratio {self.sample_ratio!r} is not valid: use 1 to {MAX_SAMPLE_RATIO}."
            )

    def _check_process(self) -> None:
        if not self.process:
            return
        if not _PROCESS.fullmatch(self.process):
            raise InvalidInput(f"Process name {self.process!r} is not valid.")
        if self.hosts or self.static is not None or self.rules:
            raise InvalidInput(
                f"The process backend {self.name!r} is reached by rules only: no hosts, "
                "static files or rules of its own."
            )

    @property
    def environment(self) -> str:
        return self.name.partition(PROCESS_SEPARATOR)[0]

    @property
    def process(self) -> str:
        """ "" for the environment's default process."""
        return self.name.partition(PROCESS_SEPARATOR)[2]

    @property
    def check_host(self) -> str:
        """The ``Host`` header health checks send: the first routed host, as a browser would.

        Apps that validate ``Host`` (Django's ALLOWED_HOSTS) accept it because it is their own
        name. With no host yet, ``localhost``.
        """
        if self.check_hostname:
            return self.check_hostname
        return self.hosts[0] if self.hosts else "localhost"


@dataclass(frozen=True)
class LoadBalancerSpec:
    """The whole desired load balancer: one listener and its environments."""

    bind_host: str  # "127.0.0.1" or "0.0.0.0"
    port: int
    backends: tuple[Backend, ...]
    log_port: int = 0  # the server's UDP port on 127.0.0.1 for request lines; 0: no log
    log_token: str = ""  # the secret every request line starts with ("": none)
    https_port: int = 0  # the HTTPS listener's port; 0: no HTTPS listener
    certificates: tuple[Certificate, ...] = ()  # offered by SNI on the HTTPS listener
    # How long a connection to an instance may take before it is retried on another one.
    # Instances on other hosts (a cluster) get less than the 5 s default: a dead node's
    # addresses answer nothing, and a request there is retried sooner (docs/swarm.md).
    connect_timeout_ms: int = 5000

    def __post_init__(self) -> None:
        _check_ip("Listener address", self.bind_host)
        _check_connect_timeout(self.connect_timeout_ms)
        _check_port("Listener port", self.port)
        if self.https_port:
            _check_port("HTTPS listener port", self.https_port)
            if self.https_port == self.port:
                raise InvalidInput(
                    f"The HTTP and HTTPS listeners cannot share port {self.port}: "
                    "give the server another --https-port."
                )
        cert_names = [c.name for c in self.certificates]
        if len(set(cert_names)) != len(cert_names):
            raise InvalidInput("Two certificates have the same name.")
        if self.log_port:
            _check_port("Request log port", self.log_port)
        if self.log_token and not re.fullmatch(r"[A-Za-z0-9]{16,128}", self.log_token):
            raise InvalidInput("The request log token must be 16 to 128 letters and digits.")
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise InvalidInput("Two environments have the same name.")
        for backend in self.backends:
            for rule in backend.rules:
                if (
                    rule.target not in names
                    or rule.target.partition(PROCESS_SEPARATOR)[0] != backend.name
                ):
                    raise InvalidInput(
                        f"Listener rule {rule.name!r} of {backend.name!r} sends requests to "
                        f"{rule.target!r}, which is not one of its processes."
                    )
        seen: dict[str, str] = {}
        for backend in self.backends:
            for host in backend.hosts:
                if host in seen:
                    raise InvalidInput(
                        f"Host {host!r} is routed to both {seen[host]!r} and {backend.name!r}."
                    )
                seen[host] = backend.name

    @property
    def bind_endpoint(self) -> str:
        return _endpoint(self.bind_host, self.port)

    @property
    def https_endpoint(self) -> str:
        return _endpoint(self.bind_host, self.https_port)


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class HAProxyPaths:
    """Where one HAProxy instance keeps its files: all under one directory."""

    directory: Path
    cfg: Path
    hosts_map: Path
    admin_socket: Path
    master_socket: Path
    pid_file: Path
    static_socket: Path  # where the static file server listens (unix socket, 0600)
    static_routes: Path  # its routes: environment -> mappings and app folders (JSON)
    static_pid: Path
    crt_list: Path  # the HTTPS listener's certificates, one line each
    default_cert: Path  # offered when no certificate matches the client's SNI

    @classmethod
    def under(cls, directory: Path) -> HAProxyPaths:
        directory = Path(directory).absolute()
        if not _SAFE_PATH.fullmatch(str(directory)):
            raise InvalidInput(
                f"HAProxy directory {str(directory)!r} has characters HAProxy cannot take "
                "unquoted (spaces, commas, quotes...): choose a plainer path."
            )
        # A unix socket path is limited to 107 bytes (sun_path).
        if len(str(directory / "master.sock")) > 107:
            raise InvalidInput(
                f"HAProxy directory {str(directory)!r} is too long for a unix socket path."
            )
        return cls(
            directory=directory,
            cfg=directory / "haproxy.cfg",
            hosts_map=directory / "hosts.map",
            admin_socket=directory / "admin.sock",
            master_socket=directory / "master.sock",
            pid_file=directory / "haproxy.pid",
            static_socket=directory / "static.sock",
            static_routes=directory / "static-routes.json",
            static_pid=directory / "static.pid",
            crt_list=directory / "certificates.list",
            default_cert=directory / "default-certificate.pem",
        )


def backend_id(env_name: str) -> str:
    """The HAProxy backend name of an environment; the prefix keeps request-chosen names out."""
    return f"{BACKEND_PREFIX}{env_name}"


def _milliseconds(milliseconds: int) -> str:
    """HAProxy's words for a duration: ``5s``, or ``1500ms``."""
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def _check_connect_timeout(milliseconds: int) -> None:
    if isinstance(milliseconds, bool) or not 0 < milliseconds <= 60_000:
        raise InvalidInput(f"Connect timeout {milliseconds!r} ms is not valid (1 to 60000).")


def structural_key(spec: LoadBalancerSpec) -> str:
    """A hash of everything that needs a reload to change.

    Servers, weights and hosts are left out: the runtime API changes them in place. The first
    host is the exception, because health checks send it as their ``Host`` header and that
    header is part of the backend's config.
    """
    shape = {
        "template": TEMPLATE_VERSION,
        "listener": [spec.bind_host, spec.port, spec.https_port],
        # a line's options change only with a policy: adding, removing and renewing
        # certificates go through the runtime API
        "tls": sorted([c.path, c.min_tls] for c in spec.certificates if c.min_tls != MIN_TLS),
        "log_port": spec.log_port,
        # only when not the default: a server that never set it keeps its key
        **({"connect_ms": spec.connect_timeout_ms} if spec.connect_timeout_ms != 5000 else {}),
        "log_token": hashlib.sha256(spec.log_token.encode()).hexdigest(),
        "backends": sorted([b.name, b.check_host, _check_shape(b.check)] for b in spec.backends),
        "rules": sorted(
            [b.name, [[r.target, r.host_regex, r.path_regex, r.http, r.https] for r in b.rules]]
            for b in spec.backends
            if b.rules
        ),
        "proxy": sorted(
            [b.name, _static_paths(b), b.max_body_bytes, list(b.gzip_types), _listeners(b)]
            for b in spec.backends
            if _static_paths(b)
            or b.max_body_bytes
            or b.gzip_types
            or _listeners(b) != [1, 0, 0, MIN_TLS]
        ),
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _listeners(backend: Backend) -> list[object]:
    return [int(backend.http), int(backend.https), int(backend.redirect_https), backend.min_tls]


def _check_shape(check: HealthCheck) -> list[object]:
    return [
        check.path,
        check.interval_s,
        check.timeout_s,
        check.healthy_threshold,
        check.unhealthy_threshold,
        parse_matcher(check.matcher),
    ]


#: Idle connections to instances are kept and reused. Servers added at run time (``add
#: server``) do not get this by default in HAProxy 2.6: measured here, they cost 70-95 µs of
#: HAProxy CPU per request instead of 27-33 µs with these two settings (or a static server).
SERVER_POOL = "pool-max-conn -1 pool-purge-delay 5s"


def server_line(server: Server, check: HealthCheck) -> str:
    """Everything after ``server`` in the config, also the arguments of ``add server``."""
    return (
        f"{server.name} {server.endpoint} {check.server_params()} weight {server.weight} "
        f"{SERVER_POOL}"
    )


def render_hosts_map(spec: LoadBalancerSpec) -> str:
    """The map file: one ``host backend`` line per routed host, sorted for stable diffs."""
    lines = sorted(
        f"{host} {backend_id(backend.name)}" for backend in spec.backends for host in backend.hosts
    )
    return "".join(f"{line}\n" for line in lines)


def render_config(spec: LoadBalancerSpec, paths: HAProxyPaths) -> str:
    """The full ``haproxy.cfg``.

    Choices worth knowing (measured on 2.6.12):

    - ``maxconn`` is not set: HAProxy derives it from the fd limit. A fixed value above what
      ``ulimit -n`` allows is a fatal start-up error ("Cannot raise FD limit").
    - ``retry-on conn-failure empty-response``: a refused or reset connection is retried on
      another server (with ``option redispatch``), so a dead instance costs no failed request.
      ``response-timeout`` is left out: it would replay a request that is merely slow, up to
      ``retries`` times ``timeout server``. Requests other than GET/HEAD/OPTIONS only get
      connection-failure retries (``disable-l7-retry``): they were never sent, so it is safe.
    - ``option idle-close-on-response`` keeps idle keep-alive connections working through a
      reload (without it, clients saw read errors).
    - The ``description`` carries the structural key, so the adapter asks the *running*
      worker (``show info``) what config it serves instead of trusting a file.
    - Request lines are sampled per backend (`_sampling_lines`): one request in N, N in a
      process-wide variable changed at run time; the line carries N as its weight.
      Requests for unknown hosts are not logged: no environment's health needs them.
    - The HTTPS listener (`_https_bind`) shares the frontend, so both listeners route alike;
      each backend then answers only on the listeners its environment has (`_listener_lines`).
    """
    key = structural_key(spec)
    lines = [
        "# Rendered by Beanpole: edits here are overwritten at the next change.",
        "global",
        "    master-worker",
        f"    description beanpole-{key}",
        f"    stats socket {paths.admin_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "    hard-stop-after 30s",
        *(
            f"    set-var {sample_var(b.name)} int({b.sample_ratio})"
            for b in sorted(spec.backends, key=lambda b: b.name)
            if not b.process
        ),
        # Per-request lines for health and access logs, as datagrams: when nobody listens
        # (the control plane is down), the kernel drops them and HAProxy serves on.
        *(
            [f"    log 127.0.0.1:{spec.log_port} len 2048 format raw local0 info"]
            if spec.log_port
            else []
        ),
        "",
        "defaults",
        "    mode http",
        f"    timeout connect {_milliseconds(spec.connect_timeout_ms)}",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout queue 30s",
        "    timeout http-keep-alive 60s",
        "    timeout http-request 15s",
        "    option redispatch 1",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        "    option idle-close-on-response",
        "    option forwardfor",
        *(
            [
                "    log global",
                "    option dontlognull",
                f'    log-format "{spec.log_token + " " if spec.log_token else ""}{LOG_FORMAT}"',
            ]
            if spec.log_port
            else []
        ),
        "",
        "frontend fe-http",
        f"    bind {spec.bind_endpoint}",
        *_https_bind(spec, paths),
        "    http-request disable-l7-retry unless METH_GET || METH_OPTIONS",
        # what EB's load balancer tells the app: the scheme and port the client used
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "    http-request set-header X-Forwarded-Port %[dst_port]",
        *_routing_lines(spec, paths),
        f"    use_backend %[req.hdr(host),lower,field(1,:),map_str({paths.hosts_map})]",
        f"    default_backend {NO_ROUTE_BACKEND}",
        "",
        f"backend {NO_ROUTE_BACKEND}",
        "    http-request set-log-level silent",
        f'    http-request return status 404 content-type text/plain string "{NO_ROUTE_BODY}"',
    ]
    for backend in sorted(spec.backends, key=lambda b: b.name):
        check = backend.check
        lines += [
            "",
            f"backend {backend_id(backend.name)}",
            "    balance roundrobin",
            "    option httpchk",
            f"    http-check send meth GET uri {check.path} ver HTTP/1.1 "
            f"hdr Host {backend.check_host}",
            f"    {check.expect_line()}",
            f"    timeout check {check.timeout_s}s",
            *_listener_lines(backend, spec),
            *_sampling_lines(backend),
            *_body_limit_lines(backend),
            *_compression_lines(backend),
        ]
        lines += [f"    server {server_line(s, check)}" for s in backend.servers]
    lines += _static_backend_lines(spec, paths)
    return "\n".join(lines) + "\n"


def _https_bind(spec: LoadBalancerSpec, paths: HAProxyPaths) -> list[str]:
    """The HTTPS listener: a default certificate, then the stored ones from the crt-list
    (changed at run time with ``add ssl crt-list``, ``set ssl cert``), HTTP/2 by ALPN."""
    if not spec.https_port:
        return []
    return [
        f"    bind {spec.https_endpoint} ssl crt {paths.default_cert} crt-list {paths.crt_list} "
        f"alpn h2,http/1.1 ssl-min-ver {MIN_TLS}"
    ]


def render_crt_list(spec: LoadBalancerSpec) -> str:
    lines = sorted(c.crt_list_line for c in spec.certificates)
    return "".join(f"{line}\n" for line in lines)


def _listener_lines(backend: Backend, spec: LoadBalancerSpec) -> list[str]:
    """A request on a listener the environment does not have is answered as an unknown
    host's (404, not logged); with ``redirect_https``, HTTP requests get a 301 to HTTPS."""
    lines: list[str] = []
    not_found = f'http-request return status 404 content-type text/plain string "{NO_ROUTE_BODY}"'
    if backend.redirect_https and spec.https_port:
        port = "" if spec.https_port == 443 else f":{spec.https_port}"
        lines += [
            "    http-request set-log-level silent if !{ ssl_fc }",
            "    http-request redirect location "
            f"https://%[req.hdr(host),field(1,:)]{port}%[capture.req.uri] code 301 "
            "if !{ ssl_fc }",
        ]
    elif not backend.http:
        lines += [
            "    http-request set-log-level silent if !{ ssl_fc }",
            f"    {not_found} if !{{ ssl_fc }}",
        ]
    if spec.https_port and not backend.https:
        lines += [
            "    http-request set-log-level silent if { ssl_fc }",
            f"    {not_found} if {{ ssl_fc }}",
        ]
    if spec.https_port and backend.https and backend.min_tls != MIN_TLS:
        # The certificate's floor holds for handshakes that asked for its names; one that
        # asked for another name (or none) and then sends this Host is refused here.
        lines.append(
            f"    http-request deny deny_status 421 if {{ ssl_fc }} "
            f"!{{ ssl_fc_protocol {backend.min_tls} }}"
        )
    return lines


def sample_var(env_name: str) -> str:
    """The process-wide variable holding an environment's sampling ratio (1:N).

    Environment names have hyphens, variable names may not; names have no underscore, so
    the mapping cannot make two environments share a variable.
    """
    _check_name("Environment name", env_name)
    return f"proc.bp_w_{env_name.replace('-', '_')}"


def _sampling_lines(backend: Backend) -> list[str]:
    """Log one request in N for this backend, and mark the line with N.

    N is a process-wide variable (`sample_var`), initialised in ``global`` from the spec and
    changed at run time with ``set var`` (no reload). The request is chosen at random when it
    reaches the backend, so every outcome, HAProxy's own 503s included, is sampled alike.
    Measured with callgrind (instructions per request, one server, keep-alive): HAProxy
    alone 28,146; with these two rules and the log line 29,399 (+4.5 %); the earlier map
    lookup with a variable set for every request cost 30,270; logging every request 32,721.
    """
    ratio = sample_var(backend.environment)  # a process's lines count as its environment's
    return [
        f"    http-request set-var({WEIGHT_VAR}) var({ratio}) "
        f"if {{ rand,mod({ratio}) -m int eq 0 }}",
        f"    http-request set-log-level silent unless {{ var({WEIGHT_VAR}) -m found }}",
    ]


def _routing_lines(spec: LoadBalancerSpec, paths: HAProxyPaths) -> list[str]:
    """Listener rules, then static files, then the default process (after this, the host
    map's ``use_backend``). Every ``http-request`` line comes before every ``use_backend``
    line, which HAProxy processes last whatever their order."""
    rules = _rule_lines(spec, paths)
    static = _static_routing_lines(spec, paths)
    return [
        *(line for line in (*rules, *static) if "use_backend" not in line),
        *(line for line in (*rules, *static) if "use_backend" in line),
    ]


RULE_VAR = "txn.bp_rule"  # the backend a listener rule chose, or `RULE_DEFAULT`
RULE_DEFAULT = "default"  # a rule to the default process (no backend is named so)


def _rule_lines(spec: LoadBalancerSpec, paths: HAProxyPaths) -> list[str]:
    """Listener rules, as on EB's load balancer: a rule's process is reached directly, and
    a rule to the default process goes where a request no rule matches goes (static files
    first). The first rule to match, by priority, sets `RULE_VAR`; the host map is looked
    up once per request, only when some environment has rules."""
    with_rules = [b for b in sorted(spec.backends, key=lambda b: b.name) if b.rules]
    if not with_rules:
        return []
    var = "txn.bp_be"
    lines = [
        f"    http-request set-var({var}) req.hdr(host),lower,field(1,:),map_str({paths.hosts_map})"
    ]
    for b in with_rules:
        for rule in b.rules:
            chosen = RULE_DEFAULT if rule.target == b.name else backend_id(rule.target)
            lines.append(
                f"    http-request set-var({RULE_VAR}) str({chosen}) if "
                f"{rule.condition(b.name, var)} !{{ var({RULE_VAR}) -m found }}"
            )
    lines.append(
        f"    use_backend %[var({RULE_VAR})] if {{ var({RULE_VAR}) -m found }} "
        f"!{{ var({RULE_VAR}) -m str {RULE_DEFAULT} }}"
    )
    return lines


# -- static files and the proxy settings from .platform/nginx ------------------------------


def static_backend_id(env_name: str) -> str:
    return f"{STATIC_PREFIX}{env_name}"


def _static_paths(backend: Backend) -> list[str]:
    if backend.static is None or not backend.static.roots:
        return []
    return [path for path, _ in backend.static.mappings]


def _static_routing_lines(spec: LoadBalancerSpec, paths: HAProxyPaths) -> list[str]:
    """Requests under a mapped path of an environment go to its static backend.

    The header naming the environment is removed from every client request, so only HAProxy
    sets it. A path matches at a segment boundary (``/static`` and ``/static/...``, not
    ``/staticky``); the environment comes from the same host map as every request.
    """
    routed = [b for b in sorted(spec.backends, key=lambda b: b.name) if _static_paths(b)]
    if not routed:
        return []
    var = "txn.bp_env"
    every = sorted({p for b in routed for p in _static_paths(b)})
    beg = " ".join(f"{p}/" for p in every)
    lines = [
        f"    http-request del-header {STATIC_HEADER}",
        f"    http-request set-var({var}) req.hdr(host),lower,field(1,:),"
        f"map_str({paths.hosts_map}) if {{ path {' '.join(every)} }} || {{ path_beg {beg} }}",
    ]
    for b in routed:
        mine = _static_paths(b)
        is_env = f"{{ var({var}) -m str {backend_id(b.name)} }}"
        lines.append(
            f"    use_backend {static_backend_id(b.name)} if {is_env} {{ path {' '.join(mine)} }}"
            f" || {is_env} {{ path_beg {' '.join(p + '/' for p in mine)} }}"
        )
    return lines


def _static_backend_lines(spec: LoadBalancerSpec, paths: HAProxyPaths) -> list[str]:
    lines: list[str] = []
    for b in sorted(spec.backends, key=lambda b: b.name):
        if not _static_paths(b):
            continue
        lines += [
            "",
            f"backend {static_backend_id(b.name)}",
            # Files are not the app's traffic: they stay out of its health and access log.
            "    http-request set-log-level silent",
            f"    http-request set-header {STATIC_HEADER} {b.name}",
            *_compression_lines(b),
            f"    server files unix@{paths.static_socket} {SERVER_POOL}",
        ]
    return lines


def _body_limit_lines(backend: Backend) -> list[str]:
    """``client_max_body_size``: a declared body above the limit is refused with 413 before
    the app sees it. A chunked body declares no length and is not limited here."""
    if not backend.max_body_bytes:
        return []
    return [
        "    http-request deny deny_status 413 "
        f"if {{ req.hdr_val(content-length) gt {backend.max_body_bytes} }}"
    ]


def _compression_lines(backend: Backend) -> list[str]:
    if not backend.gzip_types:
        return []
    return ["    compression algo gzip", f"    compression type {' '.join(backend.gzip_types)}"]


def render_static_routes(spec: LoadBalancerSpec) -> str:
    """The static file server's routes: per environment, its mappings and app folders.

    Rewritten at every change; the server reads it again when it changes, so a deployment's
    switch to the new version's files needs no HAProxy reload.
    """
    routes = {
        b.name: {"mappings": [list(m) for m in b.static.mappings], "roots": list(b.static.roots)}
        for b in spec.backends
        if b.static is not None and _static_paths(b)
    }
    return json.dumps({"environments": routes}, indent=1, sort_keys=True) + "\n"
