"""Applications and their versions: upload a version, list them, the lifecycle limit.

An upload streams into a temporary file off the event loop (one thread hop per megabyte,
not per network chunk), then is hashed, checked and stored by digest in a worker thread, so
a large bundle never stalls the API or a deployment's gates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from beanpole.adapters.appuser import AppUsers, application_key
from beanpole.adapters.build import legacy_version_dir, version_dir
from beanpole.adapters.bundles import BundleStore, Limits, read_files
from beanpole.adapters.store.db import Store
from beanpole.api.views import ApplicationView, LifecycleResult, VersionView
from beanpole.core import nginx
from beanpole.core.errors import Conflict, InvalidInput, NotFound, TooLarge
from beanpole.core.lifecycle import versions_to_delete
from beanpole.core.model import Application, Version, check_app_name, check_label
from beanpole.core.settings import ebextensions

WRITE_BATCH = 1 << 20
"""Bytes gathered from the network before one write in a worker thread."""


def version_view(v: Version) -> VersionView:
    return VersionView(
        id=v.id,
        application=v.application,
        label=v.label,
        digest=v.digest,
        created_at=v.created_at,
        build_status=v.build_status,
        build_error=v.build_error,
        description=v.description,
        ebextensions=v.ebextensions,
        ebextensions_warnings=list(v.ebextensions_warnings),
    )


class Applications:
    def __init__(
        self, store: Store, bundles: BundleStore, root: Path, users: AppUsers | None = None
    ) -> None:
        self.store = store
        self.bundles = bundles
        self.incoming = root / "bundles" / "incoming"  # partial uploads; swept at start
        self.builds = root / "builds"
        self.users = users or AppUsers(root, enabled=False)  # each application's user

    async def list_all(self) -> list[ApplicationView]:
        apps = await asyncio.to_thread(self.store.applications)
        return [ApplicationView(id=a.id, name=a.name, created_at=a.created_at) for a in apps]

    async def versions(self, application: str) -> list[VersionView]:
        def read() -> list[Version]:
            self.store.application(application)  # NotFound, with its advice
            return self.store.versions(application)

        return [version_view(v) for v in await asyncio.to_thread(read)]

    async def upload(
        self,
        application: str,
        chunks: AsyncIterator[bytes],
        label: str | None = None,
        description: str = "",
        limits: Limits | None = None,
    ) -> VersionView:
        """Store a bundle as a new version (label: from its digest unless given) and apply
        the application's lifecycle limit. The same contents under the same label again is
        the same version; other contents under a taken label are refused."""
        check_app_name(application)
        if label is not None:
            check_label(label)
        limits = limits or Limits()
        path = await self._receive(chunks, limits)
        try:
            digest = await asyncio.to_thread(self.bundles.put, path, limits)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        try:
            layer = await asyncio.to_thread(
                lambda: _read_ebextensions(self.bundles.path(digest), limits)
            )
        except InvalidInput:
            # A config file that does not parse refuses the version (EB rejects it too):
            # the stored zip goes unless another version holds the same contents.
            if not self.store.digest_in_use(digest):
                await asyncio.to_thread(self.bundles.path(digest).unlink, missing_ok=True)
            raise
        proxy = await asyncio.to_thread(lambda: _read_nginx(self.bundles.path(digest), limits))
        self.store.ensure_application(application)
        version = self.store.add_version(
            application,
            label or f"v-{digest[:12]}",
            digest,
            description,
            # .platform/nginx's translation joins the version's layer; .ebextensions wins.
            {**proxy.settings, **layer.settings},
            (*layer.warnings, *proxy.warnings),
            ebextensions_origins={
                **{key: ".platform/nginx" for key in proxy.settings},
                **layer.origins,
            },
            steps=layer.steps,
        )
        await asyncio.to_thread(self._apply_lifecycle, application)
        return version_view(version)

    async def create(self, name: str) -> ApplicationView:
        """An application with no version yet (EB's CreateApplication); a name in use is a
        conflict."""
        check_app_name(name)
        if any(a.name == name for a in self.store.applications()):
            raise Conflict(f"Application {name} already exists. Choose another name.")
        app = self.store.ensure_application(name)
        return ApplicationView(id=app.id, name=app.name, created_at=app.created_at)

    async def delete(self, name: str) -> list[str]:
        """Delete an application, its versions (and their bundles unless another version
        holds the same contents) and saved configurations; refused while it has live
        environments. Its builds go, then its user (`adapters.appuser`). Returns the labels
        deleted."""
        app: Application | None = None
        with contextlib.suppress(NotFound):
            app = self.store.application(name)
        versions = self.store.delete_application(name)
        for version in versions:
            if not self.store.digest_in_use(version.digest):
                await asyncio.to_thread(self.bundles.path(version.digest).unlink, missing_ok=True)
                await asyncio.to_thread(
                    shutil.rmtree, legacy_version_dir(self.builds, version.digest), True
                )
        if app is not None:
            folder = self.builds / application_key(app)
            await asyncio.to_thread(shutil.rmtree, folder, True)
            await asyncio.to_thread(self.users.remove, app)
        return [v.label for v in versions]

    def _forget_build(self, version: Version) -> None:
        """Remove a deleted version's build: its application's (unless another of its
        versions has the same bundle) and, with its bundle, a legacy shared one."""
        if not any(v.digest == version.digest for v in self.store.versions(version.application)):
            with contextlib.suppress(NotFound):
                app = self.store.application(version.application)
                shutil.rmtree(version_dir(self.builds, app, version.digest), ignore_errors=True)
        if not self.store.digest_in_use(version.digest):
            self.bundles.path(version.digest).unlink(missing_ok=True)
            shutil.rmtree(legacy_version_dir(self.builds, version.digest), ignore_errors=True)

    async def delete_version(self, application: str, label: str) -> None:
        """Delete a version that no live environment runs (EB refuses those too)."""
        version = self.store.version(application, label)
        if label in self.store.deployed_labels(application):
            raise InvalidInput(
                f"Unable to delete application version {label} because it is being used by "
                "an environment. Deploy another version first."
            )
        self.store.delete_version(application, label)
        await asyncio.to_thread(self._forget_build, version)

    async def set_lifecycle(
        self, application: str, max_versions: int, max_age_days: int | None = None
    ) -> LifecycleResult:
        """Keep the newest ``max_versions`` (0: all) and, when given, none older than
        ``max_age_days`` (0: any age); deployed versions always stay."""
        self.store.set_max_versions(application, max_versions)
        if max_age_days is not None:
            self.store.set_max_age_days(application, max_age_days)
        deleted = await asyncio.to_thread(self._apply_lifecycle, application)
        return LifecycleResult(max_versions=max_versions, deleted=deleted)

    async def _receive(self, chunks: AsyncIterator[bytes], limits: Limits) -> Path:
        """The request body in a temporary file, refused as soon as it passes the limit."""

        def open_incoming() -> tuple[BinaryIO, Path]:
            self.incoming.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.incoming, suffix=".zip")
            return os.fdopen(fd, "wb"), Path(name)

        out, path = await asyncio.to_thread(open_incoming)
        try:
            size = 0
            batch = bytearray()
            async for chunk in chunks:
                size += len(chunk)
                if size > limits.max_bundle_bytes:
                    raise TooLarge(
                        f"The bundle is larger than {limits.max_bundle_bytes // 2**20} MB. "
                        "Leave build outputs and dependencies out (.ebignore)."
                    )
                batch += chunk
                if len(batch) >= WRITE_BATCH:
                    await asyncio.to_thread(out.write, bytes(batch))
                    batch.clear()
            await asyncio.to_thread(out.write, bytes(batch))
        except BaseException:
            await asyncio.to_thread(_discard, out, path)
            raise
        await asyncio.to_thread(out.close)
        return path

    def _apply_lifecycle(self, application: str) -> list[str]:
        """Delete versions beyond the application's limit; never one that is deployed."""
        doomed = versions_to_delete(
            self.store.versions(application),
            self.store.max_versions(application),
            self.store.deployed_labels(application),
            self.store.max_age_days(application),
            time.time(),
        )
        rule = _rule(self.store.max_versions(application), self.store.max_age_days(application))
        for version in doomed:
            self.store.delete_version(application, version.label)
            self._forget_build(version)
            self.store.add_event(
                f"Deleted application version {version.label} (lifecycle: {rule}).",
                application=application,
                version_label=version.label,
            )
        return [v.label for v in doomed]


def _rule(keep: int, max_age_days: int) -> str:
    parts = [f"keep {keep}"] if keep > 0 else []
    if max_age_days > 0:
        parts.append(f"none older than {max_age_days} days")
    return ", ".join(parts)


def _discard(out: BinaryIO, path: Path) -> None:
    out.close()
    path.unlink(missing_ok=True)


def _read_nginx(bundle_path: Path, limits: Limits) -> nginx.Translation:
    """A stored bundle's .platform/nginx files translated for HAProxy, once, at upload."""
    files: list[nginx.NginxFile] = []
    for folder, suffix in nginx.SOURCES:
        for f in read_files(
            bundle_path,
            folder,
            suffix,
            max_files=nginx.MAX_FILES,
            max_bytes=nginx.MAX_FILE_BYTES,
            limits=limits,
        ):
            if suffix != "nginx.conf" or f.path == f"{folder}/{suffix}":
                files.append(nginx.NginxFile(f.path, f.data, f.problem))
    return nginx.translate(files)


def _read_ebextensions(bundle_path: Path, limits: Limits) -> ebextensions.Layer:
    """A stored bundle's .ebextensions layer: read once per version, at upload."""
    files = read_files(
        bundle_path,
        ebextensions.FOLDER,
        ebextensions.SUFFIX,
        max_files=ebextensions.MAX_FILES,
        max_bytes=ebextensions.MAX_FILE_BYTES,
        limits=limits,
    )
    return ebextensions.layer(ebextensions.ConfigFile(f.path, f.data, f.problem) for f in files)
