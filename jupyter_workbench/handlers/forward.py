"""Client mode: a JupyterHub user server answers the workbench's URLs by forwarding them.

``{base_url}workbench/api/v1/...`` and ``{base_url}workbench/mlflow/...`` on a user server go to
the hub's workbench service with the *caller's* own hub token (from the Authorization header, or
from the hub OAuth cookie a browser holds), so the service sees who is really calling -- also on
a shared project server -- and the user server never holds database or storage credentials.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketHandler, websocket_connect

from .streaming import RefusesUnreadBodies

REQUEST_HEADERS = ("Content-Type", "Accept", "Range", "If-Match", "If-None-Match", "X-Request-Id")
RESPONSE_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Location",
    "X-Request-Id",
    "Allow",
    "Cache-Control",
    "X-Dataset-Version",
)


def caller_token(handler: JupyterHandler) -> str | None:
    """The caller's hub token: the one it sent, or the one behind its OAuth cookie."""
    provider = handler.identity_provider
    token = provider.get_token(handler)
    if token:
        return token
    hub_auth = getattr(provider, "hub_auth", None)
    if hub_auth is not None:
        return hub_auth.get_token(handler)
    return None


class _Forwarding(ExtensionHandlerMixin, JupyterHandler):
    @property
    def target_base(self) -> str:
        return str(self.settings["workbench_service_url"]).rstrip("/")

    def local(self, location: str) -> str:
        """A ``Location`` the service sent, as this server's URL of the same thing (the
        caller reaches the service through here, under this server's base URL)."""
        service = urlsplit(self.target_base)
        for prefix in (self.target_base + "/", service.path.rstrip("/") + "/"):
            if location.startswith(prefix + "workbench/"):
                return self.base_url + location[len(prefix) :]
        return location

    def target(self, path: str) -> str:
        """The service's URL of ``path`` (as tornado decoded it: quoted again, so that a
        file named 'a?b.csv' or 'e%41.csv' stays that name)."""
        query = f"?{self.request.query}" if self.request.query else ""
        return f"{self.target_base}/{quote(path, safe='/')}{query}"


@web.stream_request_body
class ForwardHandler(RefusesUnreadBodies, _Forwarding):
    """HTTP: everything under the two prefixes, streamed both ways."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    _queue: asyncio.Queue[bytes | None]
    _task: asyncio.Task[httpx.Response] | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        token = caller_token(self) if self.current_user is not None else None
        if not token:
            self.refused_unread = True
            if self.current_user is None:
                raise web.HTTPError(401, "sign in first")
            raise web.HTTPError(401, "no hub token for this request")
        self.request.connection.set_max_body_size(1 << 40)  # type: ignore[union-attr]
        self._queue = asyncio.Queue(maxsize=16)
        client: httpx.AsyncClient = self.settings["workbench_forward_client"]
        headers = {k: v for k, v in self.request.headers.items() if k in REQUEST_HEADERS}
        headers["Authorization"] = f"token {token}"
        has_body = self.request.method in ("POST", "PUT", "PATCH", "DELETE")

        async def body() -> Any:
            while (chunk := await self._queue.get()) is not None:
                yield chunk

        request = client.build_request(
            self.request.method or "GET",
            self.target(self.path_kwargs["path"]),
            headers=headers,
            content=body() if has_body else None,
        )
        self._task = asyncio.ensure_future(client.send(request, stream=True))

    async def data_received(self, chunk: bytes) -> None:
        await self._queue.put(chunk)

    async def _relay(self, **_: str) -> None:
        await self._queue.put(None)
        assert self._task is not None
        try:
            response = await self._task
        except httpx.HTTPError as exc:
            raise web.HTTPError(502, f"the workbench service is unreachable: {exc}") from None
        try:
            self.set_status(response.status_code)
            for name in RESPONSE_HEADERS:
                if name in response.headers:
                    self.set_header(name, response.headers[name])
            if "Location" in response.headers:
                self.set_header("Location", self.local(response.headers["Location"]))
            async for chunk in response.aiter_raw():
                self.write(chunk)
                await self.flush()
            self.finish()
        finally:
            await response.aclose()

    def check_xsrf_cookie(self) -> None:
        # The service checks its own rules; browser callers still need the lab's _xsrf here.
        if getattr(self, "_jupyter_current_user", None) is None:
            return None
        return super().check_xsrf_cookie()

    get = allow_unauthenticated(_relay)
    head = allow_unauthenticated(_relay)
    post = allow_unauthenticated(_relay)
    put = allow_unauthenticated(_relay)
    patch = allow_unauthenticated(_relay)
    delete = allow_unauthenticated(_relay)


class ForwardWebSocketHandler(_Forwarding, WebSocketHandler):
    """WebSockets (live metrics, co-editing rooms): a pipe to the service's socket."""

    upstream: WebSocketClientConnection | None = None

    async def get(self, path: str) -> None:
        if self.current_user is None:
            raise web.HTTPError(401, "sign in first")
        token = caller_token(self)
        if not token:
            raise web.HTTPError(401, "no hub token for this request")
        target = self.target(path).replace("http://", "ws://").replace("https://", "wss://")
        try:
            self.upstream = await websocket_connect(
                HTTPRequest(target, headers={"Authorization": f"token {token}"}),
                on_message_callback=self._from_upstream,
            )
        except Exception as exc:
            raise web.HTTPError(502, f"the workbench service is unreachable: {exc}") from None
        await super().get(path=path)

    def _from_upstream(self, message: str | bytes | None) -> None:
        if message is None:  # ended as the service ended it: clients read the code and reason
            upstream = self.upstream
            if upstream is None:
                self.close()
            else:
                self.close(upstream.close_code, upstream.close_reason)
            return
        self.write_message(message, binary=isinstance(message, bytes))

    def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            self.upstream.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
