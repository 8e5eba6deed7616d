"""The keys of user secrets: AES-256-GCM under keys derived (HKDF-SHA256) from configured secrets.

The current key encrypts; earlier keys still decrypt, so a rotation (re-encrypting every secret
under the current key) can run while the workbench serves. Each ciphertext records the id of
its key (a short hash of the key, revealing nothing of it) and is bound to its owner and name
as associated data, so a row copied onto another user or name does not decrypt.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
SALT = b"jupyter-workbench"
INFO = b"user-secrets v1"


class SecretKeyError(Exception):
    """A secret cannot be decrypted: its key is not configured, or the data was altered."""


def derive(secret: str) -> bytes:
    """The 256-bit AES key for a configured secret string."""
    if not secret:
        raise ValueError("an empty secret cannot be a key")
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=SALT, info=INFO)
    return kdf.derive(secret.encode())


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"key-id:" + key).hexdigest()[:16]


@dataclass
class KeyRing:
    """The current key (encrypts) and earlier ones (decrypt only), by id."""

    current: bytes
    earlier: list[bytes] = field(default_factory=list)

    @classmethod
    def from_secrets(cls, current: str, earlier: list[str] | tuple[str, ...] = ()) -> KeyRing:
        return cls(derive(current), [derive(s) for s in earlier if s and s != current])

    @property
    def current_id(self) -> str:
        return key_id(self.current)

    def ids(self) -> list[str]:
        return [self.current_id, *(key_id(k) for k in self.earlier)]

    def _key(self, kid: str) -> bytes:
        for key in (self.current, *self.earlier):
            if key_id(key) == kid:
                return key
        raise SecretKeyError(
            f"key {kid} is not configured (add it back as an earlier key, then rotate)"
        )

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """``(key id, nonce + ciphertext + tag)`` under the current key."""
        nonce = os.urandom(NONCE_BYTES)
        return self.current_id, nonce + AESGCM(self.current).encrypt(nonce, plaintext, aad)

    def decrypt(self, kid: str, blob: bytes, aad: bytes) -> bytes:
        key = self._key(kid)
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise SecretKeyError(
                "a secret failed authentication (altered or misplaced data)"
            ) from None


def new_secret() -> str:
    """A fresh random key secret (for key files)."""
    return secrets.token_urlsafe(48)


def read_key_file(path: Path, *, create: bool = True) -> list[str]:
    """The secrets in a key file (current first); creates it (0600) with a new key if absent."""
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"{path}: no key file")
        write_key_file(path, [new_secret()])
    lines = [line.strip() for line in path.read_text().splitlines()]
    keys = [line for line in lines if line and not line.startswith("#")]
    if not keys:
        raise ValueError(f"{path}: the key file holds no key")
    return keys


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# workbench secrets keys: the first is current, later ones are earlier keys\n")
        f.write("\n".join(keys) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
