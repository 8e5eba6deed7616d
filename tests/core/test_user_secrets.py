"""User secrets: encrypted at rest, bound to their owner and name, rotated without downtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from jupyter_workbench.core import user_secrets
from jupyter_workbench.core.errors import BadRequest, NotFound
from jupyter_workbench.core.keyring import KeyRing, SecretKeyError, read_key_file, write_key_file
from jupyter_workbench.db.models import User, UserSecret
from jupyter_workbench.service import WorkbenchService

KEYS = KeyRing.from_secrets("current-secret")


def env_of(service: WorkbenchService, username: str, keys: KeyRing = KEYS) -> dict[str, str]:
    with service.db.transaction() as s:
        user = s.scalar(select(User).where(User.username == username))
        return user_secrets.environment_of(s, user, keys)


def test_a_secret_is_stored_encrypted_and_given_back_only_for_the_environment(
    call: Callable[..., Any], service: WorkbenchService, audit_log: Any
) -> None:
    call("alice", lambda s, ctx: user_secrets.put(s, ctx, KEYS, "OPENAI_API_KEY", "sk-live-123"))
    with service.db.transaction() as s:
        row = s.scalar(select(UserSecret))
        assert b"sk-live-123" not in row.ciphertext
        assert row.key_id == KEYS.current_id
    listed = call("alice", lambda s, ctx: [user_secrets.secret_json(x)
                                           for x in user_secrets.list_mine(s, ctx)])  # fmt: skip
    assert [x["name"] for x in listed] == ["OPENAI_API_KEY"]
    assert "sk-live-123" not in repr(listed)
    assert env_of(service, "alice") == {"OPENAI_API_KEY": "sk-live-123"}
    # updating keeps one row; bob has none and cannot see alice's
    call("alice", lambda s, ctx: user_secrets.put(s, ctx, KEYS, "OPENAI_API_KEY", "sk-live-456"))
    assert env_of(service, "alice") == {"OPENAI_API_KEY": "sk-live-456"}
    assert call("bob", lambda s, ctx: user_secrets.list_mine(s, ctx)) == []
    with pytest.raises(NotFound):
        call("bob", lambda s, ctx: user_secrets.delete(s, ctx, "OPENAI_API_KEY"))
    events = audit_log(actor_name="alice")
    assert [e["action"] for e in events][-2:] == ["secret.create", "secret.update"]
    assert "sk-live" not in repr(events)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("1ABC", "not an environment variable name"),
        ("MY-KEY", "not an environment variable name"),
        ("PATH", "reserved"),
        ("JUPYTERHUB_API_TOKEN", "reserved"),
        ("workbench_mode", "reserved"),
    ],
)
def test_bad_names_are_refused(call: Callable[..., Any], name: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        call("alice", lambda s, ctx: user_secrets.put(s, ctx, KEYS, name, "v"))


def test_a_row_moved_to_another_user_does_not_decrypt(
    call: Callable[..., Any], service: WorkbenchService
) -> None:
    call("alice", lambda s, ctx: user_secrets.put(s, ctx, KEYS, "TOKEN", "alice-only"))
    call("bob", lambda s, ctx: None)
    with service.db.transaction(write=True) as s:
        bob = s.scalar(select(User).where(User.username == "bob"))
        s.scalar(select(UserSecret)).user_id = bob.id
    with pytest.raises(SecretKeyError, match="failed authentication"):
        env_of(service, "bob")


def test_rotation_reencrypts_everything_and_earlier_keys_read_meanwhile(
    call: Callable[..., Any], service: WorkbenchService
) -> None:
    old = KeyRing.from_secrets("old-secret")
    for user, value in (("alice", "a1"), ("bob", "b1"), ("carol", "c1")):
        call(user, lambda s, ctx, v=value: user_secrets.put(s, ctx, old, "API_KEY", v))
    new = KeyRing.from_secrets("new-secret", ["old-secret"])
    # mid-rotation: everything still reads with the new ring (old key accepted)
    assert env_of(service, "bob", new) == {"API_KEY": "b1"}
    system = service.system_identity()
    done = [service.call(system, lambda s, ctx: user_secrets.rotate_batch(s, ctx, new, batch=2),
                         write=True) for _ in range(3)]  # fmt: skip
    assert done == [2, 1, 0]
    only_new = KeyRing.from_secrets("new-secret")
    assert [env_of(service, u, only_new) for u in ("alice", "bob", "carol")] == [
        {"API_KEY": "a1"}, {"API_KEY": "b1"}, {"API_KEY": "c1"},
    ]  # fmt: skip
    with service.db.transaction() as s:
        assert user_secrets.key_usage(s) == {only_new.current_id: 3}
    # without the key a row was written with, the error names the key
    with pytest.raises(SecretKeyError, match=f"key {only_new.current_id} is not configured"):
        env_of(service, "alice", KeyRing.from_secrets("unrelated"))


def test_the_key_file_is_created_private_and_keeps_earlier_keys(tmp_path: Any) -> None:
    path = tmp_path / "keys" / "secrets.key"
    first = read_key_file(path)
    assert len(first) == 1 and (path.stat().st_mode & 0o777) == 0o600
    assert read_key_file(path) == first  # stable across restarts
    write_key_file(path, ["new", *first])
    assert read_key_file(path) == ["new", *first]
