"""The page of one fuzz campaign (``OUT/campaign.html``) and its summary in the main report.

Both are drawn from ``campaign.json`` (written by harness.fuzzing.engine): the campaign's
numbers, plots of its ``series`` samples as inline SVG, and on the page the findings with their
minimized input and reproducers, the regression vectors written and the errors. Like the main
report the page is one file that works offline: inline CSS and SVG, nothing fetched, one
optional script (the copy buttons) pinned by its hash in the Content-Security-Policy, and every
string from the file escaped by jinja2's autoescape (the numbers are parsed, never trusted).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

SCHEMA_PREFIX = "sspi-harness/fuzz-campaign/"
#: Bytes of a finding's input shown in hex (libFuzzer's -max_len is 4096).
MAX_INPUT_BYTES = 512
#: Points per line in a plot (a one-hour campaign has 7200 samples).
MAX_POINTS = 400

_TEMPLATES = Path(__file__).resolve().parent / "templates"
_HASH_PLACEHOLDER = "__SSPI_SCRIPT_HASH__"
_SCRIPT = re.compile(r'<script id="campaign-js">(.*?)</script>', re.DOTALL)
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")

# Plot geometry (SVG user units): the drawing area and the room for ticks and the legend.
_WIDTH, _HEIGHT = 480, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 50, 468, 34, 194

#: (plot title, ((series key, legend name, colour), …)); a plot shares one y axis.
PLOTS: tuple[tuple[str, tuple[tuple[str, str, str], ...]], ...] = (
    (
        "Executions over time",
        (("execs", "execs", "#0969da"), ("calls", "adapter calls", "#8250df")),
    ),
    ("Coverage over time", (("cov", "cov", "#1a7f37"), ("ft", "ft", "#bf8700"))),
    (
        "Findings and features over time",
        (("findings", "findings", "#cf222e"), ("features", "features", "#57606a")),
    ),
)


class CampaignFileError(ValueError):
    """A campaign folder that cannot be shown (missing, or a malformed campaign.json)."""


@dataclass(frozen=True)
class Campaign:
    """A campaign's folder and its ``campaign.json``."""

    directory: Path
    data: dict[str, Any]


def load_campaign(directory: Path) -> Campaign:
    """Read ``directory/campaign.json``; CampaignFileError (one line) when it cannot be used."""
    if not directory.is_dir():
        what = "is not a folder" if directory.exists() else "does not exist"
        raise CampaignFileError(f"campaign folder {directory} {what}")
    path = directory / "campaign.json"
    if not path.is_file():
        raise CampaignFileError(f"{directory} has no campaign.json (not a fuzz campaign folder)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CampaignFileError(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CampaignFileError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at line {exc.lineno}"
        raise CampaignFileError(f"{path}: not valid JSON ({reason})") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(schema, str) or not schema.startswith(SCHEMA_PREFIX):
        raise CampaignFileError(f"{path}: not a fuzz campaign (no {SCHEMA_PREFIX}… schema)")
    return Campaign(directory, data)


def find_campaigns(out_dir: Path, extra: Sequence[Path] = ()) -> list[Campaign]:
    """The campaigns of a report: ``out_dir/fuzz/*/`` with a campaign.json, then ``extra``
    folders (each once); CampaignFileError for the first one that cannot be used."""
    folders = sorted(p.parent for p in (out_dir / "fuzz").glob("*/campaign.json"))
    campaigns: list[Campaign] = []
    seen: set[Path] = set()
    for folder in [*folders, *extra]:
        key = folder.resolve()
        if key not in seen:
            seen.add(key)
            campaigns.append(load_campaign(folder))
    return campaigns


# -- values from the file: parsed, never trusted --------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    """A finite number, or None (strings, booleans, NaN and infinities are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "–"
    return f"{number:,.0f}" if number == int(number) else f"{number:,.1f}"


def duration_text(value: Any) -> str:
    """Seconds as a person reads them: ``1.4 s``, ``2 min 05 s``, ``1 h 02 min``."""
    seconds = _number(value)
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _status(data: dict[str, Any]) -> str:
    if data.get("interrupted") is True:
        return "interrupted"
    return "final" if data.get("final") is True else "running"


_STATUS_NOTE = {
    "final": "finished and triaged",
    "interrupted": "stopped by Ctrl-C: findings kept, triage shortened",
    "running": "not final: still running, or killed before triage",
}


# -- plots ------------------------------------------------------------------------------------


@dataclass
class Line:
    name: str
    colour: str
    points: str  # "x,y x,y …" in SVG units
    last: str  # the last value, as shown in the legend


@dataclass
class Plot:
    title: str
    label: str  # the whole plot in words (aria-label and <title>)
    lines: list[Line] = field(default_factory=list)
    xticks: list[tuple[float, str]] = field(default_factory=list)
    yticks: list[tuple[float, str]] = field(default_factory=list)
    xlabel: str = ""
    empty: str = ""  # why nothing is drawn, when nothing is


def _nice_step(span: float, ticks: int = 5, *, integer: bool = False) -> float:
    """A 1, 2 or 5 × 10^k step that cuts ``span`` into about ``ticks`` parts."""
    raw = span / ticks if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return max(step, 1.0) if integer else step


def _short(value: float) -> str:
    """A tick label: 950, 1.2k, 3M."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _samples(series: Any) -> list[dict[str, Any]]:
    """The samples with a time, in time order, at most MAX_POINTS of them (evenly picked,
    the last one always kept)."""
    if not isinstance(series, list):
        return []
    samples = [s for s in series if isinstance(s, dict) and _number(s.get("t")) is not None]
    samples.sort(key=lambda s: float(s["t"]))
    if len(samples) > MAX_POINTS:
        step = (len(samples) - 1) / (MAX_POINTS - 1)
        samples = [samples[round(i * step)] for i in range(MAX_POINTS)]
    return samples


def _plot(title: str, keys: Sequence[tuple[str, str, str]], samples: list[dict[str, Any]]) -> Plot:
    columns = {key: [(float(s["t"]), _number(s.get(key))) for s in samples] for key, _, _ in keys}
    values = [v for column in columns.values() for _, v in column if v is not None]
    times = [float(s["t"]) for s in samples]
    if len(samples) < 2 or not values:
        empty = "no samples" if not samples else "one sample: nothing to plot yet"
        return Plot(title, f"{title}: {empty}", empty=empty)
    t_max = max(max(times), 1e-9)
    unit, scale = ("s", 1.0) if t_max <= 180 else ("min", 60.0) if t_max <= 10800 else ("h", 3600.0)
    x_step = _nice_step(t_max / scale)
    y_top = max(max(values), 1.0)
    y_step = _nice_step(y_top, integer=True)
    y_top = math.ceil(y_top / y_step) * y_step

    def x(t: float) -> float:
        return _LEFT + (_RIGHT - _LEFT) * max(t, 0.0) / t_max

    def y(v: float) -> float:
        return _BOTTOM - (_BOTTOM - _TOP) * min(max(v, 0.0), y_top) / y_top

    plot = Plot(title, "", xlabel=f"time ({unit})")
    words = []
    for key, name, colour in keys:
        points = [(t, v) for t, v in columns[key] if v is not None]
        if not points:
            continue
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        plot.lines.append(Line(name, colour, path, _count(points[-1][1])))
        words.append(f"{name} from {_count(points[0][1])} to {_count(points[-1][1])}")
    plot.label = f"{title}: {', '.join(words)}, over {duration_text(t_max)}"
    ticks = int(t_max / scale / x_step + 1e-9)
    plot.xticks = [(x(k * x_step * scale), _short(k * x_step)) for k in range(ticks + 1)]
    plot.yticks = [(y(k * y_step), _short(k * y_step)) for k in range(int(y_top / y_step) + 1)]
    return plot


def plots(data: dict[str, Any]) -> list[Plot]:
    """The campaign's plots, from its ``series``."""
    samples = _samples(data.get("series"))
    return [_plot(title, keys, samples) for title, keys in PLOTS]


# -- findings ---------------------------------------------------------------------------------


def _hex_dump(hex_text: str) -> tuple[str, str]:
    """The input as 16-byte lines with offsets, and a note when it was cut."""
    data = bytes.fromhex(hex_text)
    shown = data[:MAX_INPUT_BYTES]
    lines = [
        f"{offset:04x}  " + " ".join(f"{b:02x}" for b in shown[offset : offset + 16])
        for offset in range(0, len(shown), 16)
    ]
    note = ""
    if len(data) > len(shown):
        note = f"first {len(shown)} of {len(data)} bytes shown; the whole input is in the folder"
    return "\n".join(lines) or "(empty input)", note


def _input(record: dict[str, Any]) -> tuple[str, str, str]:
    """A finding's input as (label, hex dump, note): the minimized one when there is one."""
    for key, name in (("minimized_hex", "minimized"), ("input_hex", "input")):
        raw = record.get(key)
        if isinstance(raw, str) and _HEX.fullmatch(raw):
            size = len(raw) // 2
            if name == "minimized" and size == record.get("input_size"):
                name = "input"  # not minimized, or nothing could be taken out
            return (f"{name} ({size} bytes)", *_hex_dump(raw))
    return "input", "", "the input is not in campaign.json"


def _finding(record: Any, number: int) -> dict[str, Any]:
    record = record if isinstance(record, dict) else {"message": _text(record)}
    label, dump, note = _input(record)
    repro = record.get("reproducer")
    commands = list(repro.items()) if isinstance(repro, dict) else [("command", repro)]
    confirmed = record.get("confirmed")
    return {
        "anchor": f"finding-{number}",
        "id": _text(record.get("id")),
        "kind": _text(record.get("kind")),
        "signature": _text(record.get("signature")),
        "message": _text(record.get("message")),
        "confirmed": "yes" if confirmed is True else "no" if confirmed is False else "–",
        "hits": _count(record.get("hits")),
        "found": _text(record.get("found")),
        "found_by": _text(record.get("found_by")),
        "input_label": label,
        "input_hex": dump,
        "input_note": note,
        "reproducers": [
            {"label": _text(name), "command": cmd, "id": f"repro-{number}-{k}"}
            for k, (name, cmd) in enumerate(commands)
            if isinstance(cmd, str) and cmd
        ],
        "regression": _text(record.get("regression")),
        "folder": _text(record.get("folder")),
    }


# -- the views --------------------------------------------------------------------------------


def summary_line(data: dict[str, Any]) -> str:
    """One line, as the fuzz command prints it."""
    coverage, findings = _dict(data.get("coverage")), _list(data.get("findings"))
    return (
        f"{_text(data.get('target'))} × {_text(data.get('adapter'))} "
        f"({_text(data.get('isolation'))}): {_count(data.get('execs'))} execs in "
        f"{duration_text(data.get('duration_s'))} ({_count(data.get('exec_per_s'))}/s), "
        f"{_count(data.get('calls'))} adapter calls, cov {_count(coverage.get('cov'))} "
        f"ft {_count(coverage.get('ft'))}, {_count(coverage.get('features'))} features, "
        f"{_count(data.get('restarts'))} restarts, {len(findings)} "
        f"finding{'' if len(findings) == 1 else 's'} — {_status(data)}"
    )


def campaign_view(data: dict[str, Any], *, href: str | None = None) -> dict[str, Any]:
    """What the templates show of a campaign (strings and numbers only)."""
    data = _dict(data)
    coverage, budget = _dict(data.get("coverage")), _dict(data.get("budget"))
    raw_findings = _list(data.get("findings"))
    status = _status(data)
    limits = []
    if _number(budget.get("seconds")) is not None:
        limits.append(duration_text(budget.get("seconds")))
    if _number(budget.get("runs")) is not None:
        limits.append(f"{_count(budget.get('runs'))} inputs")
    metrics = [
        ("duration", duration_text(data.get("duration_s"))),
        ("execs", _count(data.get("execs"))),
        ("exec/s", _count(data.get("exec_per_s"))),
        ("adapter calls", _count(data.get("calls"))),
        ("cov / ft", f"{_count(coverage.get('cov'))} / {_count(coverage.get('ft'))}"),
        ("features", _count(coverage.get("features"))),
        ("restarts", _count(data.get("restarts"))),
        ("findings", str(len(raw_findings))),
    ]

    return {
        "title": f"Fuzz campaign: {_text(data.get('target'))} × {_text(data.get('adapter'))}",
        "target": _text(data.get("target")),
        "adapter": _text(data.get("adapter")),
        "isolation": _text(data.get("isolation")),
        "profile": _text(data.get("profile")),
        "jobs": _count(data.get("jobs")),
        "budget": " or ".join(limits),
        "started": _text(data.get("started")),
        "command": _text(data.get("command")),
        "status": status,
        "status_note": _STATUS_NOTE[status],
        "summary": summary_line(data),
        "metrics": metrics,
        "plots": plots(data),
        "findings": [_finding(f, n) for n, f in enumerate(raw_findings, 1)],
        "regressions": [_text(r) for r in _list(data.get("regressions"))],
        "errors": [_text(e) for e in _list(data.get("errors"))],
        "href": href,
        "g": {
            "width": _WIDTH,
            "height": _HEIGHT,
            "left": _LEFT,
            "right": _RIGHT,
            "top": _TOP,
            "bottom": _BOTTOM,
            "legend_step": 210,
        },
    }


def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_campaign(campaign: dict[str, Any]) -> str:
    """The campaign page: one self-contained HTML file."""
    view = campaign_view(campaign)
    html = (
        _env()
        .get_template("campaign.html.j2")
        .render(c=view, embedded=False, script_hash=_HASH_PLACEHOLDER)
    )
    found = _SCRIPT.search(html)
    if found is None:
        raise RuntimeError("campaign template lost its script")
    digest = base64.b64encode(hashlib.sha256(found.group(1).encode("utf-8")).digest()).decode()
    return html.replace(_HASH_PLACEHOLDER, f"sha256-{digest}", 1)


def campaign_fragment(campaign: dict[str, Any], *, href: str | None = None) -> Markup:
    """The summary and the plots, for embedding in another page (which includes
    ``templates/campaign.css`` in its style); ``href`` links the campaign page."""
    view = campaign_view(campaign, href=href)
    return Markup(_env().get_template("campaign_fragment.html.j2").render(c=view, embedded=True))


def write_campaign_page(campaign_dir: Path) -> Path:
    """Write ``campaign_dir/campaign.html`` from its campaign.json, atomically."""
    campaign = load_campaign(Path(campaign_dir))
    target = campaign.directory / "campaign.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(render_campaign(campaign.data), encoding="utf-8", errors="replace")
    os.replace(tmp, target)
    return target


__all__ = [
    "Campaign",
    "CampaignFileError",
    "campaign_fragment",
    "find_campaigns",
    "load_campaign",
    "render_campaign",
    "summary_line",
    "write_campaign_page",
]
