"""One self-contained `report.html`: statistics, every figure embedded, validity, environment, generated text.

Made to attach to a CI artifact or a PR comment: no file beside it is needed
(figures are `data:` URIs, the style is inline, nothing is fetched). A small
script marks the page with `data-images="loaded/total"` once the page has
loaded, so a headless browser can check that every figure decoded.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

from profiler import __version__
from profiler.compare.format import cell_parts, column_header, gate_lines, gate_summary, metric_name
from profiler.compare.reporting.labels import legend
from profiler.compare.runs import Comparison
from profiler.compare.stats import METRICS

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1120px; color: #1d1d1f; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; } td.num { text-align: right; white-space: nowrap; }
.regression { color: #b42318; font-weight: 600; } .better { color: #067647; } .nc { color: #8a6100; }
figure { margin: 18px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 13px; } code, pre { font-size: 12px; }
td code { overflow-wrap: anywhere; } /* long ids and paths wrap instead of widening the page */
pre { background: #f6f8fa; padding: 8px; white-space: pre-wrap; }
.ok { color: #067647; } .bad { color: #b42318; }
"""

CHECK_IMAGES = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.documentElement.setAttribute("data-images", loaded + "/" + images.length);
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _statistics(comparison: Comparison) -> list[str]:
    out = ["<table>", "<tr><th>metric</th>"]
    for column in comparison.columns:
        title, detail = column_header(comparison, column)
        out.append(f"<th>{_e(title)}<br><small>{_e(detail)}</small></th>")
    out.append("</tr>")
    for metric in METRICS:
        cells = []
        for column in comparison.columns:
            verdict = comparison.verdict(metric, column)
            css = "regression" if verdict and verdict.regression else \
                "better" if verdict and verdict.significant and not verdict.worse else ""
            text = "<br>".join(_e(p) for p in cell_parts(comparison, metric, column))
            cells.append(f'<td class="num {css}">{text}</td>')
        out.append(f"<tr><th>{_e(metric_name(metric))}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return out


def _legend(comparison: Comparison) -> list[str]:
    out = ["<table><tr><th>label</th><th>run</th><th>board · model · quantization</th><th>firmware</th>"
           "<th>session files</th></tr>"]
    for row, column in zip(legend(comparison.columns), comparison.columns, strict=True):
        why = comparison.not_comparable.get(column.label)
        label = _e(row.label) + (f'<br><small class="nc">{_e(why)}</small>' if why else "")
        out.append(f"<tr><td>{label}</td><td><code>{_e(row.run)}</code></td><td>{_e(column.group_label)}</td>"
                   f"<td><code>{_e(row.firmware_id)}</code></td>"
                   f"<td>{'<br>'.join(f'<code>{_e(f)}</code>' for f in row.files)}</td></tr>")
    out.append("</table>")
    return out


def _gate(comparison: Comparison) -> list[str]:
    if not (comparison.verdicts or comparison.unchecked or comparison.not_comparable):
        return []
    out = [f"<p><b>{_e(gate_summary(comparison))}</b></p>", "<ul>"]
    for what, verdict, reason in gate_lines(comparison):
        css = ' class="regression"' if verdict is None or verdict.regression else ""
        out.append(f"<li{css}>{_e(what)}: {_e(reason)}</li>")
    out += [f'<li class="nc">{_e(label)}: {_e(why)}</li>' for label, why in comparison.not_comparable.items()]
    out.append("</ul>")
    return out


def _validity(comparison: Comparison) -> list[str]:
    out = ["<table><tr><th>session</th><th>status</th><th>reasons</th><th>energy</th></tr>"]
    for column in comparison.columns:
        for session in column.sessions:
            summary = session.summary or {}
            energy = summary.get("energy_valid")
            energy_text = "no power measured" if energy is None else "valid" if energy else \
                "invalid: " + "; ".join(summary.get("energy_reasons") or [])
            reasons = "; ".join(session.reasons) or "every validity rule held"
            out.append(f"<tr><td><code>{_e(session.path.name)}</code></td><td class=\"ok\">{_e(session.status)}</td>"
                       f"<td>{_e(reasons)}</td><td>{_e(energy_text)}</td></tr>")
    for item in comparison.excluded:
        out.append(f"<tr><td><code>{_e(item.path.name)}</code></td><td class=\"bad\">{_e(item.status)} "
                   f"(left out)</td><td>{_e('; '.join(item.reasons))}</td><td></td></tr>")
    out.append("</table>")
    return out


def _environment(comparison: Comparison) -> list[str]:
    """One row per header field, one column per run: what differs stands out along a row."""
    fields = ("board", "core", "clock_hz", "timer_hz", "firmware_id", "arithmetic", "model", "model_sha256",
              "quantization", "emulated", "emulator", "host", "profiler_version", "started_at", "serial_url")
    out = ["<table><tr><th>field</th>" + "".join(f"<th>{_e(c.label)}</th>" for c in comparison.columns) + "</tr>"]
    for name in fields:
        cells = []
        for column in comparison.columns:
            value = column.header.get(name)
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            cells.append(f"<td><code>{_e('-' if value is None else value)}</code></td>")
        out.append(f"<tr><th>{_e(name)}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return out


def _texts(comparison: Comparison) -> list[str]:
    out = []
    for column in comparison.columns:
        summary = column.sessions[0].summary or {}
        prompt = str(column.header.get("prompt") or "")
        out.append(f"<p><b>{_e(column.label)}</b></p><pre><b>{_e(prompt)}</b>{_e(summary.get('text') or '')}</pre>")
    return out


def _figure(caption: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)} ({_e(path.name)})</figcaption></figure>")


def render_html(comparison: Comparison, figures: Sequence[tuple[str, Path]]) -> str:
    """The whole report as one HTML document."""
    from profiler.compare.reporting.roofline import ceilings_text, roofline_points

    points, missing = roofline_points(comparison)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>tiny-profiler report: {_e(comparison.title)}</title>", f"<style>{STYLE}</style>",
             f"<script>{CHECK_IMAGES}</script></head><body>",
             "<h1>tiny-profiler report</h1>", f'<p class="sub">{_e(comparison.title)}</p>',
             "<h2>Summary</h2>",
             "<p>Median ± stddev over measured repetitions, 95% bootstrap CI of the median, change of the median "
             "against the baseline with the two-sided Mann-Whitney U p-value. ↑ higher is better, ↓ lower is better. "
             "Token latency percentiles: NumPy's linear percentile per repetition, median over repetitions.</p>",
             *_statistics(comparison), *_gate(comparison), "<h3>Runs</h3>", *_legend(comparison),
             "<h2>Figures</h2>"]
    for caption, path in figures:
        parts.append(_figure(caption, path))
        if path.name == "roofline.png":
            parts += ["<ul>", *(f"<li>{_e(line)}</li>" for line in ceilings_text(points)),
                      *(f"<li>not placed: {_e(m)}</li>" for m in missing), "</ul>"]
    parts += ["<h2>Validity</h2>", *_validity(comparison), "<h2>Environment</h2>", *_environment(comparison),
              "<h2>Generated text</h2>", *_texts(comparison),
              f'<p class="sub">written by tiny-profiler {_e(__version__)}</p>', "</body></html>"]
    return "\n".join(parts) + "\n"


def write_html(comparison: Comparison, figures: Sequence[tuple[str, Path]], path: Path) -> Path:
    """Write `report.html`; returns its path."""
    path.write_text(render_html(comparison, figures), encoding="utf-8")
    return path
