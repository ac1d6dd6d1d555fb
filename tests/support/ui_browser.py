"""Driving the web UI (/ui) in the Debian Chromium with Playwright's sync API.

Never downloads a browser: Playwright ships its own driver and is pointed at
``/usr/bin/chromium`` (the flags are those of ``benchmarks/screenshots.py``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.screenshots import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

__all__ = [
    "CHROMIUM",
    "SESSION_COOKIE",
    "VIEWPORT",
    "Watched",
    "chromium",
    "log_in",
    "png_size",
    "watch",
]

SESSION_COOKIE = "wdp_ui_session"
VIEWPORT = {"width": 1280, "height": 900}


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium for as long as the block runs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """What a context's pages did that a page of the UI never should."""

    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt messages
    page_errors: list[str] = field(default_factory=list)  # uncaught script errors
    console: list[str] = field(default_factory=list)  # console messages (CSP reports...)

    @property
    def refusals(self) -> list[str]:
        """Console reports of something the CSP refused (an injection it stopped)."""
        return [m for m in self.console if "Content Security Policy" in m or "Refused" in m]

    def clean(self) -> bool:
        return not (self.dialogs or self.page_errors or self.refusals)


def watch(context: BrowserContext) -> Watched:
    """Record every dialog, script error and console message of ``context``'s pages
    (a dialog is dismissed, so a page that opens one does not hang)."""
    seen = Watched()

    def on_page(page: Page) -> None:
        def on_dialog(dialog: Any) -> None:
            seen.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda exc: seen.page_errors.append(str(exc)))
        page.on("console", lambda msg: seen.console.append(f"{msg.type}: {msg.text}"))

    context.on("page", on_page)
    return seen


def log_in(page: Page, key: str, path: str = "/ui/runs") -> None:
    """Open ``path``, which sends the browser to the login form, and log in there."""
    page.goto(path)
    assert "/ui/login" in page.url, page.url
    page.get_by_label("Read API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    if "/ui/login" in page.url:  # refused: say why
        raise AssertionError(f"login refused: {page.get_by_role('alert').all_inner_texts()}")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of the PNG at ``path`` (AssertionError if it is not one)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert header[12:16] == b"IHDR", f"{path} has no IHDR chunk first"
    width, height = struct.unpack(">II", header[16:24])
    return width, height
