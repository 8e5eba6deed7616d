"""The BlobStore contract, on both backends (local folder and S3 through moto's server)."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jupyter_workbench.storage import (
    BlobCorrupt,
    BlobNotFound,
    BlobStore,
    LocalBlobStore,
    S3BlobStore,
    StorageError,
    make_blob_store,
)

MiB = 1024 * 1024


def test_put_and_get(blob_store: BlobStore, tmp_path: Path) -> None:
    blob_store.put_bytes("a/b/c.bin", b"hello world")
    assert blob_store.get_bytes("a/b/c.bin") == b"hello world"
    assert blob_store.exists("a/b/c.bin")
    assert blob_store.size("a/b/c.bin") == 11

    source = tmp_path / "source.bin"
    payload = os.urandom(300_000)
    source.write_bytes(payload)
    blob_store.put_file("packs/ab/abcdef.pack", source)
    assert blob_store.get_bytes("packs/ab/abcdef.pack") == payload
    assert blob_store.size("packs/ab/abcdef.pack") == len(payload)

    blob_store.put_bytes("empty", b"")
    assert blob_store.get_bytes("empty") == b""
    assert blob_store.size("empty") == 0
    assert blob_store.exists("empty")


def test_range_reads(blob_store: BlobStore) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    blob_store.put_bytes("r", data)
    assert blob_store.get_range("r", 0, 1) == data[:1]
    assert blob_store.get_range("r", len(data) - 1, 1) == data[-1:]
    assert blob_store.get_range("r", 1000, 2345) == data[1000:3345]
    assert blob_store.get_range("r", 0, len(data)) == data
    assert blob_store.get_range("r", 77, 0) == b""


@pytest.mark.parametrize(
    "start,length", [(10_000, 241), (10_240, 1), (20_000, 5), (0, 10_241)], ids=str
)
def test_range_past_the_end_is_corrupt(blob_store: BlobStore, start: int, length: int) -> None:
    blob_store.put_bytes("r", b"x" * 10_240)
    with pytest.raises(BlobCorrupt):
        blob_store.get_range("r", start, length)


def test_negative_range_is_rejected(blob_store: BlobStore) -> None:
    blob_store.put_bytes("r", b"abc")
    with pytest.raises(ValueError):
        blob_store.get_range("r", -1, 2)
    with pytest.raises(ValueError):
        blob_store.get_range("r", 0, -2)


def test_overwrite(blob_store: BlobStore, tmp_path: Path) -> None:
    blob_store.put_bytes("k", b"first version, longer")
    blob_store.put_bytes("k", b"second")
    assert blob_store.get_bytes("k") == b"second"
    assert blob_store.size("k") == 6
    source = tmp_path / "third"
    source.write_bytes(b"third!")
    blob_store.put_file("k", source)
    assert blob_store.get_bytes("k") == b"third!"
    assert [info.key for info in blob_store.list()] == ["k"]


def test_missing_keys(blob_store: BlobStore) -> None:
    blob_store.put_bytes("present/x", b"1")
    for key in ("absent", "present/y", "present/x/deeper", "present"):
        assert not blob_store.exists(key)
        with pytest.raises(BlobNotFound):
            blob_store.get_bytes(key)
        with pytest.raises(BlobNotFound):
            blob_store.get_range(key, 0, 1)
        with pytest.raises(BlobNotFound):
            blob_store.get_range(key, 0, 0)
        with pytest.raises(BlobNotFound):
            blob_store.size(key)
        with pytest.raises(BlobNotFound):
            blob_store.open_stream(key)
    with pytest.raises(KeyError):  # BlobNotFound is a KeyError ...
        blob_store.get_bytes("absent")
    with pytest.raises(StorageError):  # ... and a StorageError
        blob_store.get_bytes("absent")


def test_missing_source_file(blob_store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        blob_store.put_file("k", tmp_path / "nope")
    assert not blob_store.exists("k")


def test_delete_is_idempotent(blob_store: BlobStore) -> None:
    blob_store.put_bytes("d/1", b"one")
    blob_store.put_bytes("d/2", b"two")
    blob_store.delete("d/1")
    blob_store.delete("d/1")
    blob_store.delete("never/there")
    assert not blob_store.exists("d/1")
    assert blob_store.get_bytes("d/2") == b"two"
    blob_store.delete_many(["d/2", "d/1", "nope"])
    assert list(blob_store.list()) == []


def test_open_stream(blob_store: BlobStore) -> None:
    data = os.urandom(3 * MiB + 17)
    blob_store.put_bytes("s", data)
    parts = []
    with blob_store.open_stream("s") as stream:
        while part := stream.read(1 << 20):
            parts.append(part)
    assert b"".join(parts) == data


def test_list_prefixes(blob_store: BlobStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    keys = {"a/b/c": 1, "a/bb": 2, "a/c/d": 3, "ab": 4, "b/x": 5, "a/b/e/f/g": 6}
    for key, n in keys.items():
        blob_store.put_bytes(key, b"x" * n)

    def listed(prefix: str) -> set[str]:
        return {info.key for info in blob_store.list(prefix)}

    assert listed("") == set(keys)
    assert listed("a/") == {"a/b/c", "a/bb", "a/c/d", "a/b/e/f/g"}
    assert listed("a/b") == {"a/b/c", "a/bb", "a/b/e/f/g"}
    assert listed("a/b/") == {"a/b/c", "a/b/e/f/g"}
    assert listed("a") == {"a/b/c", "a/bb", "a/c/d", "ab", "a/b/e/f/g"}
    assert listed("a/b/c") == {"a/b/c"}
    assert listed("zzz") == set()
    assert listed("a/zzz/") == set()
    for info in blob_store.list():
        assert info.size == keys[info.key]
        assert info.modified.tzinfo is not None
        assert info.modified.utcoffset() == timedelta(0)
        assert before <= info.modified <= datetime.now(UTC) + timedelta(minutes=5)


def test_list_and_delete_many_past_one_page(blob_store: BlobStore) -> None:
    """1100 objects: more than one S3 list page and one DeleteObjects batch."""
    keys = [f"many/{i % 7}/{i:05d}" for i in range(1100)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: blob_store.put_bytes(k, k.encode()), keys))
    blob_store.put_bytes("other/keep", b"keep")
    if isinstance(blob_store, S3BlobStore):  # the listing really is paginated
        page = blob_store.client.list_objects_v2(Bucket=blob_store.bucket, Prefix="many/")
        assert page["IsTruncated"] and page["KeyCount"] == 1000
    listed = [info.key for info in blob_store.list("many/")]
    assert sorted(listed) == sorted(keys)
    assert len(list(blob_store.list())) == 1101

    blob_store.delete_many(keys)
    assert list(blob_store.list("many/")) == []
    assert [info.key for info in blob_store.list()] == ["other/keep"]


BAD_KEYS = [
    "",
    "/abs",
    "a//b",
    "a/",
    "../up",
    "a/../b",
    "a/./b",
    ".",
    "back\\slash",
    "nul\x00byte",
    "tab\there",
    "new\nline",
    "del\x7f",
    "caf\u00e9",
    "x" * 1025,
    "y" * 256,
    "a/.wbtmp-123",
]


BAD_PREFIXES = ["/a", "a//", "../", "a/./", "a\\b", "\x01", "caf\u00e9"]


def test_bad_keys_are_rejected(blob_store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.write_bytes(b"x")
    calls: list[Callable[[str], object]] = [
        lambda key: blob_store.put_bytes(key, b"x"),
        lambda key: blob_store.put_file(key, source),
        blob_store.get_bytes,
        lambda key: blob_store.get_range(key, 0, 1),
        blob_store.open_stream,
        blob_store.exists,
        blob_store.size,
        blob_store.delete,
        lambda key: blob_store.delete_many(["ok", key]),
    ]
    for key in BAD_KEYS:
        for call in calls:
            with pytest.raises(ValueError):
                call(key)
    for prefix in BAD_PREFIXES:
        with pytest.raises(ValueError):
            list(blob_store.list(prefix))
    assert list(blob_store.list()) == []


def test_good_unusual_keys(blob_store: BlobStore) -> None:
    keys = ["with space", "a-b_c.d~e", "x/..y/z..", "UPPER/lower", "!$&'()*+,;=@"]
    for key in keys:
        blob_store.put_bytes(key, key.encode())
    for key in keys:
        assert blob_store.get_bytes(key) == key.encode()
    assert {info.key for info in blob_store.list()} == set(keys)


def test_large_put_file_and_ranges_across_parts(blob_store: BlobStore, tmp_path: Path) -> None:
    """12 MiB: a multipart upload on S3 (5 MiB threshold and parts in the fixture)."""
    rng = random.Random(7)
    data = rng.randbytes(12 * MiB + 1234)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    blob_store.put_file("big/object", source)
    assert blob_store.size("big/object") == len(data)
    if isinstance(blob_store, S3BlobStore):  # three parts: 5 + 5 + 2 MiB
        head = blob_store.client.head_object(Bucket=blob_store.bucket, Key="big/object")
        assert head["ETag"].strip('"').endswith("-3")
    for boundary in (5 * MiB, 10 * MiB):
        for start, length in ((boundary - 1, 2), (boundary - 1000, 5000), (boundary, 1)):
            assert blob_store.get_range("big/object", start, length) == data[start : start + length]
    assert blob_store.get_range("big/object", 4 * MiB, 7 * MiB) == data[4 * MiB : 11 * MiB]
    assert blob_store.get_range("big/object", len(data) - 10, 10) == data[-10:]
    assert blob_store.get_bytes("big/object") == data


def test_concurrent_overwrites_are_atomic(blob_store: BlobStore) -> None:
    """Readers racing writers of the same key only ever see one whole version."""
    versions = [bytes([i]) * (256 * 1024 + i) for i in range(6)]
    blob_store.put_bytes("hot", versions[0])
    stop = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                seen.append(blob_store.get_bytes("hot"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda v: blob_store.put_bytes("hot", v), versions * 3))
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert seen
    assert all(data in versions for data in seen)
    assert blob_store.get_bytes("hot") in versions


def test_describe(blob_store: BlobStore) -> None:
    text = blob_store.describe()
    if isinstance(blob_store, LocalBlobStore):
        assert text == f"local:{blob_store.root}"
    else:
        assert text.startswith("s3://wb-test-")
        assert "testing-secret-key" not in text and "testing-access-key" not in text


def test_make_blob_store(tmp_path: Path, moto_endpoint: str, s3_bucket: str) -> None:
    local = make_blob_store("local", root=tmp_path / "x")
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path / "x"
    same = make_blob_store("local", root=tmp_path / "x", prefix="s3/only", bucket="ignored")
    assert isinstance(same, LocalBlobStore) and same.root == tmp_path / "x"

    s3 = make_blob_store(
        "s3",
        bucket=s3_bucket,
        prefix="ds",
        endpoint_url=moto_endpoint,
        access_key="a",
        secret_key="b",
        region="us-east-1",
    )
    assert isinstance(s3, S3BlobStore)
    assert s3.describe() == f"s3://{s3_bucket}/ds at {moto_endpoint}"
    s3.put_bytes("k", b"v")
    assert s3.get_bytes("k") == b"v"

    with pytest.raises(ValueError, match="root"):
        make_blob_store("local")
    with pytest.raises(ValueError, match="bucket"):
        make_blob_store("s3", endpoint_url=moto_endpoint)
    with pytest.raises(ValueError, match="secret_key"):
        make_blob_store("s3", bucket="b", access_key="only-half")
    with pytest.raises(ValueError, match="'local' or 's3'"):
        make_blob_store("gcs", bucket="b")
