"""Headless Chromium (Debian's `chromium`) for the report tests: the DOM after scripts
ran, console errors, and a screenshot. `make test` installs it; without it the tests
skip with a loud reason."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("WATTLINE_ARTIFACTS", ROOT / "artifacts")) / "screenshots"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--virtual-time-budget=15000",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "SKIPPED LOUDLY: no chromium on this machine; `make test` installs Debian's "
            "chromium with apt-get, which failed or was not allowed here"
        )
    return found


@dataclass(frozen=True)
class Page:
    dom: str
    console_errors: list[str]
    screenshot: Path


def open_page(url: str, name: str, height: int = 7000) -> Page:
    """Load `url` (http:// or file://) twice: once for the DOM, once for a screenshot."""
    exe = chromium()
    profile = ARTIFACTS.parent / "chromium-profile"
    base = [exe, *FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    subprocess.run(
        [*base, f"--window-size=1280,{height}", f"--screenshot={shot}", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    errors = [
        line
        for line in dom.stderr.splitlines()
        if "CONSOLE" in line and re.search(r"error|uncaught", line, re.IGNORECASE)
    ]
    return Page(dom.stdout, errors, shot)


def figures(dom: str) -> list[tuple[str, str]]:
    """(data-chart name, inner HTML) of every chart figure."""
    return re.findall(r'<figure class="chart" data-chart="([^"]+)">(.*?)</figure>', dom, re.S)


def marks(inner: str) -> int:
    """Drawn marks in a chart's SVG: Vega's mark paths with geometry, and text-free rects."""
    return len(re.findall(r'<path[^>]* d="M[^"]+', inner))


SECTIONS = ("overview", "devices", "waste_ranking", "quality", "energy_management")


def section_shots(page: Path, name: str, height: int = 2400) -> list[Path]:
    """One screenshot per section of a report file: a copy of the page that hides the
    other sections (anchors do not scroll a headless screenshot), so every section is
    seen however long the device pages make the page."""
    html = page.read_text(encoding="utf-8")
    shots = []
    for section in SECTIONS:
        hide = f"<style>main>section:not(#{section}){{display:none}}</style></head>"
        copy = page.with_name(f"{page.stem}-{section}.html")
        copy.write_text(html.replace("</head>", hide, 1), encoding="utf-8")
        shots.append(open_page(copy.as_uri(), f"{name}-{section}", height).screenshot)
    return shots
