"""Encryption of stored credentials (Fernet, with MultiFernet for key rotation).

The key ring comes from ``FLOWFORGE_SECRET_KEY`` (one key, or several comma-separated,
newest first) or else from the project's ``.flowforge/secret.key`` file, created with mode
0600 by ``flowforge init`` or on the first stored secret. Decryption tries every key in the
ring; encryption always uses the first. Rotation prepends a new key, re-encrypts every
stored secret with it, then drops the old keys from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flowforge.errors import ConfigError

KEY_ENV = "FLOWFORGE_SECRET_KEY"
KEY_FILE = "secret.key"


class Keyring:
    """The project's encryption keys."""

    def __init__(self, keys: list[bytes], source: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        if not keys:
            raise ConfigError("No encryption key is configured.", hint=f"Run 'flowforge init' or set {KEY_ENV}.")
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise ConfigError(f"The encryption key from {source} is not a valid Fernet key.",
                              hint="Generate one with 'flowforge connections rotate-key' or restore the old one."
                              ) from None
        self.keys = keys
        self.source = source

    @classmethod
    def load(cls, state_dir: Path, create: bool = False) -> Keyring:
        env = os.environ.get(KEY_ENV)
        if env:
            return cls([k.strip().encode() for k in env.split(",") if k.strip()], KEY_ENV)
        path = state_dir / KEY_FILE
        if not path.exists():
            if not create:
                raise ConfigError(f"No encryption key at {path} and {KEY_ENV} is not set.",
                                  hint="Run 'flowforge init' in the project, or restore the key file.")
            write_key_file(path, [new_key()])
        return cls([ln.strip().encode() for ln in path.read_text().splitlines() if ln.strip()], str(path))

    def encrypt(self, secrets: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()

    def decrypt(self, token: str, what: str) -> dict[str, Any]:
        from cryptography.fernet import InvalidToken

        try:
            data: dict[str, Any] = json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ConfigError(f"The stored secret of {what} cannot be decrypted with the key from {self.source}.",
                              hint=f"Restore the key it was saved with (file or {KEY_ENV}), or add the "
                                   "connection again.") from None
        return data

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()


def new_key() -> bytes:
    from cryptography.fernet import Fernet

    return Fernet.generate_key()


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Write the key file readable by its owner only, never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(k.decode() for k in keys) + "\n")
    os.replace(tmp, path)
    path.chmod(0o600)
