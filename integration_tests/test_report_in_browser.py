"""``report.html`` of ``wengert-hpcgan evaluate`` rendered in a real headless Chromium: every
figure decodes, the page logs no console error, and nothing is fetched from the network.

Chromium comes from the system's packages (Debian: ``apt-get install chromium``; ``make
test`` installs it where it runs as root with apt) and is driven by the ``playwright``
package with that executable (playwright's own browser download is never used). Where either
is missing the test skips and says which."""

from __future__ import annotations

import shutil

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

# What section 4 of the report promises, by the figure (and alt text) that shows it.
FIGURES = {"statistics": "reference-vs-generated mean/std maps", "errors": "error maps",
           "losses": "loss curves", "histograms": "marginals at validation wells",
           "site": "wells"}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.skip("no Chromium on PATH: apt-get install chromium (make test does it as root)")


def test_report_renders_every_figure_without_console_errors(distributed_run):
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed: pip install playwright")
    page_url = (distributed_run / "report.html").resolve().as_uri()
    errors: list[str] = []
    fetched: list[str] = []
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("requestfailed", lambda r: errors.append(f"failed to load {r.url}"))
            page.on("request", lambda r: fetched.append(r.url))
            page.goto(page_url, wait_until="load")
            images = page.evaluate("""Array.from(document.images).map(i => ({
                alt: i.alt, complete: i.complete, width: i.naturalWidth,
                height: i.naturalHeight}))""")
            text = page.inner_text("body")
            table_rows = page.locator("table.metrics tr").count()
        finally:
            browser.close()
    assert errors == []
    assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []  # no network
    assert sorted(i["alt"] for i in images) == sorted(FIGURES)
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
    for heading in ("configuration", "PI-GAN", "one solve, K = exp(E[Y])"):
        assert heading in text
    assert table_rows == 1 + 8  # header, then four metrics at the site and at validation wells
