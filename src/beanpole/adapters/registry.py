"""The image registry every node of a Docker Swarm pulls versions' images from.

A Swarm service names its image by reference and each node pulls it, so an image built on one
node must be somewhere the others reach. Beanpole runs Debian's ``docker-registry`` (the
reference registry, 2.8) for that, as HAProxy is run: a daemon in its own session that
outlives the control plane, found again through its pid file, so a restarted Beanpole adopts
it rather than starting a second one on the same storage.

It speaks TLS with a certificate from a CA Beanpole makes (kept in the registry's folder), not
plain HTTP: a node then trusts it by one file, ``/etc/docker/certs.d/<host>/ca.crt``, with no
``insecure-registries`` setting and no engine restart (docs/swarm-plan.md, section 3). The
engine that pushes reaches the registry at ``127.0.0.1``, which Docker treats as insecure, so
that engine needs no trust set up; nodes pull by manifest digest, which is the same whatever
host name the reference carries.

There is no authentication (Debian's own config asks for htpasswd: this module writes its own
``config.yml`` and never reads ``/etc/docker/registry``): whoever reaches the port can pull,
push and delete, so ``bind`` should be an address only the Swarm's nodes reach.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import docker.errors
import httpx
import psutil
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from beanpole.core.errors import BuildError, ComponentError, InvalidInput

log = logging.getLogger(__name__)

REGISTRY_BIN = "/usr/bin/docker-registry"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 5.0
GC_TIMEOUT_S = 300.0
#: While it starts: short, so that a process that dies meanwhile is seen at once.
PROBE_TIMEOUT_S = 1.0
POLL_S = 0.05
CERT_DAYS = 3650
#: A server certificate with less left than this is issued again (by the same CA) at start.
RENEW_DAYS = 30
LOG_TAIL_LINES = 10
#: What a registry accepts as a repository name (distribution's reference grammar).
_REPOSITORY = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)


def unavailable() -> str | None:
    """Why the registry cannot run here, or None when it can."""
    if not os.access(REGISTRY_BIN, os.X_OK):
        return (
            f"{REGISTRY_BIN} is missing: install Debian's docker-registry package "
            "(scripts/bootstrap.sh --docker)"
        )
    return None


class Registry:
    """One ``docker-registry`` whose config, storage, certificates and pid file live in
    ``directory``; ``address`` is where the nodes reach it."""

    def __init__(self, directory: Path, *, address: str, port: int, bind: str = "0.0.0.0") -> None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise InvalidInput(
                f"The registry address {address!r} is not an IP address: give the address "
                "the Swarm's nodes reach this host at (such as 10.0.0.5)."
            ) from None
        self.directory = directory.absolute()
        self.address = address
        self.port = port
        self.bind = bind
        self.config_file = self.directory / "config.yml"
        self.storage = self.directory / "storage"
        self.ca_key_file = self.directory / "ca.key"
        self.cert_file = self.directory / "cert.pem"
        self.key_file = self.directory / "key.pem"
        self.pid_file = self.directory / "registry.pid"
        self.log_file = self.directory / "registry.log"
        self._lock_file = self.directory / "lock"
        self._child: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """What image references name: ``<address>:<port>``."""
        return f"{self.address}:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate nodes must trust, as ``/etc/docker/certs.d/<host>/ca.crt``."""
        return self.directory / "ca.crt"

    # -- process ---------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start the registry unless ours already runs and answers; adopt it if it does.

        One that runs but does not answer, or runs with a config or certificate this call
        changed (another port, another address), is stopped and started again: two
        registries on one storage are never left running.
        """
        with self._locked():
            changed = self._write_files()
            running = self._process()
            if running is not None:
                if not changed and self._answers():
                    return
                log.info(
                    "Restarting the registry (pid %d): %s",
                    running.pid,
                    "its files changed" if changed else "it does not answer",
                )
                self._terminate(running)
            self._start()

    def is_running(self) -> bool:
        """Ours (the pid file's) is alive and answers ``/v2/`` over verified TLS."""
        return self._process() is not None and self._answers()

    def stop(self) -> None:
        """Stop ours (TERM, then KILL after `STOP_TIMEOUT_S`) and wait until it has exited."""
        with self._locked():
            running = self._process()
            if running is not None:
                self._terminate(running)
            self.pid_file.unlink(missing_ok=True)

    def _start(self) -> None:
        self.pid_file.unlink(missing_ok=True)
        # Its output goes to a file (one per start, the one before kept as .1, which says why
        # that one ended): it logs every request for its whole life.
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.log_file, self.log_file.with_name(self.log_file.name + ".1"))
        with self.log_file.open("wb") as out:
            try:
                child = subprocess.Popen(
                    [REGISTRY_BIN, "serve", str(self.config_file)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    cwd=self.directory,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ComponentError(
                    f"Could not run {REGISTRY_BIN}: {exc}. "
                    "Install Debian's docker-registry package (scripts/bootstrap.sh --docker)."
                ) from exc
        self._child = child  # kept so that stop() can reap it when it is our child
        _write_atomic(self.pid_file, f"{child.pid}\n")

        def answered_or_exited() -> bool:
            return child.poll() is not None or self._answers(PROBE_TIMEOUT_S)

        if _poll(answered_or_exited, START_TIMEOUT_S) and child.poll() is None:
            return
        if child.poll() is None:
            self._terminate(psutil.Process(child.pid))
            self.pid_file.unlink(missing_ok=True)
            raise ComponentError(
                f"The registry did not answer on https://127.0.0.1:{self.port}/v2/ within "
                f"{START_TIMEOUT_S:.0f} s; its log ({self.log_file}) ends: {self._log_tail()}"
            )
        self.pid_file.unlink(missing_ok=True)
        raise ComponentError(
            f"The registry exited at start (exit {child.returncode}); its log "
            f"({self.log_file}) ends: {self._log_tail()}"
        )

    def _terminate(self, proc: psutil.Process) -> None:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs([proc], timeout=STOP_TIMEOUT_S)
        if alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
            _, alive = psutil.wait_procs([proc], timeout=STOP_TIMEOUT_S)
            if alive:
                raise ComponentError(f"The registry (pid {proc.pid}) did not stop.")
        if self._child is not None and self._child.pid == proc.pid:
            self._child.poll()  # psutil reaped it; let Popen know
            self._child = None

    def _process(self) -> psutil.Process | None:
        """The live registry named by the pid file, if it is ours (pids get reused)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            cmdline = proc.cmdline()
            if (
                proc.status() == psutil.STATUS_ZOMBIE
                or not cmdline
                or Path(cmdline[0]).name != Path(REGISTRY_BIN).name
                or str(self.config_file) not in cmdline[1:]
            ):
                return None
        except (OSError, ValueError, IndexError, psutil.Error):
            return None
        return proc

    def _answers(self, timeout_s: float = HTTP_TIMEOUT_S) -> bool:
        try:
            with self._http(timeout_s) as http:
                return http.get("/v2/").status_code == 200
        except (httpx.HTTPError, OSError, ssl.SSLError):
            return False

    def _http(self, timeout_s: float = HTTP_TIMEOUT_S) -> httpx.Client:
        """A client of our registry on loopback, trusting only its CA."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.Client(
            base_url=f"https://127.0.0.1:{self.port}", verify=context, timeout=timeout_s
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return " | ".join(ln.strip() for ln in lines[-LOG_TAIL_LINES:] if ln.strip()) or (
            "(no output)"
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One start or stop at a time, across threads and processes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- files -----------------------------------------------------------------------------

    def _write_files(self) -> bool:
        """Make what is missing or outdated: CA, server certificate, config. True when the
        certificate or config changed (a running registry must be restarted to see it)."""
        self.storage.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = self._ca()
        changed = self._server_certificate(ca_key, ca_cert)
        config = self._config(ca_key)
        try:
            current = self.config_file.read_text()
        except FileNotFoundError:
            current = None
        if current != config:
            _write_atomic(self.config_file, config)
            changed = True
        return changed

    def _config(self, ca_key: ec.EllipticCurvePrivateKey) -> str:
        # The upload state is signed with this secret; derived from the CA key so it stays the
        # same across starts (and the config file with it) without one more file.
        secret = hmac.new(_key_pem(ca_key), b"beanpole registry http secret", hashlib.sha256)
        bind = f"[{self.bind}]" if ":" in self.bind else self.bind
        config = {
            "version": "0.1",
            # Every request is logged at info ("response completed"); the access log would
            # log each a second time.
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                # No blob descriptor cache: after a garbage collection it would still say
                # that a removed layer exists, and a push would skip that layer
                # (`collect_garbage`).
            },
            "http": {
                "addr": f"{bind}:{self.port}",
                "secret": secret.hexdigest(),
                "tls": {"certificate": str(self.cert_file), "key": str(self.key_file)},
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }
        return "# Written by Beanpole (adapters/registry.py): changes are overwritten.\n" + (
            yaml.safe_dump(config, sort_keys=False)
        )

    def ensure_ca(self) -> Path:
        """Make the CA the nodes must trust unless it exists (before the registry first
        runs: an operator installs it on each node first); return its certificate's path."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._ca()
        return self.ca_file

    def _ca(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """The CA nodes trust: made once, then reused (nodes keep a copy of it)."""
        if self.ca_file.exists() and self.ca_key_file.exists():
            key = serialization.load_pem_private_key(self.ca_key_file.read_bytes(), None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ComponentError(
                    f"{self.ca_key_file} is not an EC private key: remove {self.ca_key_file} "
                    f"and {self.ca_file} to make a new CA (nodes must then trust the new one)."
                )
            return key, x509.load_pem_x509_certificate(self.ca_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Beanpole registry CA")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.ca_key_file, _key_pem(key))
        _write_atomic(self.ca_file, cert.public_bytes(serialization.Encoding.PEM).decode())
        return key, cert

    def _server_certificate(self, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> bool:
        """Issue the registry's certificate unless the one on disk is the CA's, names every
        address wanted and has `RENEW_DAYS` left. True when it was issued."""
        wanted = {ipaddress.ip_address(self.address), ipaddress.ip_address("127.0.0.1")}
        now = dt.datetime.now(dt.UTC)
        if self.cert_file.exists() and self.key_file.exists():
            with contextlib.suppress(ValueError, TypeError, x509.ExtensionNotFound):
                cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
                cert.verify_directly_issued_by(ca)
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                if wanted <= set(san.get_values_for_type(x509.IPAddress)) and (
                    cert.not_valid_after_utc - now > dt.timedelta(days=RENEW_DAYS)
                ):
                    return False
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.address)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ip) for ip in sorted(wanted, key=str)]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(self.key_file, _key_pem(key))
        _write_atomic(self.cert_file, cert.public_bytes(serialization.Encoding.PEM).decode())
        return True

    # -- images ----------------------------------------------------------------------------

    def push(self, client: docker.APIClient, image: str, repository: str) -> str:
        """Push ``image`` from the engine ``client`` talks to and give the reference nodes
        pull: ``<host>/<repository>@<manifest digest>``.

        The engine pushes to ``127.0.0.1:<port>`` under a temporary tag (the image's id),
        removed afterwards unless it is the image's only name (removing it would remove the
        image).
        """
        return push_image(
            client,
            image,
            repository,
            push_to=f"127.0.0.1:{self.port}",
            pull_from=self.host,
            check=f"Check that the registry runs (its log: {self.log_file}) and that its disk "
            "has room",
        )

    def trust_hint(self) -> str:
        """What a node needs to pull from here."""
        return (
            f"Each node must trust the registry's certificate: copy {self.ca_file} to "
            f"/etc/docker/certs.d/{self.host}/ca.crt on it (beanpole nodes ca; docs/swarm.md)."
        )

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        """The digest of the manifest ``repository:tag`` names here, or None when there is
        none."""
        answer = self._manifest("HEAD", repository, tag)
        digest = str(answer.headers.get("docker-content-digest", ""))
        if answer.status_code == 200 and _DIGEST.fullmatch(digest):
            return digest
        if answer.status_code == 404:
            return None
        raise ComponentError(
            f"The registry could not say which manifest {repository}:{tag} is "
            f"(HTTP {answer.status_code})."
        )

    def _manifest(self, method: str, repository: str, reference: str) -> httpx.Response:
        """The registry's answer to ``method`` on the manifest ``repository:reference``."""
        try:
            with self._http() as http:
                return http.request(
                    method,
                    f"/v2/{repository}/manifests/{reference}",
                    headers={"Accept": _MANIFEST_TYPES},
                )
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            raise ComponentError(
                f"The registry did not answer ({exc}): start it (its log: {self.log_file})."
            ) from exc

    def collect_garbage(self) -> int:
        """Remove the layers that no manifest holds any more (``docker-registry
        garbage-collect``, while the registry serves: no push may run meanwhile, which is
        the caller's to ensure); the bytes freed."""
        before = _size(self.storage)
        try:
            done = subprocess.run(
                [REGISTRY_BIN, "garbage-collect", str(self.config_file)],
                capture_output=True,
                timeout=GC_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ComponentError(f"The registry's garbage collection did not run: {exc}") from exc
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise ComponentError(
                f"The registry's garbage collection failed (exit {done.returncode}): "
                + " | ".join(tail)
            )
        return max(0, before - _size(self.storage))

    def delete(self, reference: str) -> None:
        """Delete the manifest ``<host>/<repository>@<digest>`` names (and the tags on it); one
        already gone is fine. Its layers stay until a garbage collection."""
        name, at, digest = reference.rpartition("@")
        host, _, repository = name.partition("/")
        if not (at and _DIGEST.fullmatch(digest) and _REPOSITORY.fullmatch(repository)) or (
            host not in (self.host, f"127.0.0.1:{self.port}")
        ):
            raise InvalidInput(
                f"{reference!r} is not an image of this registry: give "
                f"{self.host}/<repository>@sha256:<digest>, as push returned it."
            )
        answer = self._manifest("DELETE", repository, digest)
        if answer.status_code not in (202, 404):
            raise ComponentError(
                f"The registry refused to delete {reference} (HTTP {answer.status_code}): "
                f"{answer.text.strip()[:300]}"
            )


def _size(folder: Path) -> int:
    """The bytes of the files under ``folder``."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _poll(condition: Callable[[], bool], timeout_s: float) -> bool:
    """True as soon as ``condition`` holds, False if it still does not after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only, from the first byte."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:300] if text else type(exc).__name__


def push_image(
    client: docker.APIClient,
    image: str,
    repository: str,
    *,
    push_to: str,
    pull_from: str,
    check: str,
) -> str:
    """Push ``image`` from the engine ``client`` talks to, to the registry at ``push_to``,
    under a temporary tag (the image's id, removed afterwards unless it is the image's only
    name: removing it would remove the image); give the reference nodes pull:
    ``<pull_from>/<repository>@<manifest digest>``. ``check``: what to check when it fails."""
    if not _REPOSITORY.fullmatch(repository):
        raise InvalidInput(
            f"{repository!r} is not a registry repository name: use lower-case letters, "
            "digits and '.', '_', '-' or '/' between them (such as beanpole/shop-web)."
        )
    try:
        info = client.inspect_image(image)  # type: ignore[no-untyped-call]
    except docker.errors.ImageNotFound:
        raise BuildError(
            f"The image {image} is not on this host, so it cannot be pushed to the "
            "registry: build it (or docker load it) here, then deploy again."
        ) from None
    except docker.errors.DockerException as exc:
        raise BuildError(
            f"The Docker engine could not show the image {image} ({_short(exc)}): check that "
            "it runs (docker info), then deploy again."
        ) from exc
    image_id = str(info["Id"])
    tag = image_id.rpartition(":")[2]
    local = f"{push_to}/{repository}"
    named = any(t != f"{local}:{tag}" for t in info.get("RepoTags") or [])
    digest = ""
    error = ""
    try:
        client.tag(image_id, local, tag)
        for item in client.push(local, tag=tag, stream=True, decode=True):
            if item.get("error"):
                error = str(item["error"]).strip()
            aux = item.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])
    except docker.errors.DockerException as exc:
        error = _short(exc)
    finally:
        if named:
            with contextlib.suppress(docker.errors.DockerException):
                client.remove_image(f"{local}:{tag}", noprune=True)
    if error or not _DIGEST.fullmatch(digest):
        raise BuildError(
            f"Pushing the image {image} to the registry ({push_to}) failed: "
            f"{error or 'the engine reported no digest'}. {check}, then deploy again."
        )
    return f"{pull_from}/{repository}@{digest}"


class ExternalRegistry:
    """A registry the operator runs (``beanpole server start --registry HOST:PORT``):
    Beanpole only pushes to it, through the local engine, which must be able to (its
    certificate trusted, ``docker login`` done), and the nodes pull from it."""

    def __init__(self, host: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", host):
            raise InvalidInput(
                f"Registry {host!r} is not HOST or HOST:PORT (such as registry.lan:5000)."
            )
        self.host = host

    def ensure_running(self) -> None:
        """Nothing to start: the operator runs it."""

    def is_running(self) -> bool:
        return True

    def stop(self) -> None:
        """Not Beanpole's to stop."""

    def push(self, client: docker.APIClient, image: str, repository: str) -> str:
        return push_image(
            client,
            image,
            repository,
            push_to=self.host,
            pull_from=self.host,
            check=f"Check that {self.host} answers and that this host's Docker engine may "
            "push to it (its certificate trusted, docker login)",
        )

    def trust_hint(self) -> str:
        return (
            f"Each node must be able to pull from {self.host} (its certificate trusted, "
            "docker login)."
        )

    def manifest_digest(self, repository: str, tag: str) -> None:
        """Unknown: the operator's registry is read only through the engine. What is in it
        is the operator's to collect (docs/swarm.md)."""
        return None

    def delete(self, reference: str) -> None:
        """Nothing: the operator's registry is the operator's to collect."""

    def collect_garbage(self) -> int:
        """Nothing: the operator's registry is the operator's to collect."""
        return 0
