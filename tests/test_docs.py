"""Every setting has help text and appears, current, in the README's configuration table."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_workbench import docs

README = Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize("cls", docs.CONFIGURABLES, ids=lambda c: c.__name__)
def test_every_setting_has_help(cls: type) -> None:
    settings = docs.own_settings(cls)
    assert settings, f"{cls.__name__} has no settings?"
    missing = [name for name, trait in settings.items() if len(str(trait.help).strip()) < 15]
    assert not missing, f"settings without real help text: {missing}"


def test_readme_lists_every_setting() -> None:
    readme = README.read_text()
    for cls in docs.CONFIGURABLES:
        for name in docs.own_settings(cls):
            assert f"`c.{cls.__name__}.{name}`" in readme, f"{cls.__name__}.{name} not in README"


@pytest.mark.parametrize("name", docs.DOCUMENTS)
def test_generated_tables_are_current(name: str) -> None:
    text = (README.parent / name).read_text()
    assert docs.render(text) == text, f"{name} has stale generated tables: run `make docs`"


def test_api_docs_list_every_route() -> None:
    from jupyter_workbench.handlers.routes import ROUTES

    text = (README.parent / "docs" / "api.md").read_text()
    for route in ROUTES:
        for method in route.endpoints():
            assert f"| {method.upper()} | `{route.template}` |" in text


def test_readme_shows_the_two_commands() -> None:
    readme = README.read_text()
    assert "make run" in readme and "make test" in readme
