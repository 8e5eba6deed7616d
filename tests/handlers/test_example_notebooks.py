"""The example notebooks on a user's server: listed, and copied into the user's folder."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from traitlets.config import Config

from jupyter_workbench.examples import examples_folder, list_examples

from ..conftest import TOKEN_OF

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """The examples touch no database: SQLite only."""
    target = tmp_path / "workbench.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


async def call(
    jp_fetch: Callable[..., Any], method: str, *path: str, body: Any = None, user: str = "alice"
) -> tuple[int, Any]:
    payload = (
        None
        if method == "GET"
        else (body if isinstance(body, bytes) else json.dumps(body or {}).encode())
    )
    resp = await jp_fetch(
        "workbench", "examples", *path, method=method, body=payload, raise_error=False,
        headers={"Authorization": f"token {TOKEN_OF[user]}" if user else ""},
    )  # fmt: skip
    return resp.code, json.loads(resp.body) if resp.body else None


async def test_the_examples_are_listed_quickstart_first(jp_fetch: Callable[..., Any]) -> None:
    status, body = await call(jp_fetch, "GET")
    assert status == 200, body
    names = [e["name"] for e in body["items"]]
    assert names == ["quickstart", "datasets", "training"]
    quickstart = body["items"][0]
    assert quickstart["title"] == "Jupyter Workbench quickstart"
    # the first paragraph, as plain text
    assert quickstart["description"].startswith("A project, a versioned dataset, two tracked runs")
    assert (
        "**" not in quickstart["description"]
        and "Python 3 (Workbench)" in quickstart["description"]
    )


async def test_an_example_is_copied_under_a_free_name(
    jp_fetch: Callable[..., Any], jp_root_dir: Path
) -> None:
    status, body = await call(jp_fetch, "POST", "quickstart")
    assert (status, body["path"]) == (201, "quickstart.ipynb"), body
    status, body = await call(jp_fetch, "POST", "quickstart")
    assert (status, body["path"]) == (201, "quickstart-1.ipynb"), body
    copied = json.loads((jp_root_dir / "quickstart-1.ipynb").read_text())
    original = json.loads((REPO / "examples" / "quickstart.ipynb").read_text())
    assert [c["source"] for c in copied["cells"]] == [c["source"] for c in original["cells"]]
    assert copied["metadata"]["kernelspec"]["name"] == "workbench-python3"

    (jp_root_dir / "work").mkdir()
    status, body = await call(jp_fetch, "POST", "training", body={"path": "/work/"})
    assert (status, body["path"]) == (201, "work/training.ipynb"), body
    assert (jp_root_dir / "work" / "training.ipynb").is_file()


class SlowContents(AsyncLargeFileManager):
    """Contents kept somewhere slow (S3, a network drive): a save takes a while to land."""

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return await super().save(model, path)


class TestOnSlowContents:
    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config) -> Config:
        jp_server_config["ServerApp"]["contents_manager_class"] = SlowContents
        return jp_server_config

    async def test_copies_made_at_once_each_get_their_own_name(
        self, jp_fetch: Callable[..., Any], jp_root_dir: Path
    ) -> None:
        """Quick clicks on a launcher card: one notebook each, none overwriting another."""
        results = await asyncio.gather(*(call(jp_fetch, "POST", "quickstart") for _ in range(4)))
        paths = sorted(body["path"] for status, body in results if status == 201)
        assert paths == [
            "quickstart-1.ipynb", "quickstart-2.ipynb", "quickstart-3.ipynb", "quickstart.ipynb"
        ], results  # fmt: skip
        assert sorted(p.name for p in jp_root_dir.glob("*.ipynb")) == paths


@pytest.mark.parametrize(
    ("name", "body", "status", "message"),
    [
        ("nope", {}, 404, "no example named 'nope'"),
        ("..", {}, 404, "no example named '..'"),
        ("quickstart", {"path": "missing"}, 404, "path: no folder 'missing'"),
        ("quickstart", {"path": 3}, 400, "path: must be a folder's path (text)"),
        (
            "quickstart",
            b"{not json",
            400,
            "body: not valid JSON (Expecting property name "
            "enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (
            "quickstart",
            {"path": "a\u0000b"},
            400,
            "path: must not contain the NUL character (\\u0000)",
        ),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    jp_fetch: Callable[..., Any], jp_root_dir: Path, name: str, body: Any, status: int, message: str
) -> None:
    got, answer = await call(jp_fetch, "POST", name, body=body)
    assert (got, answer["message"]) == (status, message)
    assert not list(jp_root_dir.glob("*.ipynb"))  # nothing written


async def test_only_a_user_of_the_server_may_copy(jp_fetch: Callable[..., Any]) -> None:
    status, _ = await call(jp_fetch, "POST", "quickstart", user="")
    assert status == 403


class TestATeamsOwnExamples:
    @pytest.fixture
    def team_examples(self, tmp_path: Path) -> Path:
        folder = tmp_path / "team-examples"
        folder.mkdir()
        heading = ["# Onboarding\n", "\n", "Read [the guide](x.md) first."]
        cells = [{"cell_type": "markdown", "metadata": {}, "source": heading}]
        notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        (folder / "onboarding.ipynb").write_text(json.dumps(notebook))
        (folder / "broken.ipynb").write_text("{not a notebook")
        odd = {**notebook, "metadata": {"workbench": "x"}, "cells": [{"cell_type": "markdown",
               "source": ["# Odd\n", 3]}]}  # fmt: skip
        (folder / "odd.ipynb").write_text(json.dumps(odd))
        (folder / "untitled.ipynb").write_text(json.dumps({**notebook, "cells": []}))
        return folder

    @pytest.fixture
    def jp_server_config(self, jp_server_config: Config, team_examples: Path) -> Config:
        jp_server_config["Workbench"]["examples_dir"] = str(team_examples)
        return jp_server_config

    async def test_an_administrator_offers_a_team_s_own_examples(
        self, jp_fetch: Callable[..., Any], team_examples: Path
    ) -> None:
        status, body = await call(jp_fetch, "GET")
        assert status == 200
        # a file that is not a notebook is left out; one without a heading is named by its
        # file; odd metadata or cells do not hide the others
        assert body["items"] == [
            {"name": "odd", "title": "Odd", "description": ""},
            {"name": "onboarding", "title": "Onboarding", "description": "Read the guide first."},
            {"name": "untitled", "title": "untitled", "description": ""},
        ]
        assert list_examples(examples_folder(str(team_examples)))[1].name == "onboarding"


def test_the_examples_folder_may_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from jupyter_workbench.settings import Workbench

    monkeypatch.setenv("WORKBENCH_EXAMPLES_DIR", str(tmp_path))
    assert Workbench().examples_dir == str(tmp_path)
    assert examples_folder(Workbench().examples_dir) == tmp_path
    assert list_examples(tmp_path) == []  # an empty folder offers nothing
