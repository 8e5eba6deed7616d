"""The admin panel of a standalone workbench (the hub's own is tested in tests/hub), driven in
Chromium: long lists of users and servers are read a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import Lab, in_chromium, start_lab

USERS = ["alice", "bob", "carol", "dave", "erin"]


@pytest.fixture
def small_pages_lab(tmp_path: Path) -> Iterator[Lab]:
    """Five users sharing a lab whose lists give two items a page unless asked for more."""
    yield from start_lab(tmp_path, USERS, {"Workbench": {"page_size": 2}})


def test_the_admin_panel_reads_users_a_page_at_a_time(small_pages_lab: Lab) -> None:
    lab = small_pages_lab
    for user in USERS:
        headers = {"Authorization": f"token {lab.user_tokens[user]}"}
        assert requests.get(lab.api("me"), headers=headers, timeout=60).status_code == 200

    def scenario(browser: Any) -> None:
        page = browser.new_page()
        page.goto(f"{lab.url}/workbench/admin?token={lab.token}")
        page.wait_for_selector("body[data-loaded=true]")
        assert page.locator("#wb-alert").is_hidden(), page.inner_text("#wb-alert")
        rows = page.locator("#people tr[data-user]")
        assert rows.count() == 2
        total = int(page.inner_text("#total-users"))
        assert total == len(USERS) + 1  # and the lab's owner
        more = page.locator("#people-more")
        for shown in (4, 6):
            more.click()
            page.wait_for_function(
                f"document.querySelectorAll('#people tr[data-user]').length == {shown}"
            )
        assert more.is_hidden()  # all shown
        names = [rows.nth(i).get_attribute("data-user") for i in range(rows.count())]
        assert len(set(names)) == total and set(USERS) <= set(names)
        # a search starts again from its own first page
        page.fill("#people-q", "erin")
        page.wait_for_function("document.querySelectorAll('#people tr[data-user]').length == 1")
        assert rows.first.get_attribute("data-user") == "erin" and more.is_hidden()
        # no hub here: no server runs, and no "more" under the empty list
        assert "No server is running." in page.inner_text("#servers")
        assert page.locator("#servers-more").is_hidden()

    in_chromium(scenario)


def test_the_standalone_admin_panel_has_the_hub_look_and_a_way_back(lab: Lab) -> None:
    def scenario(browser: Any) -> None:
        page = browser.new_page()
        page.goto(f"{lab.url}/workbench/admin?token={lab.token}")
        page.wait_for_selector("body[data-loaded=true]")
        # the hub's stylesheet (from the installed JupyterHub): hidden things stay hidden
        assert page.locator("#wb-alert").is_hidden() and page.locator("#audit-more").is_hidden()
        assert page.locator("#jupyterhub-logo img").evaluate("img => img.naturalWidth") > 0
        # sign-ups are the hub's: said plainly, not as an error
        assert "handled by JupyterHub" in page.inner_text("#signups")
        # a refused period says why; once put right, the message goes
        page.fill("#usage-from", "2026-11-20")
        page.fill("#usage-to", "2026-11-01")
        page.dispatch_event("#usage-to", "change")
        page.wait_for_selector("#wb-alert:not(.d-none)")
        assert "from: must be before 'to'" in page.inner_text("#wb-alert")
        page.fill("#usage-to", "2026-11-29")
        page.dispatch_event("#usage-to", "change")
        page.wait_for_selector("#wb-alert", state="hidden")
        page.click("a.nav-link:has-text('JupyterLab')")
        page.wait_for_url("**/lab**")

    in_chromium(scenario)
