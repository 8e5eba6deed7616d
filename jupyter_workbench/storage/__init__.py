"""Blob storage (local folder or S3) and content-defined chunking for versioned datasets."""

from __future__ import annotations

from pathlib import Path

from .blobstore import (
    BlobCorrupt,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    StorageError,
    validate_key,
    validate_prefix,
)
from .chunking import (
    AVG_CHUNK,
    MAX_CHUNK,
    MIN_CHUNK,
    WHOLE_BELOW,
    Chunk,
    FileDigest,
    blake3_hex,
    chunk_bytes,
    chunk_file,
    chunk_stream,
)
from .local import LocalBlobStore
from .s3 import S3BlobStore

__all__ = [
    "AVG_CHUNK",
    "MAX_CHUNK",
    "MIN_CHUNK",
    "WHOLE_BELOW",
    "BlobCorrupt",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "Chunk",
    "FileDigest",
    "LocalBlobStore",
    "S3BlobStore",
    "StorageError",
    "blake3_hex",
    "chunk_bytes",
    "chunk_file",
    "chunk_stream",
    "make_blob_store",
    "validate_key",
    "validate_prefix",
]


def make_blob_store(
    kind: str,
    *,
    root: Path | None = None,
    bucket: str = "",
    prefix: str = "",
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
) -> BlobStore:
    """The blob store of ``kind``: 'local' (needs ``root``, the folder; the S3 arguments,
    ``prefix`` included, are ignored) or 's3' (needs ``bucket``; the rest is optional, and
    missing credentials or region fall back to boto3's usual environment/config lookup)."""
    if kind == "local":
        if root is None:
            raise ValueError("a 'local' blob store needs root (the folder to keep objects in)")
        return LocalBlobStore(Path(root))
    if kind == "s3":
        if not bucket:
            raise ValueError("an 's3' blob store needs bucket (the S3 bucket name)")
        return S3BlobStore(
            bucket,
            prefix=prefix,
            endpoint_url=endpoint_url or None,
            access_key=access_key or None,
            secret_key=secret_key or None,
            region=region or None,
        )
    raise ValueError(f"unknown blob store kind {kind!r}: use 'local' or 's3'")
