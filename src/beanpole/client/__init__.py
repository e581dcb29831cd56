"""The HTTP client the CLI (and scripts) use to talk to a Beanpole server.

Answers are parsed into the API contract's views (`beanpole.api.views`), the same classes
the server declares as its response models, and errors into the core's error tree by their
semantic code. It imports no server code.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from beanpole.api import inputs
from beanpole.api.access import AuditView, TokenCreated, TokenRevoked, TokenView
from beanpole.api.keys import AccessKeyCreated, AccessKeyRevoked, AccessKeyView
from beanpole.api.nodes import NodeDrained, NodesView, NodeView
from beanpole.api.users import UserRemoved, UserView
from beanpole.api.views import (
    AbortRequested,
    ApplicationView,
    AutoscalingView,
    CertificatesView,
    CertificateView,
    Checked,
    DomainsView,
    EnvironmentCreated,
    EnvironmentSummary,
    EnvironmentView,
    EventView,
    HealthView,
    LifecycleResult,
    LogPage,
    LogTail,
    MetricsView,
    OperationStarted,
    OperationView,
    Ping,
    ReleaseView,
    RollbackStarted,
    SavedConfigurationDeleted,
    SavedConfigurationView,
    ScaleStarted,
    SettingsView,
    SwapResult,
    VersionView,
)
from beanpole.core.errors import (
    BeanpoleError,
    BuildError,
    ComponentError,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthorized,
    error_for_code,
)
from beanpole.home import Home

T = TypeVar("T")

#: A node's drain answers once every instance has moved: starts, health checks and drains
#: (each bounded by the environment's own Timeout and DeregistrationDelay).
DRAIN_TIMEOUT_S = 1800.0

# For an answer without the error shape (a proxy in between, a server of another kind).
_BY_STATUS: dict[int, type[BeanpoleError]] = {
    400: InvalidInput,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: BuildError,
    503: ComponentError,
}


class Client:
    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url + "/api/v1",
            timeout=timeout,
            trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
        )

    @classmethod
    def discover(cls, home: Home | None = None) -> Client:
        """BEANPOLE_URL + BEANPOLE_TOKEN for a remote server, else the local one's files
        (with BEANPOLE_TOKEN, when set, in place of the server's own token: a role token
        made with `beanpole tokens create`)."""
        url = os.environ.get("BEANPOLE_URL")
        if url:
            token = os.environ.get("BEANPOLE_TOKEN", "")
            if not token:
                raise Unauthorized(
                    "BEANPOLE_URL is set but BEANPOLE_TOKEN is not. Set it to "
                    "the token in the server's BEANPOLE_HOME/token file."
                )
            return cls(url, token)
        home = home or Home.default()
        if not home.server_file.exists():
            raise ComponentError(
                f"No Beanpole server is running for BEANPOLE_HOME={home.root}. "
                "Start one with: beanpole server start"
            )
        info = json.loads(home.server_file.read_text())
        token = os.environ.get("BEANPOLE_TOKEN", "").strip()
        return cls(info["url"], token or home.token_file.read_text().strip())

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._transport_errors():
            response = self._http.request(method, path, **kwargs)
        _raise_for_error(response)
        return response.json() if response.content else None

    def download(self, path: str, dest: Path, **kwargs: Any) -> int:
        """GET ``path`` into the file ``dest`` (replaced only once complete); its size."""
        partial = dest.with_name(dest.name + ".part")
        try:
            with self._transport_errors(), self._http.stream("GET", path, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise_for_error(response)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            partial.replace(dest)
        finally:
            partial.unlink(missing_ok=True)
        return dest.stat().st_size

    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError:
            raise ComponentError(
                f"Cannot reach the Beanpole server at {self.url}. Is it running? "
                "Start it with: beanpole server start"
            ) from None
        except httpx.TimeoutException:
            raise ComponentError(
                f"The Beanpole server at {self.url} did not answer in time."
            ) from None

    def call(self, model: type[T], method: str, path: str, **kwargs: Any) -> T:
        """``request``, its answer parsed into ``model`` (a view, or a list of views)."""
        data = self.request(method, path, **kwargs)
        try:
            return TypeAdapter(model).validate_python(data)
        except ValidationError as exc:
            raise ComponentError(
                f"The server at {self.url} answered {method} {path} in a shape this client "
                f"does not know ({exc.error_count()} problem(s)). Use a client of the "
                "server's version."
            ) from None

    # applications and versions --------------------------------------------------------

    def ping(self) -> Ping:
        return self.call(Ping, "GET", "/ping")

    def applications(self) -> list[ApplicationView]:
        return self.call(list[ApplicationView], "GET", "/applications")

    def versions(self, application: str) -> list[VersionView]:
        return self.call(list[VersionView], "GET", f"/applications/{application}/versions")

    def upload(
        self, application: str, zip_path: Path, label: str | None, description: str = ""
    ) -> VersionView:
        params = {"description": description}
        if label:
            params["label"] = label

        def chunks() -> Iterator[bytes]:
            with zip_path.open("rb") as f:
                while block := f.read(1 << 20):
                    yield block

        return self.call(
            VersionView,
            "POST",
            f"/applications/{application}/versions",
            params=params,
            content=chunks(),
            headers={"Content-Type": "application/zip"},
            timeout=600,
        )

    def set_lifecycle(self, application: str, max_versions: int) -> LifecycleResult:
        body = inputs.Lifecycle(max_versions=max_versions)
        return self.call(
            LifecycleResult, "PUT", f"/applications/{application}/lifecycle", json=_json(body)
        )

    # saved configurations ---------------------------------------------------------------

    def save_configuration(
        self, application: str, spec: inputs.SaveConfiguration
    ) -> SavedConfigurationView:
        return self.call(
            SavedConfigurationView,
            "POST",
            f"/applications/{_segment(application)}/configurations",
            json=_json(spec),
        )

    def saved_configurations(self, application: str | None = None) -> list[SavedConfigurationView]:
        params = {"application": application} if application is not None else {}
        return self.call(list[SavedConfigurationView], "GET", "/configurations", params=params)

    def saved_configuration(self, application: str, name: str) -> SavedConfigurationView:
        return self.call(SavedConfigurationView, "GET", _configuration_path(application, name))

    def delete_saved_configuration(self, application: str, name: str) -> SavedConfigurationDeleted:
        return self.call(
            SavedConfigurationDeleted, "DELETE", _configuration_path(application, name)
        )

    # environments -----------------------------------------------------------------------

    def environments(self) -> list[EnvironmentSummary]:
        return self.call(list[EnvironmentSummary], "GET", "/environments")

    def environment(self, name: str) -> EnvironmentView:
        return self.call(EnvironmentView, "GET", f"/environments/{name}")

    def check_create(self, spec: inputs.CreateEnvironment) -> Checked:
        return self.call(
            Checked, "POST", "/environments", params={"dry_run": "true"}, json=_json(spec)
        )

    def create(self, spec: inputs.CreateEnvironment) -> EnvironmentCreated:
        return self.call(EnvironmentCreated, "POST", "/environments", json=_json(spec))

    def clone(self, name: str, spec: inputs.CloneEnvironment) -> EnvironmentCreated:
        return self.call(
            EnvironmentCreated, "POST", f"/environments/{name}/clone", json=_json(spec)
        )

    def check_deploy(self, name: str) -> Checked:
        """Whether ``name`` can take a deployment now (before uploading a version for it)."""
        return self.call(
            Checked,
            "POST",
            f"/environments/{name}/deploy",
            params={"dry_run": "true"},
            json=_json(inputs.Deploy()),
        )

    def deploy(self, name: str, spec: inputs.Deploy) -> OperationStarted:
        return self.call(OperationStarted, "POST", f"/environments/{name}/deploy", json=_json(spec))

    def abort(self, name: str) -> AbortRequested:
        return self.call(AbortRequested, "POST", f"/environments/{name}/abort")

    def rollback(self, name: str) -> RollbackStarted:
        return self.call(RollbackStarted, "POST", f"/environments/{name}/rollback")

    def scale(
        self,
        name: str,
        count: int | None = None,
        *,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> ScaleStarted:
        body = inputs.Scale(count=count, min_size=min_size, max_size=max_size)
        return self.call(ScaleStarted, "POST", f"/environments/{name}/scale", json=_json(body))

    def autoscaling(self, name: str) -> AutoscalingView:
        return self.call(AutoscalingView, "GET", f"/environments/{name}/autoscaling")

    def configure(self, name: str, change: inputs.SettingsChange) -> OperationStarted:
        return self.call(
            OperationStarted, "PATCH", f"/environments/{name}/settings", json=_json(change)
        )

    def swap(self, name: str, other: str) -> SwapResult:
        body = inputs.Swap(other=other)
        return self.call(SwapResult, "POST", f"/environments/{name}/swap", json=_json(body))

    def domains(self, name: str) -> DomainsView:
        return self.call(DomainsView, "GET", f"/environments/{name}/domains")

    def add_domain(self, name: str, domain: str) -> DomainsView:
        body = inputs.AddDomain(domain=domain)
        return self.call(DomainsView, "POST", f"/environments/{name}/domains", json=_json(body))

    def remove_domain(self, name: str, domain: str) -> DomainsView:
        path = f"/environments/{name}/domains/{quote(domain, safe='')}"
        return self.call(DomainsView, "DELETE", path)

    def certificates(self) -> CertificatesView:
        return self.call(CertificatesView, "GET", "/certificates")

    def add_certificate(
        self, name: str, certificate: str, private_key: str, chain: str = ""
    ) -> CertificateView:
        """Store (or renew) a certificate: the PEM texts travel in the body, over the API's
        own transport, as the token does."""
        body = inputs.AddCertificate(
            name=name, certificate=certificate, private_key=private_key, chain=chain
        )
        return self.call(CertificateView, "POST", "/certificates", json=_json(body))

    def remove_certificate(self, name: str) -> CertificateView:
        return self.call(CertificateView, "DELETE", f"/certificates/{quote(name, safe='')}")

    def terminate(self, name: str) -> OperationStarted:
        return self.call(OperationStarted, "DELETE", f"/environments/{name}")

    def releases(self, name: str) -> list[ReleaseView]:
        return self.call(list[ReleaseView], "GET", f"/environments/{name}/releases")

    def settings(self, name: str) -> SettingsView:
        return self.call(SettingsView, "GET", f"/environments/{name}/settings")

    def events(self, name: str, after: int = 0, limit: int = 100) -> list[EventView]:
        return self.call(
            list[EventView],
            "GET",
            f"/environments/{name}/events",
            params={"after": after, "limit": limit},
        )

    def operation(self, op_id: int) -> OperationView:
        return self.call(OperationView, "GET", f"/operations/{op_id}")

    # health and logs --------------------------------------------------------------------

    def health(self, name: str) -> HealthView:
        return self.call(HealthView, "GET", f"/environments/{name}/health")

    def metrics(self, name: str, **params: Any) -> MetricsView:
        return self.call(MetricsView, "GET", f"/environments/{name}/metrics", params=params)

    def logs(self, name: str, instance: str | None = None, lines: int = 100) -> LogTail:
        params: dict[str, Any] = {"lines": lines} | ({"instance": instance} if instance else {})
        return self.call(LogTail, "GET", f"/environments/{name}/logs", params=params)

    def follow_logs(
        self, name: str, instance: str | None = None, cursor: str | None = None
    ) -> LogPage:
        params = {k: v for k, v in (("instance", instance), ("cursor", cursor)) if v}
        return self.call(LogPage, "GET", f"/environments/{name}/logs/follow", params=params)

    def log_bundle(self, name: str, dest: Path, instance: str | None = None) -> int:
        """Every log of ``name`` as a zip written to ``dest``; its size."""
        params = {"instance": instance} if instance else {}
        return self.download(f"/environments/{name}/logs/bundle", dest, params=params, timeout=600)

    # access keys (the Elastic Beanstalk and S3 faces' credentials) ---------------------

    def create_key(self, description: str = "") -> AccessKeyCreated:
        # Checked by the server, whose refusal the CLI shows as any other error.
        body = {"description": description}
        return self.call(AccessKeyCreated, "POST", "/keys", json=body)

    def keys(self) -> list[AccessKeyView]:
        return self.call(list[AccessKeyView], "GET", "/keys")

    def revoke_key(self, key_id: str) -> AccessKeyRevoked:
        return self.call(AccessKeyRevoked, "DELETE", f"/keys/{_segment(key_id)}")

    def create_token(self, role: str, application: str | None, name: str) -> TokenCreated:
        body = {"role": role, "application": application, "name": name}
        return self.call(TokenCreated, "POST", "/tokens", json=body)

    def tokens(self) -> list[TokenView]:
        return self.call(list[TokenView], "GET", "/tokens")

    def revoke_token(self, token_id: str) -> TokenRevoked:
        return self.call(TokenRevoked, "DELETE", f"/tokens/{_segment(token_id)}")

    def audit(self, application: str | None, limit: int) -> AuditView:
        params: dict[str, str | int] = {"limit": limit}
        if application is not None:
            params["application"] = application
        return self.call(AuditView, "GET", "/audit", params=params)

    def add_user(self, name: str, password: str) -> UserView:
        return self.call(UserView, "POST", "/users", json={"name": name, "password": password})

    def users(self) -> list[UserView]:
        return self.call(list[UserView], "GET", "/users")

    def remove_user(self, name: str) -> UserRemoved:
        return self.call(UserRemoved, "DELETE", f"/users/{_segment(name)}")

    # the swarm's nodes ------------------------------------------------------------------

    def nodes(self) -> NodesView:
        return self.call(NodesView, "GET", "/nodes")

    def drain_node(self, node: str) -> NodeDrained:
        path = f"/nodes/{_segment(node)}/drain"
        return self.call(NodeDrained, "POST", path, timeout=DRAIN_TIMEOUT_S)

    def activate_node(self, node: str) -> NodeView:
        return self.call(NodeView, "POST", f"/nodes/{_segment(node)}/activate")


def _segment(name: str) -> str:
    """A name as one path segment: a saved configuration's may hold any character but '/'
    (spaces, '?', '%', '#'), and '.' or '..' must not be read as a relative path."""
    if name.strip(".") == "":
        return name.replace(".", "%2E")
    return quote(name, safe="")


def _configuration_path(application: str, name: str) -> str:
    return f"/applications/{_segment(application)}/configurations/{_segment(name)}"


def _json(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_unset=True)


def _raise_for_error(response: httpx.Response) -> None:
    """The server's JSON error as the `BeanpoleError` its code names."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}: {response.text[:200]}"
        raise _BY_STATUS.get(response.status_code, BeanpoleError)(message) from None
    raise error_for_code(code, message)
