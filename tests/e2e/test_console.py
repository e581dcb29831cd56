"""The web console in a real browser (Playwright driving Debian's chromium) against a real
server: sign in, create an environment by uploading a zip and watch it turn healthy, deploy
a second version and roll back, a bad setting's inline error, a chart with data and an
event, logs followed live, terminate. Screenshots of the main pages are saved under
``test-artifacts/console/`` (README). Every request the page makes must go to Beanpole."""

from __future__ import annotations

import contextlib
import re
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import wait_for

pytestmark = pytest.mark.slow

APPS = Path(__file__).parent.parent / "apps"
SHOTS = Path(__file__).parent.parent.parent / "test-artifacts" / "console"
UI_TIMEOUT_MS = 120_000

sync_api = pytest.importorskip("playwright.sync_api", reason="scripts/bootstrap.sh installs it")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (scripts/bootstrap.sh installs it)")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A browser tab on the console that records every request it makes and every script
    error it meets."""

    def __init__(self, browser: Any, base: str, width: int = 1280, height: int = 900) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def foreign_requests(self) -> list[str]:
        return [
            u for u in self.requests if not u.startswith(self.base) and not u.startswith("data:")
        ]

    def script_errors(self) -> list[str]:
        # A 4xx the page asked for on purpose (a refused setting, a wrong password) is logged
        # by the browser as a failed resource; only script errors count.
        return [e for e in self.errors if "Failed to load resource" not in e]

    def close(self) -> None:
        self.context.close()


def _zip(folder: Path, version: str, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for f in folder.rglob("*"):
            if f.is_file() and f.name != "VERSION":
                z.write(f, f.relative_to(folder).as_posix())
        z.writestr("VERSION", version + "\n")
    return dest


def _serves(bp, env: str, version: str) -> bool:
    try:
        status, body = bp.get(env)
    except OSError:
        return False
    return status == 200 and version in body


class Traffic:
    """Requests to an environment through HAProxy, in a thread, until stopped."""

    def __init__(self, bp, env: str) -> None:
        self.bp, self.env = bp, env
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            with contextlib.suppress(OSError):
                self.bp.get(self.env, timeout=5)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _sign_in_with_password(tab: Page, user: str, password: str) -> None:
    page = tab.page
    page.goto(tab.base + "/")
    page.get_by_role("heading", name="Sign in").wait_for()
    page.get_by_role("tab", name="User and password").click()
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()


def test_console_end_to_end(beanpole, browser, public_tmp):
    bp = beanpole
    bp.cli("user", "add", "ops", "--password-stdin", input_text="console pass 1\n")
    v1 = _zip(APPS / "pid", "v1-console", public_tmp / "v1.zip")
    v2 = _zip(APPS / "pid", "v2-console", public_tmp / "v2.zip")
    tab = Page(browser, f"http://127.0.0.1:{bp.api_port}")
    page = tab.page
    expect = sync_api.expect
    try:
        # sign in: a wrong password is refused with the server's reason, the right one works
        page.goto(tab.base + "/")
        page.get_by_role("tab", name="User and password").click()
        page.get_by_label("User", exact=True).fill("ops")
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")
        tab.shot("sign-in")
        page.get_by_label("Password").fill("console pass 1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text("Signed in as")).to_contain_text("ops")
        expect(page.get_by_role("heading", name="No environments yet")).to_be_visible()

        # create: upload a zip, high availability; follow the launch until Ready
        page.get_by_role("main").get_by_role("link", name="Create environment").click()
        page.get_by_label("Application", exact=True).fill("shop")
        page.get_by_label("Environment name").fill("shop-web")
        page.get_by_label("Application code (zip)").set_input_files(str(v1))
        page.get_by_label("High availability").check()
        tab.shot("create")
        page.get_by_role("button", name="Create environment").click()
        expect(page.get_by_text("Environment shop-web is Ready")).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )
        expect(page.get_by_role("log")).to_contain_text("Successfully launched environment")
        tab.shot("create-ready")
        assert _serves(bp, "shop-web", "v1-console")

        # the environment page: both instances turn healthy, with their figures
        page.get_by_role("link", name="Open environment page").click()
        expect(page.get_by_role("heading", name="shop-web", level=1)).to_be_visible()
        instances = page.locator("section[aria-labelledby='env-instances-title'] tbody tr")
        expect(instances).to_have_count(2, timeout=UI_TIMEOUT_MS)
        with Traffic(bp, "shop-web"):
            for row in range(2):
                # colour and word: a green pill that says Ok
                expect(instances.nth(row).locator(".pill-Green")).to_have_text(
                    re.compile("Ok"), timeout=UI_TIMEOUT_MS
                )
            # a chart with data: the requests/s chart's latest figure is above zero
            wait_for(
                lambda: _chart_has_data(page),
                60,
                "the requests/s chart to show the traffic",
            )
        expect(page.locator("body")).to_contain_text("Successfully launched environment")
        tab.shot("environment")

        # the tabs by keyboard, and the events filtered by severity
        page.get_by_role("tab", name="Overview").focus()
        page.keyboard.press("ArrowRight")
        events_tab = page.get_by_role("tab", name="Events")
        expect(events_tab).to_have_attribute("aria-selected", "true")
        expect(events_tab).to_be_focused()
        page.get_by_label("Severity").select_option("INFO")
        rows = page.locator("section[aria-labelledby='env-events-title'] tbody tr")
        expect(rows.first).to_be_visible()
        assert rows.count() > 0
        assert all("INFO" in rows.nth(i).inner_text() for i in range(rows.count()))
        expect(rows.filter(has_text="Successfully launched environment")).to_have_count(1)
        tab.shot("events")

        # deploy a second version by upload, with live progress until it is done
        page.get_by_role("button", name="Deploy", exact=True).click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Application code (zip)").set_input_files(str(v2))
        dialog.get_by_label("Deployment policy").select_option("AllAtOnce")
        dialog.get_by_role("button", name="Deploy", exact=True).click()
        wait_for(lambda: _serves(bp, "shop-web", "v2-console"), 120, "v2 to serve")
        expect(dialog).to_contain_text("Succeeded", timeout=UI_TIMEOUT_MS)
        tab.shot("deploy")
        dialog.get_by_role("button", name="Close").click()

        # roll back from the deployments' history
        page.get_by_role("tab", name="Deployments").click()
        tab.shot("deployments")
        page.get_by_role("button", name="Roll back").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="Roll back").click()
        wait_for(lambda: _serves(bp, "shop-web", "v1-console"), 120, "v1 to serve again")
        expect(dialog).to_contain_text("Succeeded", timeout=UI_TIMEOUT_MS)
        tab.shot("rollback")
        dialog.get_by_role("button", name="Close").click()
        expect(page.get_by_role("heading", name="shop-web", level=1)).to_be_visible()

        # a bad setting is refused next to the option, and nothing changes
        page.get_by_role("tab", name="Configuration").click()
        page.get_by_role("button", name="Edit").click()
        field = page.get_by_label("MaxSize", exact=True)
        field.fill("500")
        page.get_by_role("button", name="Apply changes").click()
        expect(page.locator("[aria-invalid='true']")).to_have_count(1)
        # the server's reason, shown inline at the option (not only as a banner)
        inline = page.locator(".field-error")
        expect(inline).to_have_count(1)
        expect(inline).to_contain_text("MaxSize")
        expect(inline).to_contain_text("100")
        tab.shot("settings-error")
        page.get_by_role("button", name="Cancel").click()
        settings = bp.cli("config", "show", "shop-web", check=False).stdout
        assert "500" not in settings

        # logs: follow live, a new request's access line arrives without a reload
        page.get_by_role("tab", name="Logs").click()
        files = page.get_by_label("Log file")
        access = files.locator("option", has_text="Access log").first.get_attribute("value")
        files.select_option(access)
        page.get_by_role("button", name="Follow").click()
        marker = "/console-follow-marker"
        wait_for(
            lambda: (
                bp.get("shop-web", marker)[0] > 0 and marker in page.locator("body").inner_text()
            ),
            30,
            "the followed logs to show the new request",
        )
        tab.shot("logs")

        # terminate, after typing the environment's name
        page.get_by_role("button", name="Terminate", exact=True).click()
        dialog = page.get_by_role("dialog")
        confirm = dialog.get_by_role("button", name="Terminate", exact=True)
        expect(confirm).to_be_disabled()
        dialog.get_by_label("Environment name").fill("shop-web")
        confirm.click()
        wait_for(
            lambda: "shop-web" not in bp.cli("list", "--json").stdout,
            120,
            "the environment to be terminated",
        )
        # the page follows the end live: back to the overview, which is empty again
        expect(page.get_by_role("heading", name="No environments yet")).to_be_visible(
            timeout=UI_TIMEOUT_MS
        )

        assert tab.foreign_requests() == []
        assert tab.script_errors() == []
    finally:
        tab.close()


def _chart_has_data(page: Any) -> bool:
    """The requests/s chart was drawn (uPlot's canvas) and its latest point is above zero
    (its label names the latest value it plots)."""
    chart = page.get_by_role("img", name=re.compile("^Requests per second"))
    if chart.count() != 1 or chart.locator("canvas").count() == 0:
        return False
    label = chart.get_attribute("aria-label") or ""
    match = re.search(r"latest: ([0-9]+(?:\.[0-9]+)?)", label)
    return match is not None and float(match.group(1)) > 0


def test_console_by_keyboard_and_on_a_phone(beanpole, browser):
    bp = beanpole
    token = (bp.home / "token").read_text().strip()
    tab = Page(browser, f"http://127.0.0.1:{bp.api_port}", width=375, height=800)
    page = tab.page
    try:
        page.goto(tab.base + "/")
        page.get_by_label("API token").wait_for()
        # by keyboard only: focus the token field, type, Enter submits
        page.get_by_label("API token").focus()
        page.keyboard.type(token)
        page.keyboard.press("Enter")
        page.get_by_role("button", name="Sign out").wait_for()
        # the signed-in page's own read has been made (it must not be counted below)
        page.get_by_role("heading", name="No environments yet").wait_for()
        # a page load shows its data after one API request: the page carries the session
        tab.requests.clear()
        page.reload()
        page.get_by_role("heading", name="No environments yet").wait_for()
        api = [u for u in tab.requests if "/api/v1/" in u and "/stream" not in u]
        assert [u.removeprefix(tab.base) for u in api] == ["/api/v1/console/overview"]
        for route in ["#/", "#/create"]:
            page.goto(f"{tab.base}/{route}")
            page.get_by_role("heading", level=1).first.wait_for()
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 375, f"{route} is {width} px wide on a 375 px screen"
            tab.shot("phone-" + (route.strip("#/").replace("/", "-") or "overview"))
        # sign-out ends the session: a reload shows the sign-in page again
        page.get_by_role("button", name="Sign out").click()
        page.get_by_role("heading", name="Sign in").wait_for()
        page.reload()
        page.get_by_role("heading", name="Sign in").wait_for()
        assert tab.foreign_requests() == []
        assert tab.script_errors() == []
    finally:
        tab.close()
