"""A single self-contained HTML report of a gate run, for CI artifacts.

Why one file with inline CSS and no scripts: CI systems serve artifacts from sandboxes that block (or
never had) external assets, and reviewers open them offline. Model output is untrusted text (a
compressed model can emit anything, including markup), so every piece of text is escaped and a
Content-Security-Policy forbids scripts even if escaping were ever bypassed.

Layout: run info, a recipe x check summary (pass/fail counts), then one card per failing case (each
failing check with baseline value, new value, tolerance, detail, and the baseline and new responses
side by side), then the passing cases, collapsed.
"""

from __future__ import annotations

import datetime as _dt
import html
import itertools
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from evalsuite.io import atomic_write
from evalsuite.reporting.outcome import CheckOutcome

__all__ = ["render_html_report", "write_html_report"]

_CSS = """
:root { --ok: #1a7f37; --bad: #cf222e; --muted: #57606a; --line: #d0d7de; --bg2: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; padding: 1.5em;
       max-width: 1400px; color: #1f2328; }
h1 { margin: 0 0 .3em; font-size: 1.6em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid var(--line); padding-bottom: .2em; }
h3 { margin: 0 0 .5em; font-size: 1.1em; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
table { border-collapse: collapse; margin: .4em 0; }
th, td { border: 1px solid var(--line); padding: .3em .6em; text-align: left; vertical-align: top; }
th { background: var(--bg2); }
td.num { text-align: right; white-space: nowrap; }
.banner { padding: .6em 1em; border-radius: 6px; font-weight: 600; margin: .8em 0; color: #fff; }
.banner.pass { background: var(--ok); } .banner.fail { background: var(--bad); }
.banner.empty { background: var(--muted); }
.ok { color: var(--ok); } .bad { color: var(--bad); font-weight: 600; } .muted { color: var(--muted); }
td.cell-fail { background: #ffebe9; } td.cell-pass { background: #dafbe1; } td.cell-none { color: var(--muted); }
.card { border: 1px solid var(--line); border-left: 5px solid var(--bad); border-radius: 6px; padding: .8em 1em;
        margin: 1em 0; }
.card.pass { border-left-color: var(--ok); }
.tag { display: inline-block; background: var(--bg2); border: 1px solid var(--line); border-radius: 10px;
       padding: 0 .5em; font-size: 12px; margin-left: .4em; font-weight: normal; }
.responses { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; margin-top: .6em; }
.responses h4 { margin: 0 0 .2em; font-size: 13px; }
pre.resp { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--bg2); border: 1px solid var(--line);
           border-radius: 4px; padding: .6em; margin: 0; max-height: 32em; overflow: auto; }
pre.resp.none { color: var(--muted); font-style: italic; }
details { margin: .4em 0; } summary { cursor: pointer; }
details > .card, details > table, details > details { margin-left: 1.2em; }
mark { background: #fff8c5; outline: 1px solid #d4a72c; }
footer { margin-top: 2em; color: var(--muted); font-size: 12px; }
"""

# C0/C1 control characters (except tab, newline, carriage return) are not allowed in HTML text; lone
# surrogates cannot be encoded as UTF-8. Both can appear in raw model output.
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _esc(value: Any) -> str:
    """HTML-escape any value's text; unrepresentable characters become visible \\x.. escapes."""
    text = value if isinstance(value, str) else str(value)
    text = _BAD_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return html.escape(text, quote=True)


def _fmt(value: Any, *, depth: int = 0) -> str:
    """Compact plain-text rendering of a measured value or tolerance (not yet escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.6g}"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if depth > 2:
            return "{…}"
        inner = ", ".join(f"{k}={_fmt(v, depth=depth + 1)}" for k, v in value.items())
        return f"{{{inner}}}" if depth else inner or "{}"
    if isinstance(value, list | tuple):
        shown = ", ".join(_fmt(v, depth=depth + 1) for v in list(value)[:20])
        more = f", … ({len(value)} items)" if len(value) > 20 else ""
        return f"[{shown}{more}]"
    return str(value)


def _anchor(*parts: int) -> str:
    """Element ids from indices only: user text never ends up in an id or href."""
    return "r" + "-".join(str(p) for p in parts)


def _ordered(values: Iterable[str]) -> list[str]:
    """Unique values in order of first appearance (the order the gate ran them)."""
    return list(dict.fromkeys(values))


def _response_pairs(group: Sequence[CheckOutcome]) -> list[tuple[str | None, str | None, list[str]]]:
    """Distinct (baseline, new) response pairs of one case, with the checks that saw each pair."""
    pairs: dict[tuple[str | None, str | None], list[str]] = {}
    for o in group:
        if o.baseline_response is None and o.new_response is None:
            continue
        pairs.setdefault((o.baseline_response, o.new_response), []).append(o.check)
    return [(b, n, checks) for (b, n), checks in pairs.items()]


def _highlight_foreign(text: str, baseline: str | None) -> str:
    """Escape `text`, marking letters of scripts the baseline response never used (a Han character in
    a Spanish answer), so a reviewer sees the contamination at a glance."""
    if not baseline:
        return _esc(text)
    from evalsuite.metrics.language import char_script

    known = {char_script(ch) for ch in baseline} | {"Common", "Unknown"}
    parts = []
    for foreign, chunk in itertools.groupby(text, key=lambda ch: char_script(ch) not in known):
        escaped = _esc("".join(chunk))
        parts.append(f'<mark title="script not in the baseline response">{escaped}</mark>' if foreign else escaped)
    return "".join(parts)


def _render_responses(group: Sequence[CheckOutcome]) -> Iterator[str]:
    pairs = _response_pairs(group)
    for baseline, new, checks in pairs:
        if len(pairs) > 1:
            yield f'<p class="muted">responses seen by: {_esc(", ".join(checks))}</p>'
        yield '<div class="responses">'
        for label, text, is_new in (("Baseline response", baseline, False), ("New response", new, True)):
            yield f"<div><h4>{label}</h4>"
            if text is None:
                yield '<pre class="resp none">(none)</pre></div>'
            elif not text:
                yield '<pre class="resp none">(empty response)</pre></div>'
            else:
                body = _highlight_foreign(text, baseline) if is_new else _esc(text)
                yield f'<pre class="resp">{body}</pre></div>'
        yield "</div>"


def _render_check_rows(group: Sequence[CheckOutcome], *, with_status: bool) -> Iterator[str]:
    yield "<table><thead><tr>"
    if with_status:
        yield "<th>Status</th>"
    yield "<th>Check</th><th>Baseline value</th><th>New value</th><th>Tolerance</th><th>Detail</th></tr></thead><tbody>"
    for o in group:
        yield "<tr>"
        if with_status:
            yield '<td class="ok">pass</td>' if o.passed else '<td class="bad">FAIL</td>'
        yield (
            f'<td class="mono">{_esc(o.check)}</td>'
            f'<td class="num mono">{_esc(_fmt(o.baseline_value))}</td>'
            f'<td class="num mono">{_esc(_fmt(o.new_value))}</td>'
            f'<td class="mono">{_esc(_fmt(o.tolerance))}</td>'
            f"<td>{_esc(o.detail)}{_render_extra(o)}</td></tr>"
        )
    yield "</tbody></table>"


# `extra` keys that describe the case rather than the check; shown once per case card.
_CASE_KEYS = ("domain", "language", "file", "prompt")


def _render_extra(o: CheckOutcome) -> str:
    """Check-specific measurements (p-values, lost keywords, ratios) as a muted line under the detail."""
    items = {k: v for k, v in (o.extra or {}).items() if k not in _CASE_KEYS and v not in (None, "", [], {})}
    if not items:
        return ""
    return f'<br><span class="muted mono">{_esc(_fmt(items))}</span>'


def _render_case_meta(group: Sequence[CheckOutcome]) -> Iterator[str]:
    """Domain, language, source file and the prompt of a case (from the first outcome that has them)."""
    meta: dict[str, Any] = {}
    for o in group:
        for key in _CASE_KEYS:
            value = (o.extra or {}).get(key)
            if key not in meta and isinstance(value, str) and value:
                meta[key] = value
    facts = [f"{k}: {meta[k]}" for k in ("domain", "language", "file") if k in meta]
    if facts:
        yield f'<p class="muted">{_esc(" · ".join(facts))}</p>'
    if "prompt" in meta:
        prompt = _esc(meta["prompt"])
        yield f'<details class="prompt"><summary>Prompt</summary><pre class="resp">{prompt}</pre></details>'


def _render(outcomes: Sequence[CheckOutcome], title: str, run_info: Mapping[str, Any],
            sections: Sequence[str] = ()) -> Iterator[str]:
    """The report as a stream of HTML fragments (streamed so a failure mid-way never reaches the file)."""
    recipes = _ordered(o.recipe for o in outcomes)
    checks = _ordered(o.check for o in outcomes)
    n_fail = sum(not o.passed for o in outcomes)
    # counts[recipe][check] = [passed, failed]
    counts: dict[str, dict[str, list[int]]] = {r: {} for r in recipes}
    by_case: dict[tuple[str, str], list[CheckOutcome]] = {}
    for o in outcomes:
        counts[o.recipe].setdefault(o.check, [0, 0])[0 if o.passed else 1] += 1
        by_case.setdefault((o.recipe, o.case_id), []).append(o)

    yield '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    yield (
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    )
    yield '<meta name="viewport" content="width=device-width, initial-scale=1">'
    yield f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
    yield f"<header><h1>{_esc(title)}</h1>"
    if not outcomes:
        yield '<div class="banner empty">No checks ran.</div>'
    elif n_fail:
        failing_cases = sum(1 for g in by_case.values() if any(not o.passed for o in g))
        yield (
            f'<div class="banner fail">FAILED: {n_fail} of {len(outcomes)} checks failed '
            f"({failing_cases} failing case(s) across {len(recipes)} recipe(s))</div>"
        )
    else:
        yield f'<div class="banner pass">PASSED: all {len(outcomes)} checks passed</div>'
    if run_info:
        yield '<table class="run-info"><tbody>'
        for key, value in run_info.items():
            yield f'<tr><th>{_esc(key)}</th><td class="mono">{_esc(_fmt(value))}</td></tr>'
        yield "</tbody></table>"
    yield "</header>"

    # -- summary: recipe x check
    yield '<section id="summary"><h2>Summary</h2>'
    if outcomes:
        yield '<table class="summary"><thead><tr><th>Recipe</th>'
        for check in checks:
            yield f'<th class="mono">{_esc(check)}</th>'
        yield "<th>All checks</th></tr></thead><tbody>"
        for ri, recipe in enumerate(recipes):
            yield f'<tr><th class="mono">{_esc(recipe)}</th>'
            for check in [*checks, None]:
                if check is None:
                    passed = sum(c[0] for c in counts[recipe].values())
                    failed = sum(c[1] for c in counts[recipe].values())
                elif check in counts[recipe]:
                    passed, failed = counts[recipe][check]
                else:
                    yield '<td class="cell-none">—</td>'
                    continue
                if failed:
                    yield (
                        f'<td class="num cell-fail"><a href="#{_anchor(ri)}">'
                        f'<span class="bad">{failed} failed</span></a> / {passed + failed}</td>'
                    )
                else:
                    yield f'<td class="num cell-pass"><span class="ok">{passed} passed</span></td>'
            yield "</tr>"
        yield "</tbody></table>"
    yield "</section>"
    yield from sections  # pre-rendered, escaped sections (suite verdict, sweep plot: reporting/verdicts.py)

    # -- failing cases, open
    yield '<section id="failures"><h2>Failing cases</h2>'
    if not n_fail:
        yield '<p class="muted">None.</p>'
    for ri, recipe in enumerate(recipes):
        groups = [(cid, g) for (r, cid), g in by_case.items() if r == recipe and any(not o.passed for o in g)]
        if not groups:
            continue
        yield f'<h3 id="{_anchor(ri)}">Recipe <span class="mono">{_esc(recipe)}</span>'
        yield f'<span class="tag">{len(groups)} failing case(s)</span></h3>'
        for ci, (case_id, group) in enumerate(groups):
            failing = [o for o in group if not o.passed]
            passing = [o.check for o in group if o.passed]
            yield f'<article class="card" id="{_anchor(ri, ci)}">'
            yield f'<h3><span class="mono">{_esc(case_id)}</span>'
            yield f'<span class="tag">{_esc(recipe)}</span></h3>'
            yield from _render_case_meta(group)
            yield from _render_check_rows(failing, with_status=False)
            if passing:
                yield f'<p class="muted">Passed on this case: {_esc(", ".join(passing))}</p>'
            yield from _render_responses(group)
            yield "</article>"
    yield "</section>"

    # -- passing cases, collapsed
    n_pass_cases = sum(1 for g in by_case.values() if all(o.passed for o in g))
    yield f'<section id="passing"><h2>Passing cases</h2><details><summary>{n_pass_cases} passing case(s), '
    yield f"{len(outcomes) - n_fail} passing check(s) in all (click to expand)</summary>"
    for recipe in recipes:
        groups = [(cid, g) for (r, cid), g in by_case.items() if r == recipe and all(o.passed for o in g)]
        if not groups:
            continue
        yield f'<details><summary>Recipe <span class="mono">{_esc(recipe)}</span>: {len(groups)} case(s)</summary>'
        for case_id, group in groups:
            yield f'<details class="case"><summary><span class="mono">{_esc(case_id)}</span> '
            yield f'<span class="muted">({len(group)} checks)</span></summary><div class="card pass">'
            yield from _render_case_meta(group)
            yield from _render_check_rows(group, with_status=True)
            yield from _render_responses(group)
            yield "</div></details>"
        yield "</details>"
    yield "</details></section>"

    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    yield f"<footer>Generated by evalsuite at {stamp}.</footer></body></html>\n"


def render_html_report(
    outcomes: Iterable[CheckOutcome], *, title: str = "evalsuite report", run_info: Mapping[str, Any] | None = None
) -> str:
    """The whole report as one string (what `write_html_report` writes)."""
    return "".join(_render(list(outcomes), title, run_info or {}))


def write_html_report(
    outcomes: Iterable[CheckOutcome],
    path: str | os.PathLike[str],
    *,
    title: str = "evalsuite report",
    run_info: Mapping[str, Any] | None = None,
    sections: Sequence[str] = (),
) -> Path:
    """Write the report atomically to `path` and return it.

    `run_info` is shown as a key/value table (model, fingerprint, recipes, versions, ...); `sections` are
    HTML fragments (already escaped) shown after the summary.
    """
    target = Path(path)
    atomic_write(target, _render(list(outcomes), title, run_info or {}, sections))
    return target
