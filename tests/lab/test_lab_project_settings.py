"""A project's settings in a real JupyterLab, driven in Chromium: details, archiving, members,
invitations and access requests, each checked against the REST API afterwards."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from .conftest import OUTPUT, Lab, in_chromium, show_sidebar_panel
from .test_lab_ui import PANEL, console_error

SETTINGS = ".jp-WorkbenchSettings"


def _call(lab: Lab, user: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"token {lab.user_tokens[user]}"}
    r = requests.request(method, lab.api(path), json=body, headers=headers, timeout=60)
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def roles(lab: Lab, slug: str) -> dict[str, str]:
    members = _call(lab, "alice", "GET", f"projects/{slug}/members")["items"]
    return {m["member"]: m["role"] for m in members}


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.2)


@pytest.mark.slow
def test_an_admin_manages_the_project_from_the_lab(team_lab: Lab) -> None:
    lab = team_lab
    for user in ("alice", "bob", "carol"):
        _call(lab, user, "GET", "me")
    # no "Jupyter news?" toast over the screenshot
    news = requests.put(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        json={"raw": '{"fetchNews": "false"}'},
        headers={"Authorization": f"token {lab.user_tokens['alice']}"}, timeout=30,
    )  # fmt: skip
    assert news.status_code == 204, news.text
    slug = _call(lab, "alice", "POST", "projects", {"name": "Atlas"})["slug"]
    errors: list[str] = []

    def scenario(chromium: Any) -> None:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        page.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{lab.url}/lab?token={lab.user_tokens['alice']}")
        page.wait_for_selector("#jp-main-dock-panel")
        show_sidebar_panel(page, PANEL)
        page.locator(f"{PANEL} li.jp-WorkbenchPanel-project[aria-selected=true]").wait_for()
        page.get_by_role("button", name="Manage project…").click()
        view = page.locator(f"{SETTINGS}[data-loaded=true]")
        view.wait_for()
        assert view.locator("input[name=name]").input_value() == "Atlas"
        assert view.locator("h2").inner_text() == "Atlas"
        # a region with its own name for screen readers (not MainAreaWidget's generic one)
        assert view.get_attribute("aria-label") == f"Settings of project {slug}"

        # details: a description, and everyone may see it
        view.locator("textarea[name=description]").fill("Maps of churn")
        view.locator("select[name=visibility]").select_option("public")
        view.get_by_role("button", name="Save").click()
        view.get_by_text("Saved.").wait_for()
        project = _call(lab, "alice", "GET", f"projects/{slug}")
        assert (project["description"], project["visibility"]) == ("Maps of churn", "public")

        # members: add bob as editor, make him admin; an unknown user is the API's error
        members = view.get_by_role("form", name="Add a member")
        members.locator("input[name=member]").fill("nobody")
        members.get_by_role("button", name="Add").click()
        refusal = view.locator(".jp-WorkbenchSettings-section [role=alert]").first
        refusal.wait_for()
        assert "nobody" in refusal.inner_text()
        members.locator("input[name=member]").fill("bob")
        members.locator("select[name=role]").select_option("editor")
        members.get_by_role("button", name="Add").click()
        bob = view.locator("tr[data-member=bob]")
        bob.wait_for()
        assert bob.locator("select").input_value() == "editor"
        bob.locator("select").select_option("admin")
        eventually(lambda: roles(lab, slug) == {"alice": "owner", "bob": "admin"})

        # invitations: carol is invited, then the invitation is revoked
        invite = view.get_by_role("form", name="Invite someone")
        invite.locator("input[name=invitee]").fill("carol")
        invite.locator("input[name=message]").fill("come help")
        invite.get_by_role("button", name="Invite").click()
        invited = view.locator("li[data-username=carol][data-invitation]")
        invited.wait_for()
        waiting = _call(lab, "carol", "GET", "me/notifications")["items"]
        assert [(n["kind"], n["message"]) for n in waiting] == [("invitation", "come help")]
        invited.get_by_role("button", name="Revoke the invitation of carol").click()
        invited.wait_for(state="detached")
        assert _call(lab, "carol", "GET", "me/notifications")["items"] == []

        # access requests: carol, in her own browser, finds the project (public now) among
        # those she can see and asks to join as an editor; alice approves
        carol = chromium.new_context(viewport={"width": 1100, "height": 800}).new_page()
        carol.set_default_timeout(30_000)
        carol.on("console", lambda msg: (text := console_error(msg)) and errors.append(text))
        carol.goto(f"{lab.url}/lab?token={lab.user_tokens['carol']}")
        carol.wait_for_selector("#jp-main-dock-panel")
        show_sidebar_panel(carol, PANEL)
        carol.wait_for_selector(f"{PANEL}[data-loaded=true]")
        carol.locator(f"{PANEL} summary", has_text="Other projects you can see").click()
        other = carol.locator(f"{PANEL} li.jp-WorkbenchPanel-other[data-slug={slug}]")
        other.locator("select").select_option("editor")
        other.get_by_role("button", name="Ask to join Atlas").click()
        other.get_by_text("Asked: its admins will answer.").wait_for()
        view.get_by_role("button", name="Reload the project settings").click()
        asked = view.locator("li[data-username=carol][data-request]")
        asked.wait_for()
        asked.get_by_role("button", name="Approve: carol").click()
        view.locator("tr[data-member=carol]").wait_for()
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "lab-project-settings.png"))

        # bob leaves the project; the project is archived, then back
        view.get_by_role("button", name="Remove bob").click()
        bob.wait_for(state="detached")
        view.get_by_role("button", name="Archive").click()
        view.locator(".jp-WorkbenchSettings-archived").wait_for()
        assert _call(lab, "alice", "GET", f"projects/{slug}")["archived"] is True
        view.get_by_role("button", name="Unarchive").click()
        view.locator(".jp-WorkbenchSettings-archived").wait_for(state="hidden")
        assert _call(lab, "alice", "GET", f"projects/{slug}")["archived"] is False
        # the sidebar followed: carol is listed among the members there
        page.locator(f"{PANEL} li.jp-WorkbenchPanel-member", has_text="carol").wait_for()

        # teams: alice makes "mappers" with bob as a maintainer, and adds it to the project
        page.get_by_role("button", name="Teams…").click()
        teams = page.locator("#jp-workbench-teams[data-loaded=true]")
        teams.wait_for()
        teams.locator("input[name=team]").fill("mappers")
        teams.get_by_role("button", name="Create team").click()
        teams.locator("li[data-team=mappers]").wait_for()
        add = teams.get_by_role("form", name="Add a team member")
        add.locator("input[name=username]").fill("bob")
        add.get_by_role("button", name="Add").click()
        teams.locator("tr[data-member=bob]").wait_for()
        teams.locator("tr[data-member=bob] select").select_option("maintainer")
        eventually(
            lambda: (
                {
                    m["username"]: m["role"]
                    for m in _call(lab, "alice", "GET", "teams/mappers/members")["items"]
                }
                == {"alice": "maintainer", "bob": "maintainer"}
            )
        )
        page.click(".lm-DockPanel-tabBar .lm-TabBar-tab:has-text('Atlas settings')")
        members.locator("input[name=member]").fill("team:mappers")
        members.locator("select[name=role]").select_option("viewer")
        members.get_by_role("button", name="Add").click()
        view.locator("tr[data-member='team:mappers']").wait_for()

    in_chromium(scenario)
    # the deliberate "nobody" is refused by the API (its 4xx is the console's only complaint)
    assert not [e for e in errors if f"/projects/{slug}/members 4" not in e], errors
    assert roles(lab, slug) == {"alice": "owner", "carol": "editor", "team:mappers": "viewer"}
