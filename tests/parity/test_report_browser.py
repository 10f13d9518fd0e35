"""The seed run's HTML report and a study's, rendered in a real headless Chromium: every
image loads from the page itself, nothing is written to the console as an error, no
Markdown shows as literal text, the matrix and the contents are there, and a screenshot
can be taken. The page is read back through Chromium's own `--dump-dom` after a probe
script (added to a copy of the page) has run."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need
from parity.compare.tolerances import load_policy
from parity.pipeline.job import compare_outcome, write_run_reports
from parity.pipeline.workers import Outcome
from parity.schema import RunResults

PROBE = r"""<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); }, true);
(function () {
  var orig = console.error;
  console.error = function () {
    window.__errors.push(Array.prototype.join.call(arguments, ' '));
    orig.apply(console, arguments);
  };
})();
// Text a reader sees outside code spans that looks like Markdown left unrendered.
function literal() {
  var body = document.body.cloneNode(true);
  Array.prototype.forEach.call(body.querySelectorAll('code, script, pre'),
                               function (n) { n.remove(); });
  return (body.textContent.match(/\*\*|`|!\[|\]\(|\*(?=\w)|^#{1,6} /gm) || []);
}
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var report = {
    images: imgs.length,
    broken: imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length,
    embedded: imgs.filter(function (i) { return i.src.indexOf('data:image/') === 0; }).length,
    literal: literal(),
    errors: window.__errors,
    matrix: document.querySelectorAll('table td.cell-agree, table td.cell-disagree').length,
    toc: document.querySelectorAll('nav.toc a').length
  };
  var pre = document.createElement('pre');
  pre.id = 'parity-probe';
  pre.textContent = JSON.stringify(report);
  document.body.appendChild(pre);
});
</script>"""


def browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on PATH (`make browser-deps` installs Debian's chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser(), "--headless=new", "--no-sandbox", "--disable-gpu",
                           "--hide-scrollbars", *args], capture_output=True, text=True,
                          timeout=120)


def probe(page: Path) -> dict[str, object]:
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text("utf-8").replace("<head>", "<head>\n" + PROBE, 1),
                      "utf-8")
    out = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="parity-probe">([^<]*)</pre>', out.stdout)
    assert found, f"the probe did not run: {out.stderr[-500:]}"
    result: dict[str, object] = json.loads(found.group(1))
    return result


@pytest.fixture(scope="module")
def report(seed_outcome: Outcome, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    comparisons = compare_outcome(seed_outcome, load_policy(project=Path("/nonexistent")))
    results = RunResults(tuple(seed_outcome.fits), tuple(comparisons),
                         tuple(seed_outcome.reference_fits),
                         tuple(seed_outcome.optimum_checks))
    return write_run_reports(out, results)["html"]


def test_the_seed_report_renders_in_chromium(report: Path) -> None:
    seen = probe(report)
    figures = list((report.parent / "figures").glob("*.png"))
    assert seen["images"] == seen["embedded"] == len(figures) > 0
    assert seen["broken"] == 0
    assert seen["errors"] == []
    # Engine warnings quote code in backticks, and are shown verbatim; nothing else may
    # look like Markdown.
    assert [m for m in seen["literal"] if m != "`"] == []
    assert isinstance(seen["matrix"], int) and seen["matrix"] > 0
    assert isinstance(seen["toc"], int) and seen["toc"] >= 6  # a link per model at least
    shot = report.with_name("screenshot.png")
    _chromium(f"--screenshot={shot}", "--window-size=1280,1800", report.as_uri())
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_seed_report_stays_small(report: Path) -> None:
    """Every figure is embedded, so the figures are the page's weight: the seed report,
    crossed factors and group effects included, stays under 2 MB."""
    assert report.stat().st_size < 2_000_000


@pytest.fixture(scope="module")
def study_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need("R")
    if importlib.util.find_spec("distributed") is None:
        pytest.skip("dask.distributed is not installed (pip install 'parity[study]')")
    out = tmp_path_factory.mktemp("study")
    done = subprocess.run([sys.executable, "-m", "parity.cli", "study", "--model",
                           "subject_intercept", "--groups", "6", "--replicates", "2",
                           "--engines", "lme4,statsmodels", "--workers", "1", "--quiet",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out / "study.html"


def test_the_study_report_is_self_contained_and_renders_in_chromium(study_page: Path) -> None:
    text = study_page.read_text("utf-8")
    assert not re.search(r"""<img[^>]+src=["'](?!data:image/png;base64,)""", text)
    seen = probe(study_page)
    figures = list((study_page.parent / "figures").glob("*.png"))
    assert seen["images"] == seen["embedded"] == len(figures) >= 2  # coverage, bias
    assert seen["broken"] == 0
    assert seen["errors"] == []
    assert seen["literal"] == []
    assert isinstance(seen["toc"], int) and seen["toc"] >= 3  # a link per table


def test_the_probe_sees_literal_markdown(tmp_path: Path) -> None:
    """The Markdown check can fail: emphasis and a code span left as text are caught,
    and the same characters inside a code element are not."""
    page = tmp_path / "literal.html"
    page.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>"
                    "<p>*bias* against `agree`</p><p><code>y ~ a * b</code></p>"
                    "</body></html>", "utf-8")
    assert probe(page)["literal"] == ["*", "`", "`"]


def test_the_probe_sees_a_broken_image(tmp_path: Path) -> None:
    """The check can fail: a page with an image that does not decode is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body>'
                    '<img alt="x" src="data:image/png;base64,AAAA"></body></html>', "utf-8")
    seen = probe(page)
    assert seen["images"] == 1 and seen["broken"] == 1
