"""S3BlobStore specifics: retries (through a fault-injecting TCP proxy), prefixes, config."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from jupyter_workbench.storage import BlobNotFound, S3BlobStore, StorageError

from .conftest import make_s3_store

MiB = 1024 * 1024
ERROR_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>"
)


class FaultProxy:
    """A TCP proxy to the moto server that spoils the first connections it accepts, one fault
    per connection, then forwards faithfully:

    - ``"500"``: answers the request with ``500 InternalError`` and closes;
    - ``"reset"``: resets the connection without answering;
    - ``"cut"``: forwards the request, but passes on only the response's headers and the first
      100 bytes of its body, then closes (a body that breaks off midway).
    """

    def __init__(self, target: tuple[str, int], faults: list[str]) -> None:
        self.target = target
        self.faults = list(faults)
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            fault = self.faults.pop(0) if self.faults else None
            threading.Thread(target=self._serve, args=(conn, fault), daemon=True).start()

    def _serve(self, conn: socket.socket, fault: str | None) -> None:
        with conn:
            if fault == "reset":  # linger on, timeout 0: close() sends a RST
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if fault == "500":
                _read_headers(conn)
                conn.sendall(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                    + f"Content-Length: {len(ERROR_BODY)}\r\n".encode()
                    + b"Connection: close\r\n\r\n"
                    + ERROR_BODY
                )
                return
            upstream = socket.create_connection(self.target)
            with upstream:
                pump = threading.Thread(target=_pipe, args=(conn, upstream), daemon=True)
                pump.start()
                _pipe(upstream, conn, cut_after_body=100 if fault == "cut" else None)
                for sock in (conn, upstream):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                pump.join(timeout=5)


def _read_headers(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            break
        data += part
    return data


def _pipe(src: socket.socket, dst: socket.socket, cut_after_body: int | None = None) -> None:
    seen = b""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if cut_after_body is not None:
                seen += data
                end = seen.find(b"\r\n\r\n")
                if end < 0:
                    continue
                dst.sendall(seen[: end + 4 + cut_after_body])
                return
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy_factory(moto_endpoint: str) -> Iterator[Any]:
    proxies: list[FaultProxy] = []
    parts = urlsplit(moto_endpoint)
    target = (parts.hostname or "127.0.0.1", parts.port or 80)

    def make(faults: list[str]) -> FaultProxy:
        proxy = FaultProxy(target, faults)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


def test_retry_config_is_in_force(moto_endpoint: str, s3_bucket: str) -> None:
    store = make_s3_store(moto_endpoint, s3_bucket, max_attempts=5)
    # botocore's "max_attempts" counts retries; it keeps the total (first try included).
    assert store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert store.transfer_config.multipart_threshold == 5 * MiB
    assert store.transfer_config.multipart_chunksize == 5 * MiB


def test_requests_are_retried(proxy_factory: Any, s3_bucket: str) -> None:
    proxy = proxy_factory(["500", "reset", "500"])
    store = make_s3_store(proxy.url, s3_bucket)
    store.put_bytes("k", b"survived")
    assert proxy.connections == 4  # three spoilt attempts, then the one that worked
    assert store.get_bytes("k") == b"survived"


def test_broken_body_is_read_again(proxy_factory: Any, s3_bucket: str) -> None:
    payload = os.urandom(256 * 1024)
    store = make_s3_store(proxy_factory([]).url, s3_bucket)
    store.put_bytes("k", payload)
    proxy = proxy_factory(["cut", "cut"])
    cut_store = make_s3_store(proxy.url, s3_bucket)
    assert cut_store.get_bytes("k") == payload
    assert cut_store.get_range("k", 1000, 100_000) == payload[1000:101_000]
    assert proxy.connections >= 3


def test_gives_up_after_max_attempts(proxy_factory: Any, s3_bucket: str) -> None:
    proxy = proxy_factory(["500"] * 10)
    store = make_s3_store(proxy.url, s3_bucket, max_attempts=3)
    with pytest.raises(StorageError, match="InternalError"):
        store.put_bytes("k", b"never")
    assert proxy.connections == 4  # the first try and three retries


def test_unreachable_endpoint_is_a_storage_error(s3_bucket: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    store = make_s3_store(f"http://127.0.0.1:{port}", s3_bucket, max_attempts=2)
    with pytest.raises(StorageError):
        store.get_bytes("k")
    with pytest.raises(StorageError):
        store.exists("k")


def test_missing_bucket(moto_endpoint: str) -> None:
    store = make_s3_store(moto_endpoint, "wb-test-no-such-bucket")
    with pytest.raises(StorageError, match="does not exist"):
        store.put_bytes("k", b"v")


def test_prefixes_keep_stores_apart(moto_endpoint: str, s3_bucket: str, s3_admin: Any) -> None:
    root = make_s3_store(moto_endpoint, s3_bucket)
    one = make_s3_store(moto_endpoint, s3_bucket, prefix="team/one")
    two = make_s3_store(moto_endpoint, s3_bucket, prefix="/team/two/")
    one.put_bytes("k", b"1")
    two.put_bytes("k", b"2")
    two.delete_many(["k", "other"])
    two.put_bytes("k", b"2")
    assert one.get_bytes("k") == b"1" and two.get_bytes("k") == b"2"
    assert [i.key for i in one.list()] == ["k"]
    assert [i.key for i in two.list("k")] == ["k"]
    assert sorted(i.key for i in root.list()) == ["team/one/k", "team/two/k"]
    raw = s3_admin.list_objects_v2(Bucket=s3_bucket)
    assert sorted(o["Key"] for o in raw["Contents"]) == ["team/one/k", "team/two/k"]
    one.delete("k")
    with pytest.raises(BlobNotFound):
        one.get_bytes("k")
    assert two.describe() == f"s3://{s3_bucket}/team/two at {moto_endpoint}"


def test_small_put_file_is_one_part(moto_endpoint: str, s3_bucket: str, tmp_path: Path) -> None:
    store = make_s3_store(moto_endpoint, s3_bucket)
    source = tmp_path / "small"
    source.write_bytes(os.urandom(4 * MiB))
    store.put_file("small", source)
    head = store.client.head_object(Bucket=s3_bucket, Key="small")
    assert "-" not in head["ETag"]
    assert store.get_bytes("small") == source.read_bytes()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="bucket"):
        S3BlobStore("")
    with pytest.raises(ValueError):
        S3BlobStore("b", prefix="a/../b")
