"""The media type a dataset file is listed with: from its name's suffixes."""

from __future__ import annotations

import pytest

from jupyter_workbench.core.dataset_paths import media_type


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data/train.parquet", "application/vnd.apache.parquet"),
        ("data/TRAIN.CSV", "text/csv"),
        ("notes/README.md", "text/markdown"),
        ("images/cat.PNG", "image/png"),
        ("images/dog.jpeg", "image/jpeg"),
        ("archive/v2.tar.gz", "application/x-tar"),
        ("a.b.c/config.json", "application/json"),
        ("plain/LICENSE", "application/octet-stream"),  # no suffix
        ("dir.with.dots/file", "application/octet-stream"),  # the folder's dots do not count
        ("home/.bashrc", "application/octet-stream"),  # a leading dot is not a suffix
        ("home/..hidden.txt", "text/plain"),
        ("weights.unknownext", "application/octet-stream"),
    ],
)
def test_media_type_comes_from_the_name(path: str, expected: str) -> None:
    assert media_type(path) == expected
    assert media_type(path) == expected  # and again, from the cache
