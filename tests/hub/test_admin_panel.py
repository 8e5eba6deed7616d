"""The admin panel in a real browser (Debian's Chromium driven by Playwright) on a real hub:
reached from the hub's Services menu, it shows users and teams, running servers, usage, quotas,
the audit log and pending sign-ups, and its buttons act. A screenshot is kept in test-output/."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import REPO, Browser, Hub, auth, start_server

pytestmark = pytest.mark.slow

API = "/services/workbench/workbench/api/v1"
ARTIFACTS = Path(os.environ.get("WORKBENCH_TEST_ARTIFACTS") or REPO / "test-output")


def in_chromium(scenario: Callable[[Any], None]) -> None:
    """Run ``scenario(browser)`` with Debian's Chromium, on a thread of its own: Playwright's
    sync API keeps an event loop running in its thread, which must not be the tests' one."""

    def run() -> None:
        from playwright.sync_api import sync_playwright

        executable = shutil.which("chromium") or shutil.which("chromium-browser")
        if executable is None:
            raise AssertionError("Chromium is missing: `make test` installs Debian's chromium")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True)
            try:
                scenario(browser)
            finally:
                browser.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result(timeout=300)


def log_in(chromium: Any, hub: Hub, name: str, password: str) -> Any:
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(30_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url("**/hub/**")
    return page


def test_the_admin_panel_shows_the_hub_and_acts(hub: Hub, admin: Browser, new_user: Any) -> None:
    # a user with a team and a running server; someone waiting for approval
    name, _, _, token = new_user("panel")
    r = requests.post(f"{hub.url}{API}/teams", headers=auth(token),
                      json={"name": f"team-{name}"}, timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    start_server(hub, name, token)
    waiting = "wait" + os.urandom(3).hex()
    hub.browser().sign_up(waiting, "Pa55-word-" + os.urandom(4).hex())
    admin_token = admin.token(hub.admin)
    # approved on the hub's own page and never logged in: the admin still sees them (hub sync)
    approved = "appr" + os.urandom(3).hex()
    hub.browser().sign_up(approved, "Pa55-word-" + os.urandom(4).hex())
    assert admin.api("GET", f"/hub/authorize/{approved}").ok
    deadline = time.monotonic() + 60
    while approved not in people(hub, admin_token):
        assert time.monotonic() < deadline, f"{approved} never appeared in the admin panel"
        time.sleep(0.5)
    # made a hub admin before any visit: a workbench administrator too (hub sync)
    promoted, _, _, _ = new_user("promo")
    while promoted not in people(hub, admin_token):
        assert time.monotonic() < deadline + 60, f"{promoted} never appeared in the admin panel"
        time.sleep(0.5)
    assert people(hub, admin_token)[promoted] is False
    r = admin.api("PATCH", f"/hub/api/users/{promoted}", json={"admin": True})
    assert r.status_code == 200, r.text
    while not people(hub, admin_token)[promoted]:
        assert time.monotonic() < deadline + 60, f"{promoted} never became an administrator"
        time.sleep(0.5)
    # deleted on the hub: out of the list and its totals, under "Left the hub" (hub sync)
    gone, _, _, _ = new_user("gone")
    while gone not in people(hub, admin_token):
        assert time.monotonic() < deadline + 90, f"{gone} never appeared in the admin panel"
        time.sleep(0.5)
    assert admin.api("DELETE", f"/hub/api/users/{gone}").status_code == 204
    while gone in people(hub, admin_token):
        assert time.monotonic() < deadline + 120, f"{gone} stayed in the admin panel"
        time.sleep(0.5)
    assert gone in people(hub, admin_token, left=True)
    in_chromium(lambda chromium: panel_scenario(chromium, hub, name, waiting, admin_token, gone))
    # the sign-up approved in the panel is known at once: a quota can be set before a visit
    for user in (waiting, approved):
        r = requests.put(f"{hub.url}{API}/admin/quotas/user:{user}", headers=auth(admin_token),
                         json={"max_gpus": 0}, timeout=30)  # fmt: skip
        assert r.status_code == 200, (user, r.text)


def people(hub: Hub, token: str, left: bool = False) -> dict[str, bool]:
    """Who the admin panel lists (``left``: who left the hub): username -> administrator."""
    r = requests.get(f"{hub.url}{API}/admin/people", headers=auth(token), timeout=30,
                     params={"left": "true"} if left else {})  # fmt: skip
    assert r.status_code == 200, r.text
    return {p["username"]: p["is_admin"] for p in r.json()["items"]}


def panel_scenario(
    chromium: Any, hub: Hub, name: str, waiting: str, admin_token: str, gone: str
) -> None:
    page = log_in(chromium, hub, hub.admin, hub.admin_password)
    # from the hub's navigation bar: Services -> workbench
    page.goto(f"{hub.url}/hub/home")
    page.click("text=Services")
    page.click("a.dropdown-item:has-text('workbench')")
    page.wait_for_url("**/services/workbench/admin")
    page.wait_for_selector("body[data-loaded=true]")
    assert page.locator("#wb-alert").is_hidden(), page.inner_text("#wb-alert")
    # the hub's look: its stylesheet and navigation bar
    assert page.locator("link[href$='/hub/static/css/style.min.css']").count() == 1
    assert page.locator("#jupyterhub-logo img").is_visible()

    row = page.locator(f"#people tr[data-user='{name}']")
    assert f"team-{name} (maintainer)" in row.inner_text()
    assert page.locator(f"#people tr[data-user='{gone}']").count() == 0
    assert "left the hub" in page.inner_text("#total-users")
    page.check("#people-left")
    page.wait_for_selector(f"#people tr[data-user='{gone}']")
    assert "left " in page.inner_text(f"#people tr[data-user='{gone}']")
    page.uncheck("#people-left")
    page.wait_for_selector(f"#people tr[data-user='{name}']")
    assert "default: cpu, 0 GPU" in row.inner_text()
    assert name in page.inner_text("#servers")
    assert int(page.inner_text("#total-servers")) >= 1
    assert page.locator("#usage-chart svg rect.server").count() >= 1
    assert name in page.inner_text("#usage")
    # a period the API refuses empties the chart and table (they kept the period before's)
    page.fill("#usage-from", "2026-03-01")
    page.fill("#usage-to", "2026-02-01")
    page.wait_for_selector("#wb-alert:not(.d-none)")
    assert "from: must be before 'to'" in page.inner_text("#wb-alert")
    assert page.locator("#usage-chart svg").count() == 0
    assert name not in page.inner_text("#usage") and "No figures" in page.inner_text("#usage")
    page.fill("#usage-to", "")
    page.fill("#usage-from", "")
    page.wait_for_selector(f"#usage td:has-text('{name}')")
    assert page.locator("#usage-chart svg rect.server").count() >= 1
    assert page.locator("#wb-alert").is_hidden()

    # set a quota from the panel; the API has it
    new = page.locator("#quotas tr[data-quota=new]")
    new.locator("input[name=subject]").fill(f"user:{name}")
    new.locator("input[name=max_gpus]").fill("2")
    new.locator("button:has-text('Add')").click()
    page.wait_for_selector(f"#quotas tr[data-quota='user:{name}']")
    quota = requests.get(f"{hub.url}{API}/admin/quotas/user:{name}", headers=auth(admin_token),
                         timeout=30).json()  # fmt: skip
    assert quota["max_gpus"] == 2 and quota["max_servers"] is None
    # the audit log follows at once: the change on top, each event once
    page.wait_for_selector(f"#audit tbody tr:first-child td:has-text('user:{name}')")
    events = page.locator("#audit tbody tr").all_inner_texts()
    assert len(events) == len(set(events)), events
    # a bad value is refused with the API's message, shown in the page
    row_q = page.locator(f"#quotas tr[data-quota='user:{name}']")
    row_q.locator("input[name=max_gpus]").fill("-1")
    row_q.locator("button:has-text('Save')").click()
    page.wait_for_selector("#wb-alert:not(.d-none)")
    assert "max_gpus" in page.inner_text("#wb-alert")
    # finding a quota by the user's name: only theirs is left (and the row to add one)
    quotas = page.locator("#quotas tr[data-quota]:not([data-quota=new])")
    page.fill("#quotas-q", name.upper())
    page.wait_for_selector(f"#quotas .wb-body[data-q='{name.upper()}']")
    assert quotas.count() == 1 and quotas.get_attribute("data-quota") == f"user:{name}"
    page.fill("#quotas-q", "no such name")
    page.wait_for_selector("#quotas .wb-body[data-q='no such name']")
    assert quotas.count() == 0 and page.locator("#quotas tr[data-quota=new]").count() == 1
    page.fill("#quotas-q", "")
    page.wait_for_selector("#quotas .wb-body[data-q='']")
    assert quotas.count() >= 1

    # the audit log finds the change
    page.fill("#audit-form input[name=action]", "quota.*")
    page.click("#audit-form button[type=submit]")
    page.wait_for_selector(f"#audit td:has-text('user:{name}')")

    # approve the pending sign-up: it leaves the list and the account can log in
    signup = page.locator(f"#signups tr[data-signup='{waiting}']")
    assert signup.count() == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-panel.png"), full_page=True)
    signup.locator("button:has-text('Approve')").click()
    page.wait_for_selector(f"#signups tr[data-signup='{waiting}']", state="detached")
    page.wait_for_selector(f"#people tr[data-user='{waiting}']")  # a user now, without a reload
    events = requests.get(f"{hub.url}{API}/audit", params={"action": "signup.*"},
                          headers=auth(admin_token), timeout=30).json()["items"]  # fmt: skip
    assert [(e["action"], e["object_id"]) for e in events][:1] == [("signup.approve", waiting)]
    page.close()


def test_the_admin_panel_is_for_administrators(hub: Hub, new_user: Any) -> None:
    name, password, _, token = new_user("nosy")

    def scenario(chromium: Any) -> None:
        page = log_in(chromium, hub, name, password)
        response = page.goto(f"{hub.url}/services/workbench/admin")
        assert response is not None and response.status == 403
        assert page.locator("#wb-forbidden").is_visible()
        assert page.locator("#quotas").is_hidden()
        page.close()

    in_chromium(scenario)
    r = requests.get(f"{hub.url}{API}/admin/signups", headers=auth(token), timeout=30)
    assert r.status_code == 403
