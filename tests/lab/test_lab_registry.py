"""The model registry and the activity in a real JupyterLab with a real MLflow: a run that read a
dataset, its model registered; an editor asks for "production" and edits the card, an admin (in a
second browser) approves; both see the alias, the lineage and the events; a folder of the file
browser committed as a dataset with "Commit to dataset..."."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from jupyter_workbench.client import Client

from .conftest import OUTPUT, Lab, in_chromium, show_sidebar_panel, start_lab
from .test_lab_ui import PANEL, console_error

MODEL = ".jp-WorkbenchModel"
ACTIVITY = ".jp-WorkbenchActivity"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "registry.png"
# the deliberate refusals, each checked in the page: carol approving her own request (403),
# bob saving a card that alice changed meanwhile (412)
EXPECTED = ("/approve 403", "/card 412", "/chunks ")  # (the dropped batch: no status)


@pytest.fixture
def registry_lab(tmp_path: Path, mlflow_config: dict[str, str]) -> Iterator[Lab]:
    """alice, bob and carol share a ``jupyter lab`` with the workbench and a real MLflow."""
    yield from start_lab(tmp_path, ["alice", "bob", "carol"], {"Workbench": mlflow_config})


def _call(lab: Lab, user: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
    headers = {"Authorization": f"token {lab.user_tokens[user]}", **kw.pop("headers", {})}
    r = requests.request(method, lab.api(path), json=body, headers=headers, timeout=60, **kw)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def seed(lab: Lab, tmp_path: Path) -> tuple[str, str]:
    """Project "Churn" (alice owns it, bob edits, carol administers), dataset clicks v1, a run
    that read it, and model churn-clf v1 registered from that run: (slug, run id)."""
    for user in ("alice", "bob", "carol"):
        _call(lab, user, "GET", "me")
        # no "Jupyter news?" toast over the screenshots
        r = requests.put(
            f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
            json={"raw": '{"fetchNews": "false"}'},
            headers={"Authorization": f"token {lab.user_tokens[user]}"}, timeout=30,
        )  # fmt: skip
        assert r.status_code == 204, r.text
    slug = _call(lab, "alice", "POST", "projects", {"name": "Churn"})["slug"]
    _call(lab, "alice", "POST", f"projects/{slug}/members", {"user": "bob", "role": "editor"})
    _call(lab, "alice", "POST", f"projects/{slug}/members", {"user": "carol", "role": "admin"})
    folder = tmp_path / "clicks"
    folder.mkdir()
    (folder / "clicks.csv").write_text("user,clicks\n1,3\n2,5\n")
    client = Client(lab.url, lab.user_tokens["alice"], project=slug)
    try:
        client.datasets.commit("clicks", folder, message="first export", progress=False)
        with client.run(slug, "training", params={"lr": "0.1"}, name="baseline") as run:
            client.datasets.get("clicks", "v1")  # recorded as read by the run
            run.log({"auc": 0.91}, step=0)
            run.log_text("weights", "model/weights.txt")
        run_id = run.run_id
    finally:
        client.close()
    _call(lab, "alice", "POST", f"projects/{slug}/models/churn-clf/versions", {"run_id": run_id})
    return slug, run_id


def open_lab(chromium: Any, lab: Lab, user: str, errors: list[str]) -> Any:
    context = chromium.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{lab.url}/lab?token={lab.user_tokens[user]}")
    page.wait_for_selector("#jp-main-dock-panel")
    return page


def show_panel(page: Any) -> None:
    """Open the workbench sidebar (its tab toggles it: a restored layout may show it already)."""
    show_sidebar_panel(page, PANEL)
    page.wait_for_selector(f"{PANEL}[data-loaded=true]")


def open_model(page: Any) -> Any:
    show_panel(page)
    item = page.locator(f"{PANEL} li.jp-WorkbenchPanel-model[data-model=churn-clf]")
    item.wait_for()
    item.click()
    view = page.locator(f"{MODEL}[data-loaded=true]")
    view.wait_for()
    return view


@pytest.mark.slow
def test_promotion_request_approval_card_and_activity(registry_lab: Lab, tmp_path: Path) -> None:
    lab = registry_lab
    slug, run_id = seed(lab, tmp_path)
    exports = tmp_path / "notebooks" / "exports"
    exports.mkdir()
    (exports / "scores.csv").write_text("user,score\n1,0.2\n2,0.9\n" * 20000)
    (exports / "sub").mkdir()
    (exports / "sub" / "notes.txt").write_text("scored with churn-clf v1\n")
    errors: list[str] = []

    def change_card_behind_bobs_back() -> None:
        card = requests.get(
            lab.api(f"projects/{slug}/models/churn-clf/card"),
            headers={"Authorization": f"token {lab.user_tokens['alice']}"}, timeout=30,
        )  # fmt: skip
        _call(lab, "alice", "PUT", f"projects/{slug}/models/churn-clf/card",
              {"markdown": "# Churn classifier\n\nAlice's version.", "fields": {}},
              headers={"If-Match": card.headers["ETag"]})  # fmt: skip

    def scenario(chromium: Any) -> None:
        OUTPUT.mkdir(exist_ok=True)
        bob = open_lab(chromium, lab, "bob", errors)

        # the launcher's "Workbench" card opens the sidebar and the activity
        card = bob.locator(".jp-LauncherCard[title^='Open the Workbench sidebar']")
        card.wait_for()
        assert card.locator(".jp-LauncherCard-label").inner_text().strip() == "Workbench"
        card.click()
        bob.locator(f"{ACTIVITY}[data-loaded=true]").wait_for()
        bob.wait_for_selector(f"{PANEL}[data-loaded=true]")

        # bob, an editor: the model's versions with their run and training data
        view = open_model(bob)
        row = view.locator("tr[data-version='1']")
        row.wait_for()
        assert run_id[:8] in row.inner_text()
        assert "clicks@v1" in row.locator(".jp-WorkbenchModel-lineage").inner_text()
        assert view.locator(".jp-WorkbenchModel-alias").count() == 0
        assert "No pending request" in view.inner_text()

        # he asks for v1 to become production: pending, with no Approve button for him
        request = view.locator("form.jp-WorkbenchModel-request")
        request.locator("select[name=version]").select_option("1")
        request.locator("select[name=alias]").select_option("production")
        request.locator("input[name=note]").fill("AUC 0.91 on the holdout")
        request.get_by_role("button", name="Request promotion").click()
        pending = view.locator(".jp-WorkbenchModel-promotion")
        pending.wait_for()
        assert "v1 → production, asked by bob" in pending.inner_text()
        assert "AUC 0.91" in pending.inner_text()
        assert pending.get_by_role("button").count() == 0

        # the card: fields and markdown, previewed by JupyterLab's markdown renderer, saved
        card_form = view.locator("form.jp-WorkbenchModel-card")
        card_form.locator("textarea[name=intended_use]").fill("Rank accounts by churn risk")
        markdown = card_form.locator("textarea[name=markdown]")
        markdown.fill("# Churn classifier\n\nPredicts **churn** from clicks.")
        preview = view.locator(".jp-WorkbenchModel-preview")
        preview.locator("h1", has_text="Churn classifier").wait_for()
        assert preview.locator("strong", has_text="churn").is_visible()
        card_form.get_by_role("button", name="Save card").click()
        view.locator(".jp-WorkbenchModel-cardNote", has_text="Saved as revision 1").wait_for()
        bob.screenshot(path=str(OUTPUT / "lab-registry-request.png"))

        # alice saves the card meanwhile: bob's next save is refused, his text kept
        change_card_behind_bobs_back()
        markdown.fill("# Churn classifier\n\nBob's second take.")
        card_form.get_by_role("button", name="Save card").click()
        alert = card_form.locator("[role=alert]")
        alert.wait_for(state="visible")
        assert "Someone saved the card while you were editing it" in alert.inner_text()
        assert markdown.input_value().endswith("Bob's second take.")
        card_form.get_by_role("button", name="Reload").click()
        bob.wait_for_function(
            f"document.querySelector('{MODEL} textarea[name=markdown]').value"
            '.includes("Alice\'s version")'
        )

        # "Edit together": the card's shared editor, starting with the card's text
        card_form.get_by_role("button", name="Edit together").click()
        shared = bob.locator(".jp-WorkbenchDocument .cm-content")
        shared.filter(has_text="Alice's version.").wait_for()
        bob.click(".lm-DockPanel-tabBar [data-id='jp-workbench-model-churn/churn-clf']")
        view.wait_for(state="visible")

        # carol, an admin, in another browser: the request waits for her in her activity
        carol = open_lab(chromium, lab, "carol", errors)
        show_panel(carol)
        # ... and in JupyterLab's notification centre, whose "Show" opens the activity
        carol.click(".jp-Notification-Status")
        center = carol.locator(".jp-Notification-Center")
        note = center.locator(".jp-Notification-List-Item", has_text="bob asks to promote")
        note.wait_for()
        note.get_by_role("button", name="Show").click()
        carol.click(".jp-Notification-Status")  # closes the centre
        center.wait_for(state="hidden")
        waiting = carol.locator(
            f"{ACTIVITY} li.jp-WorkbenchActivity-notification[data-kind=promotion]"
        )
        waiting.wait_for()
        assert "bob asks to promote churn-clf v1 to production in Churn" in waiting.inner_text()
        assert "AUC 0.91" in waiting.inner_text()
        carol.screenshot(path=str(OUTPUT / "lab-activity-waiting.png"))
        # "Open model" takes her to it; she approves; the alias is on the version
        waiting.get_by_role("button", name="Open model").click()
        cview = carol.locator(f"{MODEL}[data-loaded=true]")
        cview.wait_for()
        cpending = cview.locator(".jp-WorkbenchModel-promotion[data-request]")
        cpending.wait_for()
        cpending.get_by_role("button", name="Approve v1 as production").click()
        cview.locator(".jp-WorkbenchModel-aliases li[data-alias=production]").wait_for()
        assert "production → v1" in cview.locator(".jp-WorkbenchModel-aliases").inner_text()
        assert "production" in cview.locator("tr[data-version='1']").inner_text()
        cview.locator(".jp-WorkbenchModel-promotion").wait_for(state="detached")
        carol.screenshot(path=str(OUTPUT / "lab-registry-approved.png"))
        DOCS_IMAGE.parent.mkdir(exist_ok=True)
        carol.screenshot(path=str(DOCS_IMAGE))

        # her own request she cannot approve: the server's word shows in the view
        crequest = cview.locator("form.jp-WorkbenchModel-request")
        crequest.locator("select[name=alias]").select_option("champion")
        crequest.get_by_role("button", name="Request promotion").click()
        cview.get_by_role("button", name="Approve v1 as champion").click()
        refusal = cview.locator(".jp-WorkbenchModel-section [role=alert]").filter(
            has_text="another admin must decide it"
        )
        refusal.wait_for(state="visible")

        # bob asks for "prod" too; carol rejects it: no alias moves
        request.locator("select[name=alias]").select_option("prod")
        request.get_by_role("button", name="Request promotion").click()
        view.locator(".jp-WorkbenchModel-promotion", has_text="v1 → prod,").wait_for()
        cview.get_by_role("button", name="Reload the model").click()
        cview.get_by_role("button", name="Reject v1 as prod").click()
        cview.get_by_role("button", name="Reject v1 as prod").wait_for(state="detached")
        assert "prod →" not in cview.locator(".jp-WorkbenchModel-aliases").inner_text()

        # bob's reload shows the alias too; the sidebar lists it
        view.get_by_role("button", name="Reload the model").click()
        view.locator(".jp-WorkbenchModel-aliases li[data-alias=production]").wait_for()
        bob.click(f"{PANEL} .jp-WorkbenchPanel-refresh")
        bob.locator(f"{PANEL} li[data-model=churn-clf]", has_text="production: v1").wait_for()

        # activity: carol (the project's admin) sees bob's request and her approval; nothing
        # waits for her any more
        carol.click(f"{PANEL} .jp-WorkbenchPanel-activity")
        activity = carol.locator(f"{ACTIVITY}[data-loaded=true]")
        activity.wait_for()
        activity.locator(".jp-WorkbenchActivity-waiting").wait_for(state="hidden")
        asked = activity.locator(
            "li[data-action='model.promotion_request']", has_text="v1 to production"
        )
        asked.wait_for()
        assert "bob" in asked.inner_text()
        rejected = activity.locator("li[data-action='model.promotion_rejected']")
        assert "rejected promoting churn-clf v1 to prod" in rejected.inner_text()
        approved = activity.locator("li[data-action='model.promotion_approved']")
        assert "carol" in approved.inner_text()
        assert "approved churn-clf v1 as production" in approved.inner_text()
        card_event = activity.locator("li[data-action='model.card']", has_text="bob")
        assert card_event.count() == 1
        # the filter keeps the model events; a link opens the model
        activity.locator("select[name=action]").select_option("dataset.*")
        datasets_only = activity.locator("ol[data-action='dataset.*']")
        datasets_only.locator("li[data-action='dataset.commit']").first.wait_for()
        assert activity.locator("li[data-action^='model.']").count() == 0
        activity.locator("select[name=action]").select_option("model.*")
        activity.locator("ol[data-action='model.*']").wait_for()
        approved.wait_for()
        carol.screenshot(path=str(OUTPUT / "lab-activity.png"))
        # bob only edits the project: his activity shows carol's decisions all the same
        bob.click(f"{PANEL} .jp-WorkbenchPanel-activity")
        decided = bob.locator(f"{ACTIVITY}[data-loaded=true] li[data-action^='model.promotion_']")
        decided.filter(has_text="carol").first.wait_for()
        approved.locator("button").click()
        carol.wait_for_selector(
            ".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", state="attached"
        )
        assert cview.is_visible()
        # the version's run opens in its experiment's view, ticked (its metrics charted)
        cview.locator(f"tr[data-version='1'] button[data-run='{run_id}']").click()
        row_of_run = f"[role=row][data-run-id='{run_id}'][aria-selected=true]"
        ticked = carol.locator(f".jp-WorkbenchExperiment:visible {row_of_run}")
        ticked.wait_for()
        assert "baseline" in ticked.inner_text()

        # bob commits a folder of the file browser: "Commit to dataset..." on its context menu
        bob.click(".jp-SideBar [data-id='filebrowser']")
        folder = bob.locator(".jp-DirListing-item[data-isdir=true]", has_text="exports")
        folder.click(button="right")
        bob.locator(".lm-Menu-item[data-command='workbench:commit-to-dataset']").click()
        dialog = bob.locator(".jp-Dialog")
        dialog.wait_for()
        assert dialog.locator("select[name=project]").input_value() == slug
        assert dialog.locator("input[name=dataset]").input_value() == "exports"
        dialog.locator("input[name=message]").fill("scores of May")
        # the page is reloaded while the chunks are on their way (held back here): the lab,
        # opened again, offers to resume the commit
        held: list[Any] = []

        def hold(route: Any) -> None:
            held.append(route)

        bob.route("**/uploads/*/chunks", hold)
        dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
        for _ in range(300):
            if held:
                break
            bob.wait_for_timeout(100)
        assert held, "no chunks were sent"
        bob.reload()
        for route in held:
            with contextlib.suppress(Exception):  # the reload has cut it off already
                route.abort()
        bob.unroute("**/uploads/*/chunks", hold)
        resume = bob.get_by_role("button", name="Resume")
        interrupted = bob.get_by_text(f"The commit of exports to {slug}/exports was interrupted")
        interrupted.first.wait_for()
        # the connection drops under the first batch of chunks: the batch is sent again
        dropped: list[str] = []

        def drop_first(route: Any) -> None:
            if dropped:
                route.continue_()
            else:
                dropped.append(route.request.url)
                route.abort("connectionreset")

        bob.route("**/uploads/*/chunks", drop_first)
        resume.first.click()
        # done: the dataset's view opens on the new version
        dataset = bob.locator(".jp-WorkbenchDataset[data-loaded=true]").filter(
            has_text=f"{slug}/exports"
        )
        dataset.wait_for()
        dataset.locator("li[data-version='1']", has_text="scores of May").wait_for()
        assert len(dropped) == 1  # one batch was lost on the way, and the commit went on
        # done, so nothing is left to offer after another reload
        remembered = "localStorage.getItem('jupyter-workbench:commits-under-way')"
        assert bob.evaluate(remembered) is None
        bob.screenshot(path=str(OUTPUT / "lab-commit.png"))

        # a page of models at a time: more than a page shows "Show more models" (names are
        # global in MLflow: these carry the project's)
        mlflow = f"{lab.url}/workbench/mlflow/p/{slug}/api/2.0/mlflow/registered-models/create"
        auth = {"Authorization": f"token {lab.user_tokens['alice']}"}
        for n in range(50):
            r = requests.post(mlflow, json={"name": f"zz-{slug}-{n:02}"}, headers=auth, timeout=30)
            assert r.status_code == 200, r.text
        show_panel(bob)  # after the reload above
        bob.click(f"{PANEL} .jp-WorkbenchPanel-refresh")
        models = bob.locator(f"{PANEL} li.jp-WorkbenchPanel-model")
        bob.locator(f"{PANEL} li.jp-WorkbenchPanel-model[data-model=zz-{slug}-48]").wait_for()
        assert models.count() == 50
        more = bob.locator(f"{PANEL} .jp-WorkbenchPanel-moreModels")
        more.click()  # (once enabled: no load under way)
        bob.locator(f"{PANEL} li.jp-WorkbenchPanel-model[data-model=zz-{slug}-49]").wait_for()
        assert models.count() == 51 and more.is_hidden()
        # a refresh keeps the models shown
        bob.click(f"{PANEL} .jp-WorkbenchPanel-refresh")
        bob.wait_for_timeout(500)
        bob.locator(f"{PANEL} li.jp-WorkbenchPanel-model[data-model=zz-{slug}-49]").wait_for()
        assert models.count() == 51

    in_chromium(scenario, timeout=300)
    assert not [e for e in errors if not any(x in e for x in EXPECTED)], errors

    # what the browsers did, in the API
    model = _call(lab, "alice", "GET", f"projects/{slug}/models/churn-clf")
    assert model["aliases"] == {"production": "1"}
    history = _call(lab, "alice", "GET", f"projects/{slug}/models/churn-clf/promotions")["items"]
    assert [(p["alias"], p["status"], p["requested_by"]) for p in history] == [
        ("prod", "rejected", "bob"),
        ("champion", "pending", "carol"),
        ("production", "approved", "bob"),
    ]
    files = _call(lab, "alice", "GET", f"projects/{slug}/datasets/exports/versions/v1/files")
    sizes = {f["path"]: f["size"] for f in files["items"]}
    assert sizes == {
        "scores.csv": (exports / "scores.csv").stat().st_size,
        "sub/notes.txt": (exports / "sub" / "notes.txt").stat().st_size,
    }
    version = _call(lab, "alice", "GET", f"projects/{slug}/datasets/exports/versions/v1")
    assert version["author"] == "bob" and version["message"] == "scores of May"
    # the browser cut the 449 KiB file where the CLI and the Python client cut it (FastCDC):
    # the same bytes committed from anywhere share their chunks
    from jupyter_workbench.storage.chunking import chunk_file

    chunked = _call(
        lab, "alice", "GET", f"projects/{slug}/datasets/exports/versions/v1/files?chunks=true"
    )
    stored = {f["path"]: [tuple(c) for c in f["chunks"]] for f in chunked["items"]}
    ours = chunk_file(exports / "scores.csv", on_chunk=lambda _c: None).chunks
    assert len(ours) > 1 and stored["scores.csv"] == [tuple(c) for c in ours]
