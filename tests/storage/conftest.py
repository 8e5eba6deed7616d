"""Blob store fixtures: every ``blob_store`` test runs on a local folder and on S3.

S3 is moto in server mode on 127.0.0.1 (one server per session): the store talks HTTP to it
through the same boto3 code as in production, with a fresh bucket per test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jupyter_workbench.storage import BlobStore, LocalBlobStore, S3BlobStore

from ..conftest import S3_ACCESS_KEY as ACCESS_KEY
from ..conftest import S3_REGION as REGION
from ..conftest import S3_SECRET_KEY as SECRET_KEY

MiB = 1024 * 1024


def make_s3_store(endpoint: str, bucket: str, **kwargs: Any) -> S3BlobStore:
    kwargs.setdefault("multipart_threshold", 5 * MiB)
    kwargs.setdefault("multipart_chunksize", 5 * MiB)  # S3's smallest part size
    return S3BlobStore(
        bucket,
        endpoint_url=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region=REGION,
        **kwargs,
    )


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """The same tests on a local folder and on an S3 bucket (moto server)."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    endpoint: str = request.getfixturevalue("moto_endpoint")
    bucket: str = request.getfixturevalue("s3_bucket")
    return make_s3_store(endpoint, bucket)
