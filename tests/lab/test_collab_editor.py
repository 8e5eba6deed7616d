"""Two users in two browsers co-edit a model card in JupyterLab; a third, a viewer, cannot type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from jupyter_workbench.core import experiments
from jupyter_workbench.core.context import Identity
from jupyter_workbench.db.models import Project
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench

from .conftest import OUTPUT, Lab, in_chromium
from .test_lab_ui import console_error

EDITOR = ".jp-WorkbenchDocument .cm-content"


def _call(lab: Lab, user: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"token {lab.user_tokens[user]}"}
    r = requests.request(method, lab.api(path), json=body, headers=headers, timeout=30)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def _record_model(lab: Lab, tmp_path: Path, slug: str, name: str) -> None:
    """The project's registered model (this lab runs no MLflow: recorded as the proxy does)."""
    service = WorkbenchService(
        Workbench(database_url=lab.database_url, data_dir=str(tmp_path / "seed"))
    )
    try:

        def record(s: Any, ctx: Any) -> None:
            project = s.scalar(select(Project).where(Project.slug == slug))
            experiments.record_model(s, ctx, project, name)

        service.call(Identity("alice", "alice"), record, write=True)
    finally:
        service.close()


# the document's text as the editor shows it, without collaborators' carets and name labels
TEXT_JS = f"""() => [...document.querySelectorAll('{EDITOR} .cm-line')].map(line => {{
    const copy = line.cloneNode(true);
    copy.querySelectorAll('.cm-ySelectionCaret, .cm-widgetBuffer').forEach(n => n.remove());
    return copy.textContent.replace(/\\u2060/g, '');
}}).join('\\n')"""


def _text(page: Any) -> str:
    return str(page.evaluate(TEXT_JS))


@pytest.mark.slow
def test_two_browsers_edit_a_model_card_together(team_lab: Lab, tmp_path: Path) -> None:
    lab = team_lab
    for user in ("bob", "carol"):
        _call(lab, user, "GET", "me")
    slug = _call(lab, "alice", "POST", "projects", {"name": "Vision"})["slug"]
    _call(lab, "alice", "POST", f"projects/{slug}/members", {"user": "bob", "role": "editor"})
    _call(lab, "alice", "POST", f"projects/{slug}/members", {"user": "carol", "role": "viewer"})
    _record_model(lab, tmp_path, slug, "resnet")
    doc = _call(lab, "alice", "POST", f"projects/{slug}/documents",
                {"kind": "model-card", "ref": "resnet"})  # fmt: skip
    errors: list[str] = []
    seen: list[str] = []

    def scenario(chromium: Any) -> None:
        pages = {}
        for user in ("alice", "bob", "carol"):
            context = chromium.new_context(viewport={"width": 1100, "height": 700})
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            # a shareable link: ?workbench-document=ID opens the document
            page.goto(f"{lab.url}/lab?token={lab.user_tokens[user]}"
                      f"&workbench-document={doc['id']}")  # fmt: skip
            page.wait_for_selector(EDITOR)
            pages[user] = page
        alice, bob, carol = pages["alice"], pages["bob"], pages["carol"]

        alice.click(EDITOR)
        alice.keyboard.type("# ResNet\nAlice: trained on clicks v3.")
        bob.wait_for_function(
            f"document.querySelector('{EDITOR}').innerText.includes('trained on clicks v3.')"
        )
        bob.click(EDITOR)
        bob.keyboard.press("Control+End")
        bob.keyboard.type("\nBob: top-1 91%.")
        alice.wait_for_function(
            f"document.querySelector('{EDITOR}').innerText.includes('Bob: top-1 91%.')"
        )
        # each sees the other by name: in the document's bar and on the other's cursor
        alice.wait_for_selector(".jp-WorkbenchDocument-person[data-username=bob]")
        bob.wait_for_selector(".jp-WorkbenchDocument-person[data-username=alice]")
        assert "bob" in alice.inner_text(".jp-WorkbenchDocument-person[data-username=bob]")
        alice.wait_for_selector(".cm-ySelectionInfo:text-is('bob')", state="attached")
        bob.wait_for_selector(".cm-ySelectionInfo:text-is('alice')", state="attached")
        OUTPUT.mkdir(exist_ok=True)
        alice.screenshot(path=str(OUTPUT / "collab-editor.png"))

        # carol, a viewer: she sees it all live, marked read-only, and cannot change a byte
        carol.wait_for_function(
            f"document.querySelector('{EDITOR}').innerText.includes('Bob: top-1 91%.')"
        )
        assert "read-only" in carol.inner_text(".jp-WorkbenchDocument-status")
        assert carol.get_attribute(EDITOR, "contenteditable") == "false"
        carol.click(EDITOR)
        carol.keyboard.type("CAROL WAS HERE")
        alice.keyboard.type(" Done.")
        for page in (carol, bob):  # each copy converges in its own time
            page.wait_for_function(
                f"document.querySelector('{EDITOR}').innerText.includes('Done.')"
            )
        assert "CAROL" not in _text(carol) and "CAROL" not in _text(alice)
        assert _text(alice) == _text(bob) == _text(carol)
        seen.append(_text(alice))
        # the text becomes the model's card (a new card revision); viewers have no such button
        assert carol.locator(".jp-WorkbenchDocument-publish").count() == 0
        alice.click(".jp-WorkbenchDocument-publish")
        alice.wait_for_selector(".jp-WorkbenchDocument-note:text('card revision 1')")
        # the rendered preview, beside the text, follows every collaborator's edits
        alice.click(".jp-WorkbenchDocument-previewToggle")
        alice.wait_for_selector(".jp-WorkbenchDocument-preview h1:text('ResNet')")
        assert "Done." in alice.inner_text(".jp-WorkbenchDocument-preview")
        bob.keyboard.type(" (validation)")
        alice.wait_for_function(
            "document.querySelector('.jp-WorkbenchDocument-preview').innerText"
            ".includes('91%. (validation)')"
        )
        alice.screenshot(path=str(OUTPUT / "collab-preview.png"))
        seen.append(_text(alice))

    in_chromium(scenario)
    assert not errors, errors
    text = _call(lab, "carol", "GET", f"documents/{doc['id']}")["text"]
    assert text == seen[-1]
    assert text == "# ResNet\nAlice: trained on clicks v3. Done.\nBob: top-1 91%. (validation)"
    # the model was recorded here but never reached this lab's own MLflow: the sidebar's list
    # (which the pages loaded) still answers, marking it
    models = _call(lab, "alice", "GET", f"projects/{slug}/models")["items"]
    assert [(m["name"], m["missing"]) for m in models] == [("resnet", True)]


def test_an_editor_demoted_mid_session_is_told_at_once_and_edits_when_promoted(
    team_lab: Lab,
) -> None:
    lab = team_lab
    _call(lab, "bob", "GET", "me")
    slug = _call(lab, "alice", "POST", "projects", {"name": "Demote"})["slug"]
    _call(lab, "alice", "POST", f"projects/{slug}/members", {"user": "bob", "role": "editor"})
    doc = _call(lab, "alice", "POST", f"projects/{slug}/documents", {"kind": "readme"})
    errors: list[str] = []

    def scenario(chromium: Any) -> None:
        page = chromium.new_page(viewport={"width": 1100, "height": 700})
        page.set_default_timeout(30_000)
        page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
        page.on("console", lambda msg: "Permission denied" in msg.text and errors.append(msg.text))
        page.goto(f"{lab.url}/lab?token={lab.user_tokens['bob']}&workbench-document={doc['id']}")
        page.wait_for_selector(".jp-WorkbenchDocument-status[data-status=connected]")
        assert page.inner_text(".jp-WorkbenchDocument-status") == "Live"
        page.click(EDITOR)
        page.keyboard.type("bob was here")
        page.wait_for_function(
            f"document.querySelector('{EDITOR}').innerText.includes('bob was here')"
        )
        # demoted: told at once, the editor turns read-only before he types, and takes nothing
        _call(lab, "alice", "PATCH", f"projects/{slug}/members/bob", {"role": "viewer"})
        page.wait_for_selector(f"{EDITOR}[contenteditable=false]")
        assert "read-only" in page.inner_text(".jp-WorkbenchDocument-status")
        page.keyboard.type("more")
        assert "more" not in _text(page)
        # promoted again: the editor turns writable, and what he types is shared
        _call(lab, "alice", "PATCH", f"projects/{slug}/members/bob", {"role": "editor"})
        page.wait_for_selector(f"{EDITOR}[contenteditable=true]")
        assert page.inner_text(".jp-WorkbenchDocument-status") == "Live"
        page.click(EDITOR)
        page.keyboard.press("Control+End")
        page.keyboard.type(" again")
        for _ in range(100):
            if "again" in _call(lab, "alice", "GET", f"documents/{doc['id']}")["text"]:
                break
            page.wait_for_timeout(100)

    in_chromium(scenario)
    assert not errors, errors
    text = _call(lab, "alice", "GET", f"documents/{doc['id']}")["text"]
    assert "bob was here" in text and text.endswith(" again") and "more" not in text
