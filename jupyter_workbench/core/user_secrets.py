"""User secrets: named values (API keys ...) a user's servers get as environment variables.

Stored AES-256-GCM encrypted (``keyring``); the API lists names and dates only, and the plain
values leave the workbench in one place: the environment of the owner's server at spawn.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db.locks import lock_name
from ..db.models import User, UserSecret, utcnow
from . import audit
from .context import Ctx
from .errors import BadRequest, NotFound
from .keyring import KeyRing

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024
MAX_SECRETS = 200
# Variables the hub, Jupyter or the workbench set themselves; a secret may not replace them.
RESERVED_PREFIXES = ("JUPYTERHUB_", "JUPYTER_", "JPY_", "WORKBENCH_", "MLFLOW_TRACKING_")
RESERVED = frozenset(
    {
        "PATH", "HOME", "USER", "SHELL", "PWD", "LANG", "PYTHONPATH", "PYTHONHOME",
        "LD_PRELOAD", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "MEM_LIMIT", "CPU_LIMIT",
    }
)  # fmt: skip


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadRequest(
            f"name: {name[:140]!r} is not an environment variable name "
            "(letters, digits and '_', not starting with a digit, at most 128)",
            code="invalid_field",
        )
    if name.upper() in RESERVED or name.upper().startswith(RESERVED_PREFIXES):
        raise BadRequest(
            f"name: {name!r} is reserved (set by JupyterHub, Jupyter or the workbench)",
            code="invalid_field",
        )
    return name


def _aad(user_id: int, name: str) -> bytes:
    return f"user-secret:{user_id}:{name}".encode()


def secret_json(secret: UserSecret) -> dict[str, Any]:
    return {
        "name": secret.name,
        "created_at": secret.created_at.isoformat(),
        "updated_at": secret.updated_at.isoformat(),
    }


def list_mine(s: Session, ctx: Ctx) -> list[UserSecret]:
    stmt = select(UserSecret).where(UserSecret.user_id == ctx.user.id).order_by(UserSecret.name)
    return list(s.scalars(stmt))


def put(s: Session, ctx: Ctx, keys: KeyRing, name: str, value: str) -> tuple[UserSecret, bool]:
    """Set the caller's secret ``name``; ``(secret, created)``."""
    check_name(name)
    raw = value.encode()
    if len(raw) > MAX_VALUE_BYTES:
        raise BadRequest(f"value: larger than {MAX_VALUE_BYTES} bytes", code="invalid_field")
    if "\x00" in value:
        raise BadRequest("value: may not contain NUL characters", code="invalid_field")
    kid, blob = keys.encrypt(raw, _aad(ctx.user.id, name))
    # parallel PUTs of one new name: one creates, the others update (and the count holds)
    lock_name(s, f"user-secrets:{ctx.user.id}")
    stmt = select(UserSecret).where(UserSecret.user_id == ctx.user.id, UserSecret.name == name)
    secret = s.scalar(stmt.with_for_update())
    created = secret is None
    if secret is None:
        count = len(list_mine(s, ctx))
        if count >= MAX_SECRETS:
            raise BadRequest(f"name: at most {MAX_SECRETS} secrets per user", code="too_many")
        secret = UserSecret(user_id=ctx.user.id, name=name, key_id=kid, ciphertext=blob)
        s.add(secret)
    else:
        secret.key_id, secret.ciphertext, secret.updated_at = kid, blob, utcnow()
    s.flush()
    audit.record(s, ctx, "secret.create" if created else "secret.update", "secret", name)
    return secret, created


def delete(s: Session, ctx: Ctx, name: str) -> None:
    stmt = select(UserSecret).where(UserSecret.user_id == ctx.user.id, UserSecret.name == name)
    secret = s.scalar(stmt)
    if secret is None:
        raise NotFound(f"secret '{name[:140]}' not found")
    s.delete(secret)
    audit.record(s, ctx, "secret.delete", "secret", name)


def environment_of(s: Session, user: User, keys: KeyRing) -> dict[str, str]:
    """A user's secrets in plain text, for their server's environment at spawn."""
    rows = s.scalars(select(UserSecret).where(UserSecret.user_id == user.id))
    return {
        r.name: keys.decrypt(r.key_id, r.ciphertext, _aad(user.id, r.name)).decode() for r in rows
    }


def rotate_batch(s: Session, ctx: Ctx, keys: KeyRing, *, batch: int = 200) -> int:
    """Re-encrypt up to ``batch`` secrets not yet under the current key; how many it did.

    Run it until it returns less than ``batch`` (each call one transaction): rows under earlier
    keys stay readable throughout, and a row whose key is unknown stops the rotation with an
    error naming the key, keeping what earlier batches did.
    """
    stmt = (
        select(UserSecret)
        .where(UserSecret.key_id != keys.current_id)
        .order_by(UserSecret.id)
        .limit(batch)
        .with_for_update()
    )
    rows = list(s.scalars(stmt))
    for row in rows:
        aad = _aad(row.user_id, row.name)
        plain = keys.decrypt(row.key_id, row.ciphertext, aad)
        row.key_id, row.ciphertext = keys.encrypt(plain, aad)
    if rows:
        audit.record(
            s, ctx, "secrets.rotate", "key", keys.current_id, summary={"reencrypted": len(rows)}
        )
    return len(rows)


def key_usage(s: Session) -> dict[str, int]:
    """How many secrets each key id encrypts."""
    counts: dict[str, int] = {}
    for kid in s.scalars(select(UserSecret.key_id)):
        counts[kid] = counts.get(kid, 0) + 1
    return counts
