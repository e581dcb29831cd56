"""What every EB action reaches: the server's services, the resource metadata EB's records
carry, the region and account names ARNs and CNAMEs are made of, and the files
`RetrieveEnvironmentInfo` hands out."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from beanpole.adapters.store.meta import ResourceMeta
from beanpole.server.context import Context
from beanpole.services.buckets import Buckets
from beanpole.services.keys import AccessKeys

ACCOUNT = "000000000000"  # one account per server: ARNs need one, nothing checks it
INFO_TTL_S = 3600.0  # how long a log link of RetrieveEnvironmentInfo works (EB: 15 min)


@dataclass(frozen=True)
class InfoLink:
    info_type: str  # tail or bundle
    url: str
    at: float
    path: Path


@dataclass
class EB:
    ctx: Context
    keys: AccessKeys
    buckets: Buckets
    meta: ResourceMeta
    info_root: Path
    # environment id -> info type -> instance id -> the link its last request made
    info: dict[str, dict[str, dict[str, InfoLink]]] = field(default_factory=dict)
    _tokens: dict[str, tuple[Path, float]] = field(default_factory=dict)

    @property
    def region(self) -> str:
        return self.ctx.config.region

    @property
    def endpoint(self) -> str:
        return f"http://{self.ctx.config.api_host}:{self.ctx.config.eb_port}"

    def arn(self, resource: str) -> str:
        return f"arn:aws:elasticbeanstalk:{self.region}:{ACCOUNT}:{resource}"

    def eb_cname(self, prefix: str) -> str:
        """EB's form, which Terraform parses the CNAME prefix back from (and HAProxy routes)."""
        return f"{prefix}.{self.ctx.config.eb_domain}"

    def publish(self, path: Path, info_type: str) -> str:
        """A URL that serves ``path`` without a signature (the eb CLI fetches it plainly)."""
        now = time.time()
        for token, (old, at) in list(self._tokens.items()):
            if now - at > INFO_TTL_S:
                old.unlink(missing_ok=True)
                del self._tokens[token]
        token = secrets.token_urlsafe(24) + path.suffix
        self._tokens[token] = (path, now)
        return f"{self.endpoint}/_beanpole/info/{token}"

    def info_file(self, token: str) -> Path | None:
        found = self._tokens.get(token)
        if found is None or time.time() - found[1] > INFO_TTL_S or not found[0].exists():
            return None
        return found[0]
