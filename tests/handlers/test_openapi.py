"""The OpenAPI document covers every route, and a live server honours it (schemathesis)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from jupyter_workbench.handlers.openapi import build_spec
from jupyter_workbench.handlers.routes import ROUTES


def test_every_route_and_method_is_documented() -> None:
    spec = build_spec("/")
    for route in ROUTES:
        assert route.template in spec["paths"], f"{route.template} missing from openapi.json"
        documented = set(spec["paths"][route.template])
        assert documented == set(route.endpoints()), route.template
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op["summary"], f"{method} {path} has no summary"
            assert "x-workbench-action" in op
            for code in ("400", "401", "404"):
                assert code in op["responses"], f"{method} {path} does not document {code}"


async def test_served_document_is_the_generated_one(api, jp_base_url) -> None:
    r = await api(None).get("openapi.json")  # public: no token needed
    assert r.status == 200
    assert r.json == build_spec(jp_base_url)
    assert r.json["openapi"].startswith("3.1")


async def test_the_api_root_says_where_to_start(api, jp_base_url) -> None:
    from jupyter_workbench import __version__

    for path in ("", "/"):  # the address the start banners print, with and without the slash
        r = await api(None).get(path)
        assert r.status == 200, r
        assert r.json["version"] == __version__
        assert r.json["openapi"].endswith(f"{jp_base_url}workbench/api/v1/openapi.json")
    assert (await api(None).get("no-such-thing")).status == 404


@pytest.mark.slow
# on PostgreSQL only: the handlers and their checks are the same on both backends, and
# PostgreSQL is the stricter (NUL characters, integer ranges); a run takes a minute or more
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)],
                         indirect=True)  # fmt: skip
def test_schemathesis_finds_nothing(live_server) -> None:
    """Fuzz every operation: no 5xx, only documented statuses, bodies match their schemas,
    invalid input rejected, 405s with an Allow header ...

    ``positive_data_acceptance`` is left out on purpose: schema-valid input may still be
    refused on semantic grounds the schema cannot express (an unknown username, a stale
    If-Match, an opaque cursor that this API did not issue) with a 4xx that names the field.
    """
    root, token, log, _proc = live_server
    base = f"{root}/workbench/api/v1"
    create = urllib.request.Request(
        f"{base}/projects",
        data=json.dumps({"name": "fuzz", "visibility": "public"}).encode(),
        headers={"Authorization": f"token {token}"},
        method="POST",
    )
    urllib.request.urlopen(create, timeout=10).close()  # a little data to meet
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    # invalid input may also be refused as too large (413): a body over max_request_bytes is
    # refused before it is read
    config = log.parent / "schemathesis.toml"
    config.write_text(
        "[checks.negative_data_rejection]\n"
        'expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", '
        '"422", "428", "429", "5xx"]\n'
    )
    result = subprocess.run(
        [
            st, "--config-file", str(config), "run", f"{base}/openapi.json",
            "--header", f"Authorization: token {token}",
            "--checks", "all",
            "--exclude-checks", "positive_data_acceptance",
            "--max-examples", os.environ.get("WORKBENCH_FUZZ_EXAMPLES", "8"),
            "--workers", "2",
            "--seed", "1",
            "--request-timeout", "30",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=log.parent,
    )  # fmt: skip
    assert result.returncode == 0, (
        result.stdout[-6000:] + "\n--- server log ---\n" + log.read_text()[-3000:]
    )
