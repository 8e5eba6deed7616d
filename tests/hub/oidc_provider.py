"""A real OpenID Connect provider on 127.0.0.1 for tests (``oidc-provider-mock``).

Its authorization page is a form where whoever logs in picks a subject (``sub``); the claims of
predefined subjects (name, groups ...) are given here, or changed later with ``set_claims``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import werkzeug.serving

with warnings.catch_warnings():  # authlib deprecating its own modules the mock still uses
    warnings.simplefilter("ignore", DeprecationWarning)
    from oidc_provider_mock import User, app


@dataclass
class Provider:
    issuer: str

    def set_claims(self, sub: str, claims: Mapping[str, Any]) -> None:
        """What the provider tells about ``sub`` from now on (its ``PUT /users/{sub}``)."""
        r = requests.put(f"{self.issuer}/users/{sub}", json=dict(claims), timeout=10)
        assert r.status_code == 204, r.text


@contextmanager
def serve_provider(users: Mapping[str, Mapping[str, Any]] = {}) -> Iterator[Provider]:
    """Serve the provider on a free 127.0.0.1 port while the block runs."""
    predefined = [User(sub=sub, claims=dict(claims)) for sub, claims in users.items()]
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, app(user_claims=predefined), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield Provider(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
