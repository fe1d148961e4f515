"""A real browser (Debian's Chromium driven by Playwright) loads the page, submits the form, sees the task."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from local.stack import Stack

CHROMIUM = "/usr/bin/chromium"
# The flags shared/ENVIRONMENT.md lists: no sandbox as root, and no calls to Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "Chromium missing: make test installs the Debian package chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def test_add_a_task_in_the_browser(page: Page, served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=2)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{stack.settings.app_url}/")
    assert page.title() == "Task board"
    assert page.locator("li.empty").is_visible()

    page.fill("#title", "Bought in the browser")
    page.click("form.add button[type=submit]")
    page.wait_for_load_state()

    first = page.locator("ul.tasks li.task").first
    assert first.locator(".title").inner_text() == "Bought in the browser"
    assert first.locator(".badge").inner_text() == "todo"
    assert "todo 1" in page.locator("section.stats").inner_text().replace("\n", " ")

    first.locator("button[value=done]").click()
    page.wait_for_load_state()
    assert page.locator("ul.tasks li.task .badge").first.inner_text() == "done"
    # The stylesheet loaded under the CSP, and nothing was blocked.
    assert page.evaluate("getComputedStyle(document.body).marginTop") == "0px"
    assert errors == []


def test_the_browser_shows_why_a_title_was_refused(page: Page, served_app: Callable[..., Stack]) -> None:
    stack = served_app(workers=1)
    page.goto(f"{stack.settings.app_url}/")
    # Bypass the input's own maxlength, as a hand-made request would.
    page.evaluate("document.querySelector('#title').removeAttribute('maxlength')")
    page.fill("#title", "x" * 201)
    page.click("form.add button[type=submit]")
    page.wait_for_load_state()
    assert "must be at most 200 characters" in page.locator("p.error").inner_text()
    assert page.locator("li.empty").is_visible()
