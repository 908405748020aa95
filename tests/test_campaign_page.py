"""The fuzz campaign page (harness/report/campaign.py), ``sspi-harness fuzz`` writing it, and the
"Fuzz campaigns" section of the main report, from real campaigns.

The campaigns are short and seeded: a mutant that accepts replayed messages is caught by the
``verify`` target within 200 inputs (about two seconds), without minimization.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html as html_lib
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.fuzzing import run_campaign
from harness.fuzzing.cli import main_fuzz
from harness.report.campaign import (
    MAX_INPUT_BYTES,
    MAX_POINTS,
    campaign_fragment,
    render_campaign,
    write_campaign_page,
)

REPO = Path(__file__).resolve().parents[1]
REPLAYS = "harness.adapters.mutants:AcceptsReplays"
SIGNATURE = "accepts-rejected:VerifySignature:SEC_E_OUT_OF_SEQUENCE"
HOSTILE = "<script>alert(1)</script>"
CASE = "verify-replay[ntlmv2]"  # one quick conformance case for the main report


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real campaign that finds the mutant's bug, its regression vector and its page."""
    base = tmp_path_factory.mktemp("campaign")
    result = run_campaign(REPLAYS, "verify", runs=200, out_dir=base / "replays", seed=1,
                          minimize=False, regressions_dir=base / "regressions")
    assert [f["signature"] for f in result.findings] == [SIGNATURE]
    write_campaign_page(base / "replays")
    return base / "replays"


def _data(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "campaign.json").read_text())
    return data


def _points(page: str, series: str) -> list[tuple[float, float]]:
    """The points of one plotted line (the first plot that draws ``series``)."""
    found = re.search(rf'data-series="{re.escape(series)}" points="([^"]*)"', page)
    assert found is not None, f"no line for {series}"
    return [(float(x), float(y)) for x, y in (p.split(",") for p in found.group(1).split())]


def test_the_page_shows_the_campaign_its_plots_and_its_finding(campaign: Path) -> None:
    data = _data(campaign)
    page = (campaign / "campaign.html").read_text(encoding="utf-8")
    assert not (campaign / "campaign.html.tmp").exists()

    # The header: what ran, how much, how it ended.
    assert "<title>Fuzz campaign: verify × harness.adapters.mutants:AcceptsReplays</title>" in page
    assert '<span class="status status-final">final</span>' in page
    for name, value in (("execs", data["execs"]), ("adapter calls", data["calls"]),
                        ("restarts", data["restarts"]), ("findings", 1)):
        assert f"<dt>{name}</dt><dd>{value:,}</dd>" in page
    cov = data["coverage"]
    assert f"<dt>cov / ft</dt><dd>{cov['cov']:,} / {cov['ft']:,}</dd>" in page

    # Three plots of the series, with labelled axes and a legend carrying the last values.
    series = data["series"]
    assert 2 <= len(series) <= MAX_POINTS
    assert page.count('<svg class="plot"') == 3 and "no samples" not in page
    last = series[-1]
    for name, key in (("execs", "execs"), ("adapter calls", "calls"), ("cov", "cov"),
                      ("ft", "ft"), ("findings", "findings"), ("features", "features")):
        assert f">{name} {last[key]:,}</text>" in page
        assert len(_points(page, name)) == len(series)
    first = series[0]
    assert (f'aria-label="Executions over time: execs from {first["execs"]:,} to '
            f'{last["execs"]:,}, adapter calls from ') in page
    assert page.count(">time (s)</text>") == 3 and page.count('class="ytick"') >= 6
    # Later samples are drawn to the right, higher values higher.
    execs = _points(page, "execs")
    values = [s["execs"] for s in series]
    assert [x for x, _ in execs] == sorted(x for x, _ in execs)
    for (_, y0), (_, y1), v0, v1 in zip(execs, execs[1:], values, values[1:], strict=False):
        assert (y1 < y0) == (v1 > v0) and (y1 == y0) == (v1 == v0)

    # The finding: kind, signature, message, hits, its minimized input and both reproducers.
    finding = data["findings"][0]
    assert finding["signature"] == SIGNATURE and finding["confirmed"] is True
    assert f'<code class="signature">{SIGNATURE}</code>' in page
    assert html_lib.escape(finding["message"]) in page
    assert f'<td class="hits">{finding["hits"]:,}</td>' in page
    assert '<td class="confirmed">yes</td>' in page
    first_line = " ".join(re.findall("..", finding["minimized_hex"][:32]))
    assert f"0000  {first_line}" in page
    assert f"Input: input ({finding['minimized_size']} bytes)" in page  # not minimized
    for command in (finding["reproducer"]["atheris"], finding["reproducer"]["harness"]):
        assert f">{html_lib.escape(command)}</code>" in page
    assert "--replay" in finding["reproducer"]["harness"]
    # The regression vector written for it.
    assert data["regressions"] == [finding["regression"]]
    assert f"<li><code>{finding['regression']}</code></li>" in page

    # Self-contained: nothing fetched, one script, allowed by its hash only.
    assert not re.search(r'\s(?:src|href)="(?:https?:)?//', page)
    assert page.count("<script") == 1
    script = re.search(r'<script id="campaign-js">(.*?)</script>', page, re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"default-src 'none'; script-src 'sha256-{digest}'" in page


def test_everything_from_the_file_is_escaped(campaign: Path) -> None:
    data = copy.deepcopy(_data(campaign))
    finding = data["findings"][0]
    finding["message"] = HOSTILE
    finding["signature"] = f"sig{HOSTILE}"
    finding["kind"] = '"><img src=x onerror=alert(2)>'
    finding["reproducer"] = {"harness": f"</code>{HOSTILE}", "<b>label</b>": "x"}
    finding["minimized_hex"] = finding["input_hex"] = "zz" + HOSTILE  # not hex: not shown
    data["adapter"] = HOSTILE
    data["errors"] = [HOSTILE]
    data["regressions"] = [HOSTILE]
    data["series"].append({"t": HOSTILE, "execs": HOSTILE})
    data["series"].append({"t": 1e9, "execs": "12", "cov": True, "ft": None})
    for text in (render_campaign(data), str(campaign_fragment(data, href=None))):
        assert HOSTILE not in text and "<img" not in text and "<b>" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = render_campaign(data)
    assert page.count("<script") == 1
    assert "the input is not in campaign.json" in page
    assert f"<p class=\"message\">{html_lib.escape(HOSTILE)}</p>" in page


def test_an_interrupted_or_empty_campaign_still_has_a_page(campaign: Path) -> None:
    data = _data(campaign)
    empty = {**data, "interrupted": True, "final": True, "series": [], "findings": []}
    page = render_campaign(empty)
    assert '<span class="status status-interrupted">interrupted</span>' in page
    assert page.count('<p class="no-samples">no samples</p>') == 3
    assert "<svg" not in page and "No findings." in page

    one = {**data, "final": False, "interrupted": False, "series": data["series"][-1:]}
    page = render_campaign(one)
    assert '<span class="status status-running">running</span>' in page
    assert page.count("one sample: nothing to plot yet") == 3

    # A long input is cut, and says so.
    big = {**data["findings"][0], "input_size": 4096, "minimized_size": 1000,
           "input_hex": "ab" * 4096, "minimized_hex": "cd" * 1000}
    page = render_campaign({**data, "findings": [big]})
    assert "Input: minimized (1000 bytes)" in page and "ab ab" not in page
    assert f"first {MAX_INPUT_BYTES} of 1000 bytes shown" in page
    dump = re.search(r'<pre class="hex"><code>(.*?)</code>', page, re.DOTALL)
    assert dump is not None and len(dump.group(1).splitlines()) == MAX_INPUT_BYTES // 16

    broken = {"schema": data["schema"], "series": "nope", "findings": [None, "text"],
              "coverage": [], "budget": 3}
    assert render_campaign(broken).count("<tbody class=\"finding\"") == 2

    # An hour of samples: drawn with at most MAX_POINTS points, in minutes.
    long = [{"t": 0.5 * (i + 1), "execs": 10 * i, "calls": 20 * i, "cov": i // 10,
             "ft": i // 5, "features": 3, "findings": i // 2000} for i in range(7200)]
    page = render_campaign({**data, "series": long})
    assert len(_points(page, "execs")) == MAX_POINTS
    assert ">execs 71,990</text>" in page and page.count(">time (min)</text>") == 3


def test_the_fuzz_command_writes_the_page_and_replays_do_not(
    campaign: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reference"
    argv = ["--adapter", "reference", "--target", "verify", "--runs", "100", "--seed", "1",
            "--no-minimize", "--no-regressions", "--out", str(out)]
    assert main_fuzz(argv) == 0
    err = capsys.readouterr().err
    assert f"campaign page: {out / 'campaign.html'}\n" in err
    assert "status-final" in (out / "campaign.html").read_text()

    folder = Path(_data(campaign)["findings"][0]["folder"])
    assert main_fuzz(["--replay", str(folder), "--out", str(tmp_path / "replay"), "--quiet"]) == 1
    assert not (tmp_path / "replay").exists()


def test_ctrl_c_keeps_campaign_json_and_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "fuzz", "--adapter", "reference", "--target",
         "verify", "--time", "60", "--no-regressions", "--out", str(out)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # A shell's background job ignores SIGINT, and Python then leaves it ignored (CI may
        # run the suite so): give the child the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 30
        while not (out / "campaign.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    data = _data(out)
    assert data["interrupted"] and data["final"]
    page = (out / "campaign.html").read_text()
    assert '<span class="status status-interrupted">interrupted</span>' in page
    assert f"campaign page: {out / 'campaign.html'}" in err


def _run(out: Path, *extra: str) -> int:
    return main(["run", "--adapter", "reference", "--case", CASE, "--out", str(out), "--quiet",
                 *extra])


def test_the_main_report_lists_the_campaigns(campaign: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    assert _run(plain) == 0
    assert "fuzz-campaigns" not in (plain / "index.html").read_text()  # no empty section

    out = tmp_path / "report"
    shutil.copytree(campaign, out / "fuzz" / "replays")
    elsewhere = tmp_path / "elsewhere" / "no-page"
    shutil.copytree(campaign, elsewhere)
    (elsewhere / "campaign.html").unlink()
    assert _run(out, "--campaign", str(elsewhere), "--campaign", str(out / "fuzz" / "replays")) == 0
    index = (out / "index.html").read_text()
    section = index.split('<section id="fuzz-campaigns">')[1].split("</section>")[0]
    assert "<h2>Fuzz campaigns</h2>" in section
    assert section.count('<article class="campaign">') == 2  # the copy given twice is shown once
    assert section.count('<svg class="plot"') == 6
    assert section.count('class="campaign-link"') == 1  # the second has no page to open
    assert 'href="fuzz/replays/campaign.html"' in section
    data = _data(campaign)
    assert f"{data['execs']:,} execs" in section and "1 finding — final" in section
    assert "<dt>findings</dt><dd>1</dd>" in section

    # A page elsewhere is linked relatively too.
    write_campaign_page(elsewhere)
    assert _run(out, "--campaign", str(elsewhere)) == 0
    assert 'href="../elsewhere/no-page/campaign.html"' in (out / "index.html").read_text()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "has no campaign.json"),
        (lambda d: (d.mkdir(), (d / "campaign.json").write_text('{"schema": ')),
         "campaign.json: not valid JSON (Expecting value at line 1)"),
        (lambda d: (d.mkdir(), (d / "campaign.json").write_text("[1, 2]")),
         "campaign.json: not a fuzz campaign"),
    ],
    ids=["missing", "no-campaign-json", "bad-json", "not-a-campaign"],
)
def test_a_bad_campaign_is_a_one_line_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    bad = tmp_path / "bad"
    make(bad)
    out = tmp_path / "out"
    assert _run(out, "--campaign", str(bad)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("sspi-harness: error: ")
    assert not out.exists()  # nothing ran

    if bad.is_dir():  # the same campaign found under OUT/fuzz/ is checked the same way
        if not (bad / "campaign.json").exists():
            return
        shutil.copytree(bad, out / "fuzz" / "bad")
        assert _run(out) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not (out / "results.jsonl").exists()
