"""What an eval report is made of (a headline, then sections of text, tables and figures), rendered as one
self-contained HTML file (images embedded as base64 PNG) and as Markdown with the PNGs beside it.

The report is a list of sections; anyone adding a view (say a risk-coverage table) writes a function that
returns Sections and passes it to `grader.evaluation.report.write_report(..., extra_sections=[...])`.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Literal

Tone = Literal["good", "bad", "same", "plain"]
# Better and worse are told by a sign and a word, not by colour alone.
VERDICT_MARKS: dict[str, tuple[str, Tone]] = {
    "better": ("▲ better", "good"),
    "worse": ("▼ worse", "bad"),
    "no clear difference": ("≈ no clear difference", "same"),
}


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    name: str  # file stem of the PNG written beside report.md
    png: bytes
    caption: str  # a sentence: what the plot shows and how to read it
    alt: str


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    folded: bool = False  # long tables go in a closed <details>, the heading stays visible


@dataclass(frozen=True)
class HeadlineFigure:
    metric: str
    value: str
    interval: str
    human: str | None = None  # human A vs B, same metric, when the set has two graders
    verdict: str = ""
    tone: Tone = "plain"


@dataclass(frozen=True)
class Headline:
    question: str
    subject: str  # which configuration the figures are, and whether they are held out
    answer: str  # one sentence: the short answer to the question
    figures: list[HeadlineFigure]
    plots: list[Figure]
    warning: str | None = None  # shown beside the figures when they are in-sample


@dataclass(frozen=True)
class Report:
    title: str
    intro: str
    headline: Headline
    sections: list[Section]
    command: str | None = None


# -- Markdown ------------------------------------------------------------------------------------
def md_table(header: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _md_marked(cell: str) -> str:
    for word, (marked, _) in VERDICT_MARKS.items():
        if cell.endswith(f"] {word}"):
            return cell[: -len(word)] + marked
    return cell


def render_markdown(report: Report) -> str:
    h = report.headline
    md = [f"# {report.title}", "", report.intro, ""]
    md += [f"## {h.question}", "", f"**{h.subject}** {h.answer}", ""]
    if h.warning:
        md += [f"> ⚠ {h.warning}", ""]
    header = ["metric", "grader"] + (["human A vs B", ""] if any(f.human for f in h.figures) else [])
    rows = [[f.metric, f"{f.value} {f.interval}"] + ([f.human or "–", f.verdict] if len(header) > 2 else [])
            for f in h.figures]
    md += [md_table(header, rows), ""]
    for fig in h.plots:
        md += [f"![{fig.alt}]({fig.name}.png)", "", f"*{fig.caption}*", ""]
    if report.command:
        md += ["Made with:", "", "```", report.command, "```", ""]
    for s in report.sections:
        md += [f"## {s.heading}", ""]
        md += [p + "\n" for p in s.paragraphs]
        if s.bullets:
            md += [f"- {b}" for b in s.bullets] + [""]
        for t in s.tables:
            md += [md_table(t.header, [[_md_marked(c) for c in r] for r in t.rows]), ""]
        for fig in s.figures:
            md += [f"![{fig.alt}]({fig.name}.png)", "", f"*{fig.caption}*", ""]
    return "\n".join(md)


# -- HTML ----------------------------------------------------------------------------------------
STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:14px 24px 40px;
 max-width:1400px;color:#1d1d1f;line-height:1.4}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
.intro{color:#555;font-size:13px;margin:0 0 10px}
.card{border:1px solid #c9d3e0;border-radius:8px;padding:10px 16px 12px;background:#f7f9fc}
.card h2{border:0;margin:0 0 2px;font-size:19px}
.answer{margin:2px 0 8px;font-size:15px}
.warn{border-left:5px solid #b45309;background:#fff7ed;padding:6px 10px;margin:6px 0 8px;font-size:14px}
.warn strong{color:#9a3412}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:10px}
.tile{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:6px 10px}
.tile .metric{font-size:13px;color:#555}
.tile .value{font-size:26px;font-weight:600}
.tile .iv{font-size:12px;color:#555}
.tile .human{font-size:13px;margin-top:2px}
.tile .verdict{font-size:13px;font-weight:600;margin-top:2px}
.good{color:#166534}.bad{color:#b91c1c}.same{color:#374151}
.plots{display:flex;flex-wrap:wrap;gap:16px;margin-top:12px}
figure{margin:0;max-width:100%}
figure img{display:block;max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#444;max-width:560px;margin-top:3px}
.wide figcaption{max-width:860px}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
td,th{border:1px solid #d4d4d4;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f5}
.scroll{max-width:100%;overflow-x:auto}
td.good,td.bad,td.same{font-weight:600}
details{margin:4px 0 10px}
summary{cursor:pointer;font-weight:600;font-size:15px;padding:3px 0}
pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;word-break:break-all;font-size:12px}
"""


def _img(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(fig.alt)}">'


def _figure(fig: Figure, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    return f"<figure{cls}>{_img(fig)}<figcaption>{html.escape(fig.caption)}</figcaption></figure>"


def _html_cell(cell: str, tag: str = "td") -> str:
    for word, (marked, tone) in VERDICT_MARKS.items():
        if cell.endswith(f"] {word}"):
            return f'<{tag} class="{tone}">{html.escape(cell[: -len(word)] + marked)}</{tag}>'
    return f"<{tag}>{html.escape(cell)}</{tag}>"


def html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_html_cell(c) for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _tile(f: HeadlineFigure) -> str:
    out = [f'<div class="tile" data-headline="{html.escape(f.metric)}">',
           f'<div class="metric">{html.escape(f.metric)}</div>',
           f'<div class="value">{html.escape(f.value)}</div>',
           f'<div class="iv">95% interval {html.escape(f.interval)}</div>']
    if f.human:
        out.append(f'<div class="human">human A vs B: {html.escape(f.human)}</div>')
    if f.verdict:
        out.append(f'<div class="verdict {f.tone}">{html.escape(f.verdict)}</div>')
    return "".join(out) + "</div>"


def _headline(h: Headline) -> str:
    parts = ['<section class="card" id="headline">', f"<h2>{html.escape(h.question)}</h2>",
             f'<p class="answer"><strong>{html.escape(h.subject)}</strong> {html.escape(h.answer)}</p>']
    if h.warning:
        parts.append(f'<p class="warn" data-warning="in-sample"><strong>⚠</strong> {html.escape(h.warning)}</p>')
    parts.append('<div class="tiles">' + "".join(_tile(f) for f in h.figures) + "</div></section>")
    parts.append('<div class="plots">' + "".join(_figure(p) for p in h.plots) + "</div>")
    return "".join(parts)


def _section(s: Section) -> str:
    inner = [f'<p class="warn">{html.escape(p)}</p>' if p.startswith("⚠") else f"<p>{html.escape(p)}</p>"
             for p in s.paragraphs]
    if s.bullets:
        inner.append("<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in s.bullets) + "</ul>")
    inner += [html_table(t.header, t.rows) for t in s.tables]
    inner += [_figure(f, wide=True) for f in s.figures]
    if s.folded:
        return f"<details><summary>{html.escape(s.heading)}</summary>{''.join(inner)}</details>"
    return f"<h2>{html.escape(s.heading)}</h2>{''.join(inner)}"


def render_html(report: Report) -> str:
    body = [f"<h1>{html.escape(report.title)}</h1>", f'<p class="intro">{html.escape(report.intro)}</p>',
            _headline(report.headline)]
    body += [_section(s) for s in report.sections]
    if report.command:
        body.append(f"<h2>Made with</h2><pre>{html.escape(report.command)}</pre>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(report.title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
