"""predict.py's report page in a real browser: Debian's headless Chromium, driven by Playwright.

The page must load its video, show one timeline row per labeled person, and seek the video into a segment when
the segment is clicked. ``.ci/run`` installs Chromium; without it these tests fail and say so, never skip.
"""

import json
from pathlib import Path

import pytest

from behavior.predict.pages import class_colors, labeled_people
from behavior.predict.session import Predictor
from behavior.settings import DetectorSettings, PredictSettings

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-quic"]  # offline: no connection is ever tried


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: install Debian's chromium "
                    "(apt-get install chromium; .ci/run does)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: .venv/bin/pip install -r requirements.txt", pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


def check_report(browser, folder: Path) -> dict:
    """Open folder/report.html, check the video, the rows and a click, save a screenshot; returns what was seen."""
    summary = json.loads((folder / "summary.json").read_text())
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto((folder / "report.html").as_uri())
    page.wait_for_function("document.getElementById('video').readyState >= 1", timeout=30_000)
    seen = {"duration": page.evaluate("document.getElementById('video').duration"),
            "rows": page.locator(".row").count()}
    assert seen["duration"] == pytest.approx(summary["duration_s"], abs=0.2)
    assert seen["rows"] == len(labeled_people(summary))
    segment = page.locator(".seg").last
    start, end = float(segment.get_attribute("data-start")), float(segment.get_attribute("data-end"))
    segment.click()
    page.wait_for_function("!document.getElementById('video').seeking && document.getElementById('video')"
                           f".currentTime > {start - 0.001}", timeout=10_000)
    seen["time"] = page.evaluate("document.getElementById('video').currentTime")
    assert start <= seen["time"] <= end
    page.screenshot(path=str(folder / "screenshot.png"), full_page=True)
    page.close()
    return seen


def test_the_report_of_a_generated_clip_works_in_a_browser(tiny_checkpoint, sample_clips, tmp_path, browser):
    predictor = Predictor(tiny_checkpoint, PredictSettings(stride=2, detector=DetectorSettings(batch=1)))
    predictor.run(sample_clips / "walking" / "walking_1.mp4", tmp_path / "out", progress=False)
    seen = check_report(browser, tmp_path / "out")
    assert seen["rows"] >= 1 and (tmp_path / "out" / "screenshot.png").stat().st_size > 10_000
    assert (tmp_path / "out" / "timeline.png").stat().st_size > 5_000


def test_the_report_of_a_real_fight_clip_works_in_a_browser(tiny_checkpoint, surv_fight, tmp_path, browser):
    """A real surveillance clip with several people: a row for each labeled one, in the video's class colors."""
    predictor = Predictor(tiny_checkpoint, PredictSettings(detector=DetectorSettings(batch=1)))
    summary = predictor.run(surv_fight / "fight" / "fi003.mp4", tmp_path / "out", progress=False)
    seen = check_report(browser, tmp_path / "out")
    assert seen["rows"] == len(labeled_people(summary)) >= 2
    page = (tmp_path / "out" / "report.html").read_text()
    assert all(color in page for color in class_colors(summary["classes"]).values())
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch
