"""Stored TLS certificates (`core.certificates`): add or renew, list, remove.

A certificate is two things that must agree: its PEM (leaf, chain, key) in
`Home.certificate_file`, owner-only, which HAProxy loads, and its facts in the store, which
the load balancer's spec and the listing read. Every change writes both, then makes HAProxy
match (`Fleet.sync_lb`); when HAProxy refuses, both are put back as they were, so a
refused request leaves nothing half made. Key material never leaves the file: no view, no
event, no log line carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from beanpole.api.views import CertificatesView, CertificateView
from beanpole.core import certificates
from beanpole.core.certificates import CertificateRecord, check_name, parse
from beanpole.core.errors import Conflict, InvalidInput, NotFound
from beanpole.core.lb.desired import HTTPS_LISTENER
from beanpole.core.model import Environment
from beanpole.core.settings import resolve
from beanpole.home import Home
from beanpole.services.operations import Operations

log = logging.getLogger("beanpole.certificates")

CERTIFICATE_OPTION = "SSLCertificateArns"

Users = dict[str, list[str]]
"""Certificate name -> the live environments whose HTTPS listener names it."""


class Certificates:
    def __init__(self, ops: Operations, home: Home, clock: Callable[[], float] = time.time) -> None:
        self.ops = ops
        self.store = ops.store
        self.home = home
        self.clock = clock
        # One change at a time: a change that fails restores what it found, which must not
        # be what another change half wrote meanwhile.
        self._lock = asyncio.Lock()

    async def list(self) -> CertificatesView:
        return await asyncio.to_thread(self._list)

    async def add(
        self, name: str, certificate: str, private_key: str, chain: str = ""
    ) -> CertificateView:
        """Store ``name``, or renew it (replace its certificate) when it exists."""
        check_name(name)
        facts = await asyncio.to_thread(parse, certificate, private_key, chain)
        async with self._lock:
            previous = self._find(name)
            path = self.home.certificate_file(name)
            old_pem = _read(path)
            now = self.clock()
            record = CertificateRecord(
                name=name,
                domains=facts.domains,
                not_before=facts.not_before.timestamp(),
                not_after=facts.not_after.timestamp(),
                fingerprint=facts.fingerprint,
                serial=facts.serial,
                created_at=previous.created_at if previous else now,
                updated_at=now,
            )
            try:
                # the file first: the load balancer's spec names files of stored rows
                await asyncio.to_thread(write_private, path, facts.pem.encode())
                self.store.put_certificate(record)
                await self.ops.fleet.sync_lb()
            except BaseException:
                self._restore(name, previous, old_pem)
                await self._resync()
                raise
        log.info(
            "certificate %s %s (%s)", name, "renewed" if previous else "added", record.fingerprint
        )
        return self._view(record, self._users(), renewed=previous is not None)

    async def remove(self, name: str) -> CertificateView:
        """Forget ``name`` and its file; refused while an environment's HTTPS listener
        names it (it would lose its certificate)."""
        async with self._lock:
            record = self.store.certificate(name)
            users = self._users().get(name, [])
            if users:
                env = users[0] if len(users) == 1 else "ENV"
                raise Conflict(
                    f"Certificate {name} is used by environment(s) {', '.join(users)}. Change "
                    f"their {HTTPS_LISTENER} {CERTIFICATE_OPTION} first: beanpole config "
                    f"{env} {HTTPS_LISTENER}:{CERTIFICATE_OPTION}=OTHER-CERTIFICATE"
                )
            self.store.remove_certificate(name)
            try:
                await self.ops.fleet.sync_lb()
            except BaseException:
                self.store.put_certificate(record)
                await self._resync()
                raise
            await asyncio.to_thread(self.home.certificate_file(name).unlink, missing_ok=True)
        log.info("certificate %s removed", name)
        return self._view(record, {})

    # --------------------------------------------------------------------------------

    def _find(self, name: str) -> CertificateRecord | None:
        try:
            return self.store.certificate(name)
        except NotFound:
            return None

    def _restore(
        self, name: str, previous: CertificateRecord | None, old_pem: bytes | None
    ) -> None:
        """Put the row and the file back as `add` found them (none, when it was new)."""
        path = self.home.certificate_file(name)
        if previous is not None:
            self.store.put_certificate(previous)
        else:
            with contextlib.suppress(NotFound):
                self.store.remove_certificate(name)
        if old_pem is not None:
            write_private(path, old_pem)
        else:
            path.unlink(missing_ok=True)

    async def _resync(self) -> None:
        """After putting things back, bring HAProxy back too, if it answers: it may have
        taken part of the change before failing. A failure here is the first one's echo."""
        try:
            await self.ops.fleet.sync_lb()
        except Exception as exc:  # the caller raises the first failure
            log.warning("load balancer not resynchronised after a refused change: %s", exc)

    def _users(self) -> Users:
        """Certificate name -> the live environments whose HTTPS listener names it."""
        users: Users = {}
        for env in self.store.environments():  # terminated ones are left out
            for name in _referenced(env):
                users.setdefault(name, []).append(env.name)
        return users

    def _list(self) -> CertificatesView:
        users = self._users()
        return CertificatesView(
            certificates=[self._view(r, users) for r in self.store.certificates()]
        )

    def _view(
        self, record: CertificateRecord, users: Users, *, renewed: bool = False
    ) -> CertificateView:
        now = self.clock()
        return CertificateView(
            name=record.name,
            domains=list(record.domains),
            not_before=_iso(record.not_before),
            not_after=_iso(record.not_after),
            days_left=record.days_left(now),
            expiring=record.expiring(now),
            fingerprint=record.fingerprint,
            serial=record.serial,
            environments=sorted(users.get(record.name, [])),
            renewed=renewed,
        )


def _referenced(env: Environment) -> tuple[str, ...]:
    """The certificates an environment's HTTPS listener names; none when its value is not
    one (settings are checked when given, so only an older server's could be)."""
    try:
        value = resolve(*env.layers()).get(HTTPS_LISTENER, CERTIFICATE_OPTION)
        return certificates.referenced_names(value)
    except (KeyError, InvalidInput):
        return ()


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once, readable by the owner only from the first
    byte: HAProxy (a reload, a restart) never reads half a file, and a crash leaves the old
    one or the new one, never a mix."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a crash
    finally:
        os.close(folder)
