"""The HTTP client the CLI (and scripts) use to talk to a Beanpole server."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from beanpole.core.errors import (
    BeanpoleError,
    BuildError,
    ComponentError,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from beanpole.home import Home

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
        """BEANPOLE_URL + BEANPOLE_TOKEN for a remote server, else the local one's files."""
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
        return cls(info["url"], home.token_file.read_text().strip())

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

    # convenience wrappers ----------------------------------------------------------

    def ping(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/ping")
        return result

    def upload(
        self, application: str, zip_path: Path, label: str | None, description: str = ""
    ) -> dict[str, Any]:
        params = {"description": description}
        if label:
            params["label"] = label

        def chunks() -> Iterator[bytes]:
            with zip_path.open("rb") as f:
                while block := f.read(1 << 20):
                    yield block

        result: dict[str, Any] = self.request(
            "POST",
            f"/applications/{application}/versions",
            params=params,
            content=chunks(),
            headers={"Content-Type": "application/zip"},
            timeout=600,
        )
        return result

    def environment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/environments/{name}")
        return result

    def events(self, name: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request(
            "GET", f"/environments/{name}/events", params={"after": after, "limit": limit}
        )
        return result

    def operation(self, op_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/operations/{op_id}")
        return result


def _raise_for_error(response: httpx.Response) -> None:
    """The server's JSON error as the matching `BeanpoleError`."""
    if response.status_code < 400:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {response.status_code}: {response.text[:200]}"
    raise _BY_STATUS.get(response.status_code, BeanpoleError)(message)
