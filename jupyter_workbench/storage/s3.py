"""A blob store in an S3 bucket (AWS, or any S3-compatible endpoint such as MinIO)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from .blobstore import (
    BlobCorrupt,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    StorageError,
    check_range,
    validate_key,
    validate_prefix,
)

DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_BAD_RANGE = {"InvalidRange", "416"}


class S3BlobStore(BlobStore):
    """Objects under ``prefix`` in ``bucket``, through boto3.

    Requests are retried with jittered exponential backoff (botocore "standard" mode). As in
    botocore's ``Config(retries={"max_attempts": n})``, ``max_attempts`` counts the retries
    after the first try, so a request is sent at most ``max_attempts + 1`` times. A GET whose
    body breaks off midway (which botocore does not retry) is sent again as often. ``put_file``
    uses a multipart upload above ``multipart_threshold`` bytes (parts of
    ``multipart_chunksize``; S3 wants at least 5 MiB per part). An ``endpoint_url`` means an
    S3-compatible service: path-style addressing is used there.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        multipart_threshold: int = 64 * 1024 * 1024,
        multipart_chunksize: int = 16 * 1024 * 1024,
        max_attempts: int = 8,
    ) -> None:
        if not bucket:
            raise ValueError("S3BlobStore needs a bucket name")
        if bool(access_key) != bool(secret_key):
            missing = "secret_key" if access_key else "access_key"
            raise ValueError(
                f"S3 credentials need both access_key and secret_key ({missing} is missing)"
            )
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
        )
        self.client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=8,
            use_threads=True,
        )

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- writing ------------------------------------------------------------------------
    def put_file(self, key: str, path: Path) -> None:
        full = self._key(key)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        with self._errors(key):
            self.client.upload_file(str(path), self.bucket, full, Config=self.transfer_config)

    def put_bytes(self, key: str, data: bytes) -> None:
        full = self._key(key)
        with self._errors(key):
            self.client.put_object(Bucket=self.bucket, Key=full, Body=bytes(data))

    # -- reading ------------------------------------------------------------------------
    def get_range(self, key: str, start: int, length: int) -> bytes:
        check_range(start, length)
        full = self._key(key)
        if length == 0:
            if not self.exists(key):
                raise BlobNotFound(f"no blob {key!r} in {self.describe()}")
            return b""
        try:
            data = self._get(key, full, Range=f"bytes={start}-{start + length - 1}")
        except ClientError as exc:
            if _code(exc) in _BAD_RANGE:
                raise BlobCorrupt(
                    f"blob {key!r} is too short: wanted {length} bytes at {start}"
                ) from exc
            raise
        if len(data) != length:
            raise BlobCorrupt(
                f"blob {key!r} is too short: wanted {length} bytes at {start}, got {len(data)}"
            )
        return data

    def get_bytes(self, key: str) -> bytes:
        return self._get(key, self._key(key))

    def _get(self, key: str, full: str, **kwargs: Any) -> bytes:
        """GET and read the body, again when the body breaks off (botocore retries only the
        request). A ClientError about the range is re-raised for get_range to map."""
        for attempt in range(self.max_attempts + 1):
            try:
                with self._errors(key, keep=_BAD_RANGE):
                    response = self.client.get_object(Bucket=self.bucket, Key=full, **kwargs)
                    body = response["Body"]
                    try:
                        return cast(bytes, body.read())
                    finally:
                        body.close()
            except StorageError as exc:
                if attempt == self.max_attempts or not _is_broken_body(exc.__cause__):
                    raise
        raise AssertionError("unreachable")

    def open_stream(self, key: str) -> BinaryIO:
        full = self._key(key)
        with self._errors(key):
            response = self.client.get_object(Bucket=self.bucket, Key=full)
        return cast(BinaryIO, response["Body"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        full = self._key(key)
        with self._errors(key):
            response = self.client.head_object(Bucket=self.bucket, Key=full)
        return int(response["ContentLength"])

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete with DeleteObjects, 1000 keys a request; missing keys are not an error."""
        batch: list[dict[str, str]] = []
        for key in keys:
            batch.append({"Key": self._key(key)})
            if len(batch) == DELETE_BATCH:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        with self._errors(batch[0]["Key"]):
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
        errors = [e for e in response.get("Errors", []) if e.get("Code") not in _NOT_FOUND]
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} of {len(batch)} objects from "
                f"{self.describe()}, e.g. {first.get('Key')}: {first.get('Code')} "
                f"{first.get('Message', '')}".rstrip()
            )

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        validate_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        full_prefix = f"{self.prefix}/{prefix}" if self.prefix else prefix
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors(prefix or "/"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for item in page.get("Contents", []):
                    yield BlobInfo(
                        key=item["Key"][strip:],
                        size=int(item["Size"]),
                        modified=item["LastModified"].astimezone(UTC),
                    )

    # -- errors -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, key: str, keep: set[str] | frozenset[str] = frozenset()) -> Iterator[None]:
        """Map botocore errors: not found -> BlobNotFound, anything else -> StorageError
        (ClientErrors whose code is in ``keep`` pass through)."""
        try:
            yield
        except ClientError as exc:
            code = _code(exc)
            if code in keep:
                raise
            if code in _NOT_FOUND:
                raise BlobNotFound(f"no blob {key!r} in {self.describe()}") from exc
            if code == "NoSuchBucket":
                _fail(f"bucket {self.bucket!r} does not exist ({self.describe()})", exc)
            _fail(f"S3 request for {key!r} failed ({self.describe()}): {exc}", exc)
        except (BotoCoreError, OSError) as exc:
            if isinstance(exc, FileNotFoundError) and exc.filename:
                raise  # the caller's source file
            _fail(f"S3 request for {key!r} failed ({self.describe()}): {exc}", exc)


def _fail(message: str, cause: BaseException) -> NoReturn:
    raise StorageError(message) from cause


def _code(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if not code:
        code = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code


def _is_broken_body(exc: BaseException | None) -> bool:
    """A connection that broke while the body was read (worth another GET)."""
    return isinstance(
        exc, ResponseStreamingError | IncompleteReadError | ReadTimeoutError | ConnectionClosedError
    )
