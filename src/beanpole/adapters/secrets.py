"""Encryption of secret environment properties at rest (`beanpole.core.secrets`).

The key is a Fernet key (AES-128-CBC with HMAC-SHA256) in ``<home>/secret.key``, mode
0600, made at first use: apart from the database, so a copy of ``state.db`` (a backup, a
support bundle) holds no readable secret. Losing the key loses the secrets: instances
whose properties cannot be decrypted fail to start with a message that says so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from beanpole.core.errors import ComponentError
from beanpole.core.secrets import PREFIX, is_sealed


class SecretBox:
    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._fernet: Fernet | None = None

    def _box(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key())
        return self._fernet

    def _key(self) -> bytes:
        try:
            return self.key_file.read_bytes().strip()
        except FileNotFoundError:
            pass
        key = Fernet.generate_key()
        tmp = self.key_file.with_name(self.key_file.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, self.key_file)  # never replaces a key another process just made
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return self.key_file.read_bytes().strip()

    def seal(self, value: str) -> str:
        return PREFIX + self._box().encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        """The value of a sealed property (a value that is not sealed is given back)."""
        if not is_sealed(value):
            return value
        try:
            return self._box().decrypt(value[len(PREFIX) :].encode()).decode()
        except (InvalidToken, ValueError) as exc:
            raise ComponentError(
                f"A secret environment property cannot be decrypted with {self.key_file}: "
                "the key file was replaced or lost. Set the secret again: "
                "beanpole setenv ENV --secret KEY=VALUE."
            ) from exc

    def reveal(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with every sealed value decrypted: what a process is given."""
        return {k: self.open(v) for k, v in env.items()}

    def values(self, env: Mapping[str, str]) -> list[str]:
        """The decrypted values of ``env``'s secrets (for `core.secrets.scrub`)."""
        return [self.open(v) for v in env.values() if is_sealed(v)]
