"""report.html in a real browser: headless Chromium at 1400 x 900, measured from inside the page.

The first screen must hold the headline figures and a whole plot; every image must load and be shown at a
readable size (not squeezed below 0.6 of its drawn width); nothing may overflow sideways. A screenshot of the
first screen is saved (set GRADER_SCREENSHOT_DIR to keep it) for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from browser import Browser, chromium_path
from test_eval_report import _runs
from typer.testing import CliRunner

from grader.cli import app
from grader.evaluation.report import write_report
from grader.evaluation.summary import summarise

WIDTH, HEIGHT = 1400, 900
MEASURE = """(() => {
  const de = document.documentElement;
  const box = e => { const r = e.getBoundingClientRect();
    return {top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left, right: r.right, width: r.width}; };
  return {
    clientWidth: de.clientWidth, scrollWidth: de.scrollWidth, innerHeight: window.innerHeight,
    tiles: [...document.querySelectorAll('[data-headline]')].map(e => ({text: e.innerText, ...box(e)})),
    images: [...document.images].map(i => ({alt: i.alt, src: i.getAttribute('src').slice(0, 22),
      complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight, ...box(i)})),
    warning: (w => w ? {text: w.innerText, ...box(w)} : null)(document.querySelector('[data-warning]')),
  };
})()"""


@pytest.fixture(scope="session")
def chromium() -> str:
    return chromium_path()  # installs Debian's chromium when it is missing; never skipped


def _keep(shot: Path) -> None:
    keep = os.environ.get("GRADER_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def _check_in_browser(html: Path, shot: Path) -> dict[str, Any]:
    with Browser(html, WIDTH, HEIGHT) as page:
        first = page.evaluate(MEASURE)
        page.screenshot(shot)
        page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
        opened = page.evaluate(MEASURE)
    _keep(shot)
    assert first["innerHeight"] == HEIGHT and first["clientWidth"] == WIDTH

    # The first screen: the five headline figures, each with a figure and its interval, and a whole plot.
    assert len(first["tiles"]) == 5
    for tile in first["tiles"]:
        assert tile["bottom"] <= HEIGHT, tile
        assert re.search(r"\d\.\d{3}\s.*\[\d\.\d{3}, \d\.\d{3}\]", tile["text"], re.S), tile["text"]
    assert any(img["bottom"] <= HEIGHT and img["naturalWidth"] > 0 for img in first["images"])

    # Every image (folded sections opened) has loaded, from inside the file, at a readable size.
    for state in (first, opened):
        assert state["scrollWidth"] <= state["clientWidth"], "the page overflows sideways"
    for img in opened["images"]:
        assert img["src"].startswith("data:image/png;base64")
        assert img["complete"] and img["naturalWidth"] > 0, img
        assert img["width"] >= 0.6 * img["naturalWidth"] and img["width"] >= 300, img

    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (HEIGHT, WIDTH) and float(pixels[..., :3].std()) > 0.05
    return first


def test_report_of_a_real_eval_reads_in_a_browser(chromium: str, mohler_dev_path: Path, tmp_path: Path) -> None:
    """`grader eval --cv --report` on Mohler questions (two human graders, in-sample calibration)."""
    import json

    subset = tmp_path / "mohler.jsonl"
    keep = {"1.1", "2.1", "3.3", "4.2", "5.4", "7.1"}
    rows = [line for line in mohler_dev_path.read_text().splitlines() if line.strip()]
    subset.write_text("\n".join(r for r in rows if json.loads(r)["question_id"] in keep) + "\n")
    report = tmp_path / "report"
    result = CliRunner().invoke(app, ["eval", str(subset), "--judge", "none", "--cv", "--resamples", "200",
                                      "--report", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    first = _check_in_browser(report / "report.html", tmp_path / "report-mohler-first-screen.png")
    qwk = next(t for t in first["tiles"] if t["text"].startswith("QWK"))
    assert "human A vs B" in qwk["text"]
    html = (report / "report.html").read_text()
    # The honest, held-out figure leads; the in-sample one is named beside it as overstated.
    assert "default (CV), held out" in html and "overstates agreement" in html


def test_many_questions_and_configurations_stay_readable(chromium: str, tmp_path: Path) -> None:
    runs = _runs(n_questions=40, per_question=6, cv_twin=True)
    notes = ["offline: IN-SAMPLE. Its calibration (calibration.json) was fitted on this very data set."]
    summary = summarise("set.jsonl", runs, 240, 40, 5.0, resamples=50, notes=notes)
    html = write_report(summary, runs, tmp_path / "rep")
    _check_in_browser(html, tmp_path / "report-40-questions-first-screen.png")


def test_in_sample_warning_is_in_the_first_screen(chromium: str, tmp_path: Path) -> None:
    runs = _runs()[:1]
    notes = ["offline: IN-SAMPLE. Its calibration (calibration.json) was fitted on this very data set."]
    summary = summarise("set.jsonl", runs, 120, 8, 5.0, resamples=50, notes=notes)
    first = _check_in_browser(write_report(summary, runs, tmp_path / "rep"), tmp_path / "in-sample.png")
    assert first["warning"] is not None and first["warning"]["bottom"] <= HEIGHT
    assert "IN-SAMPLE" in first["warning"]["text"]
