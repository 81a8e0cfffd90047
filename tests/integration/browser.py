"""Debian's headless Chromium driven by Playwright, for tests that use the Prefect UI as a
person would, as plain helpers.

Playwright cannot download its own browser build on these machines, so it launches
/usr/bin/chromium (`make test` installs Debian's `chromium` package when it is missing).
Chromium's background services (updates, sync, safe browsing lists) would try the network;
the flags below keep every connection on loopback. Locators are the UI's words (roles,
labels, texts) wherever the Prefect UI gives them, and CSS classes of its component
library (`p-tab`, `state-badge`, `schema-form-property`) where it does not.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the suite runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
# Every wait on a page (locators, navigation, expect): the UI on 2 busy cores can be slow to answer.
DEFAULT_TIMEOUT_MS = 60_000


class Browser:
    """One page of a headless Chromium, and numbered screenshots of it under `shots`."""

    def __init__(self, page, shots: Path):
        self.page = page
        self.shots = shots
        self._count = 0

    def shot(self, name: str, full_page: bool = False) -> Path:
        """Save a screenshot of the viewport (or the whole page) as `NN-name.png`; returns
        its path."""
        self._count += 1
        path = self.shots / f"{self._count:02d}-{name}.png"
        # Transitions (a dialog fading in, a page fading out) are fast-forwarded to their end.
        self.page.screenshot(path=str(path), animations="disabled", full_page=full_page)
        return path


@contextmanager
def chromium(shots: Path) -> Iterator[Browser]:
    """Launch Debian's Chromium headless; yield a Browser on a fresh page; close it all."""
    from playwright.sync_api import expect, sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium "
                           "(apt-get install --no-install-recommends chromium)")
    shots.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.set_default_timeout(DEFAULT_TIMEOUT_MS)
            yield Browser(page, shots)
        finally:
            browser.close()


def ui_url(api_url: str) -> str:
    """The Prefect UI's root: `prefect server start` serves it beside the API."""
    return api_url.removesuffix("/api")


def schema_form_input(page, label: str):
    """The input of the parameter-form field labelled `label` (its own label, not a nested
    field's; "(Optional)" may follow). The form's labels are not tied to their inputs, so the
    field is found by its label's nearest enclosing form property."""
    return page.locator(
        "xpath=//span[contains(@class, 'schema-form-property__label')]"
        f"[normalize-space()={_xpath_literal(label)} or "
        f"normalize-space()={_xpath_literal(label + ' (Optional)')}]"
        "/ancestor::div[contains(concat(' ', normalize-space(@class), ' '),"
        " ' schema-form-property ')][1]//input")


def state_badge(page):
    """The state badge in a flow run page's heading (Running, Completed, Cancelled ...)."""
    return page.locator(".page-heading-flow-run__meta .state-badge")


def open_tab(page, name: str) -> None:
    """Click the tab `name` of a page's tab bar (Logs, Task Runs, Artifacts ...)."""
    page.locator(".p-tab", has_text=re.compile(rf"^{re.escape(name)}$")).click()


def _xpath_literal(text: str) -> str:
    return f"'{text}'" if "'" not in text else f'"{text}"'
