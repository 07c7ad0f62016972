"""The monitoring charts of the HTML report, looked at in a real headless Chromium (Debian's `chromium`).

The report of a record with monitoring data is rendered to a file, Chromium takes a screenshot of it, and the
screenshot (decoded here: PNG is zlib with per-row filters) must show the charts' line colour - used nowhere
else in the report - over a wide stretch of the page, in as many separate panels as there are series; the same
report without the section shows none of it. Chromium's own DOM (--dump-dom) must hold one polyline per series
with every point. The screenshots stay in the test's tmp dir.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from rollbackctl.report import render_html
from rollbackctl.report.metrics_chart import SERIES_COLOUR

from ..unit.test_monitoring_data import with_data
from ..unit.test_report import successful_rehearsal

WIDTH, HEIGHT = 1280, 3000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = shutil.which("chromium")
    if not binary:
        pytest.skip("Debian's chromium is absent (scripts/install-deps.sh installs it)")
    return binary


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120, check=True)


def screenshot(chromium: str, page: Path, out: Path) -> Path:
    _run(chromium, out.parent / f"{out.stem}-profile", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}",
         page.as_uri())
    return out


def decode_png(path: Path) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of raw pixels, bytes per pixel) of an 8-bit RGB/RGBA non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows, bpp


def colour_pixels(path: Path, colour: str, tolerance: int = 40) -> list[tuple[int, int]]:
    """(x, y) of the pixels within `tolerance` (per channel) of `colour`."""
    target = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
    width, _, rows, bpp = decode_png(path)
    found = []
    for y, row in enumerate(rows):
        for x in range(width):
            r, g, b = row[x * bpp:x * bpp + 3]
            if abs(r - target[0]) <= tolerance and abs(g - target[1]) <= tolerance and abs(b - target[2]) <= tolerance:
                found.append((x, y))
    return found


def bands(ys: list[int], gap: int = 20) -> list[tuple[int, int]]:
    """Vertical stretches of the page the pixels fall in (runs of rows at most `gap` apart)."""
    out: list[tuple[int, int]] = []
    for y in sorted(set(ys)):
        if out and y - out[-1][1] <= gap:
            out[-1] = (out[-1][0], y)
        else:
            out.append((y, y))
    return out


def test_the_charts_are_drawn_in_chromium(chromium, tmp_path):
    record = with_data(successful_rehearsal())
    series = record["monitoring_data"]["series"]
    multi = [s for s in series if len(s["points"]) > 1]
    with_charts, without = tmp_path / "report.html", tmp_path / "report-without.html"
    with_charts.write_text(render_html(record))
    del record["monitoring_data"]
    without.write_text(render_html(record))

    shot = screenshot(chromium, with_charts, tmp_path / "report.png")
    # A copy for people to look at, at a path in the repository (git-ignored): .artifacts/report-charts.png
    artifacts = Path(__file__).resolve().parents[2] / ".artifacts"
    artifacts.mkdir(exist_ok=True)
    shutil.copyfile(shot, artifacts / "report-charts.png")
    pixels = colour_pixels(shot, SERIES_COLOUR)
    assert len(pixels) > 30, f"no chart line in {shot}"
    # One stretch of line per panel with more than one point (a single point draws no line).
    assert len(bands([y for _, y in pixels])) == len(multi), (bands([y for _, y in pixels]), shot)
    assert colour_pixels(screenshot(chromium, without, tmp_path / "report-without.png"), SERIES_COLOUR) == []

    dom = _run(chromium, tmp_path / "dom-profile", "--dump-dom", with_charts.as_uri()).stdout
    drawn = re.findall(r'<polyline class="series" data-metric="([a-z_0-9]+)" data-points="(\d+)" points="([^"]*)"',
                       dom)
    assert [(m, int(n), len(p.split())) for m, n, p in drawn] == \
        [(s["metric"], len(s["points"]), len(s["points"])) for s in series]
