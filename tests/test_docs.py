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


def test_readme_table_is_current() -> None:
    readme = README.read_text()
    assert docs.render(readme) == readme, "README config table is stale: run `make docs`"


def test_readme_shows_the_two_commands() -> None:
    readme = README.read_text()
    assert "make run" in readme and "make test" in readme
