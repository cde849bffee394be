"""Where the headless Chromium comes from, for the browser tests and the console bench alike.

Chromium comes from Debian (``apt-get install chromium``, done by ``make test``); Playwright never downloads
a browser here (``SESCONTACTS_CHROMIUM`` names another binary).
"""

from __future__ import annotations

import os
from typing import Any

CHROMIUM = os.environ.get("SESCONTACTS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def launch_chromium(playwright: Any) -> Any:
    """The Debian Chromium, headless, through a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
