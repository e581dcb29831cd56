"""Where Beanpole keeps its state (``BEANPOLE_HOME``) and the server's persisted configuration."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

# root's is a system daemon's folder: applications run as an unprivileged user, which must be
# able to traverse to their staged folders, and /root is closed to others.
DEFAULT_HOME = (
    Path("/var/lib/beanpole")
    if os.geteuid() == 0
    else Path.home() / ".local" / "share" / "beanpole"
)
# Folders the application user must traverse (its staged app, its instance folder); the rest
# of the home (state, token, bundles, logs, sockets) is the owner's alone.
_TRAVERSABLE = ("builds", "instances")
_PRIVATE = ("bundles", "logs", "haproxy", "supervisor", "cache", "certs", "volumes", "docker")


def home_dir() -> Path:
    return Path(os.environ.get("BEANPOLE_HOME") or DEFAULT_HOME).expanduser().resolve()


@dataclass(frozen=True)
class ServerConfig:
    """Chosen at `beanpole server start`, remembered for the next start."""

    api_host: str = "127.0.0.1"
    api_port: int = 4180
    lb_host: str = "0.0.0.0"
    lb_port: int = 8080
    https_port: int = 8443  # the load balancer's HTTPS listener; 0: none
    domain: str = "localhost"
    port_range: tuple[int, int] = (20000, 29999)
    log_port: int = 0  # UDP on 127.0.0.1 for HAProxy's request lines; chosen at first start
    eb_port: int = 4181  # Elastic Beanstalk's query API and the S3 subset, on api_host
    region: str = "us-east-1"  # the region EB's API names (CNAMEs, ARNs)
    runtime: str = "supervisord"  # what runs instances: supervisord, docker or swarm
    # The swarm runtime (docs/swarm.md): the manager's API ("": the local engine), the
    # manager's address from here when this host is not the manager ("": it is), and the
    # registry Beanpole runs for the nodes: the address they reach this host at ("": the
    # manager's own address in the swarm, or the local one facing the manager) and its port.
    docker_host: str = ""
    manager_address: str = ""
    registry_address: str = ""
    registry_port: int = 5000
    registry: str = ""  # HOST:PORT of a registry the operator runs ("": Beanpole runs one)

    @property
    def eb_domain(self) -> str:
        """EB's form of an environment's CNAME is ``<prefix>.<eb_domain>``."""
        return f"{self.region}.elasticbeanstalk.com"

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def default(cls) -> Home:
        return cls(home_dir())

    @property
    def db(self) -> Path:
        return self.root / "state.db"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    @property
    def server_file(self) -> Path:
        """Written by a running server: its pid and URL, for the CLI to find it."""
        return self.root / "server.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def access_logs(self) -> Path:
        """Each environment's access log, written from the request stream."""
        return self.logs / "access"

    @property
    def secret_key_file(self) -> Path:
        """The key secret environment properties are encrypted with, apart from the
        database (`adapters.secrets`); owner only."""
        return self.root / "secret.key"

    def certificate_file(self, name: str) -> Path:
        """A stored certificate's PEM (leaf, chain, key) that HAProxy loads; owner only."""
        return self.root / "certs" / f"{name}.pem"

    def instance_dir(self, instance_id: str) -> Path:
        return self.root / "instances" / instance_id

    def prepare(self) -> None:
        """Make the home's folders: traversable (0711, not listable) where applications must
        reach, private (0700) elsewhere; the state database is the owner's alone (0600)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o711)
        for sub in _TRAVERSABLE:
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o711)
        for sub in _PRIVATE:
            (self.root / sub).mkdir(exist_ok=True, mode=0o700)
            (self.root / sub).chmod(0o700)
        # SQLite gives its journal and WAL files the database file's mode.
        fd = os.open(self.db, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
        for private in (self.db, self.config_file, self.server_file):
            if private.exists():
                private.chmod(0o600)

    def token(self) -> str:
        """The API's bearer token, made at first start, readable by the owner only."""
        return self._secret(self.token_file, secrets.token_urlsafe(32))

    @property
    def request_token_file(self) -> Path:
        return self.root / "request-token"

    def request_token(self) -> str:
        """The secret HAProxy starts every request line with (`LoadBalancerSpec.log_token`):
        made at first start and kept, since HAProxy outlives the server; owner only."""
        return self._secret(self.request_token_file, secrets.token_hex(16))

    def _secret(self, path: Path, new: str) -> str:
        """The secret in ``path``, made (``new``) if it is not there. Written whole to a
        file of its own, then linked into place: a reader never sees it half-written, and
        of two processes making it at once, the first link wins and both use that one."""
        if path.exists():
            return path.read_text().strip()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
        finally:
            tmp.unlink()
        return new

    def load_config(self) -> ServerConfig:
        if not self.config_file.exists():
            return ServerConfig()
        data = json.loads(self.config_file.read_text())
        data["port_range"] = tuple(data.get("port_range", (20000, 29999)))
        known = ServerConfig.__dataclass_fields__
        return ServerConfig(**{k: v for k, v in data.items() if k in known})

    def save_config(self, config: ServerConfig) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.config_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(asdict(config), indent=2) + "\n")
        tmp.replace(self.config_file)
