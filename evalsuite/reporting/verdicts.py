"""HTML sections for the suite verdict (gate/verdict.py) and the ratio sweep (gate/sweep.py), inserted into
the gate's HTML report.

Why a module of its own: the report's page layout (reporting/html.py) stays one job; these fragments
say how a PASS/FAIL was decided (mode, alpha, per-family counts and p-values) and list the fragile
cases with their evidence. Every value is escaped: case ids and responses are untrusted text.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from evalsuite.gate.sweep import SweepMethod
from evalsuite.gate.verdict import SuiteVerdict

__all__ = ["sweep_section", "sweep_svg", "verdict_section"]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _rows(v: SuiteVerdict) -> Iterator[str]:
    yield "<table><thead><tr><th>check family</th><th>failing cases</th><th>benign replicates (leave-one-out)</th>"
    yield "<th>p (one-sided Fisher)</th><th>alpha</th><th>family</th><th>failing / fragile cases</th></tr>"
    yield "</thead><tbody>"
    for f in v.families:
        cls = "cell-fail" if f.failed else "cell-pass"
        p = f"{f.p_value:.3g}" if f.p_value is not None else "—"
        benign = f"{f.benign_failures}/{f.benign_trials}" if f.benign_trials else "—"
        cases = ", ".join(f.failing_cases)
        if f.fragile_failures:
            cases += f" (fragile: {', '.join(f.fragile_failures)})"
        yield (f'<tr><td class="mono">{_e(f.check)}</td><td class="num">{f.failures}/{f.cases}</td>'
               f'<td class="num">{_e(benign)}</td><td class="num">{_e(p)}</td><td class="num">{f.alpha:.3g}</td>'
               f'<td class="{cls}">{"FAIL" if f.failed else "ok"}</td>'
               f'<td class="mono">{_e(cases)}{(" — " + _e(f.note)) if f.note else ""}</td></tr>')
    yield "</tbody></table>"


def verdict_section(verdicts: Sequence[SuiteVerdict]) -> str:
    """The "Suite verdict" section: one banner and one family table per variant, then the fragile cases."""
    if not verdicts:
        return ""
    parts = ['<section id="suite-verdict"><h2>Suite verdict</h2>']
    for v in verdicts:
        state = "pass" if v.passed else "fail"
        parts.append(f'<div class="banner {state}">{_e(v.variant)}: suite verdict {state.upper()} '
                     f'({_e(v.mode)})</div><p class="muted">{_e(v.note)}</p>')
        parts.extend(_rows(v))
        if v.fragile:
            parts.append("<details><summary>Fragile cases (greedy output flips under benign noise; one alone "
                         f"never fails the release): {len(v.fragile)}</summary><ul>")
            for case, ev in v.fragile.items():
                parts.append(f'<li><span class="mono">{_e(case)}</span>: flips under '
                             f'{_e(", ".join(ev.get("flipped_under", [])))}; e.g. {_e(ev.get("example_replicate"))}:'
                             f'<pre class="resp">{_e(ev.get("example_response", ""))}</pre></li>')
            parts.append("</ul></details>")
    parts.append("</section>")
    return "".join(parts)


# -- ratio sweep: an inline SVG per method (no plotting library, no external asset) -----------------------
_COLORS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#e16f24", "#1b7c83", "#a40e26", "#57606a",
           "#4d2d00", "#6639ba", "#116329")
_W, _H, _PAD = 300, 200, 36


def _scale(values: Sequence[float], lo_pad: float = 0.0) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        hi = lo + 1.0
    return lo - lo_pad, hi


def _panel(x0: int, title: str, ratios: list[float], series: dict[str, list[float | None]],
           passed: list[bool], best: float | None) -> Iterator[str]:
    """One chart: x = ratio, one polyline per series, verdict markers along the x axis."""
    xs_lo, xs_hi = _scale(ratios)
    values = [v for s in series.values() for v in s if v is not None]
    if not values:
        yield f'<text x="{x0 + _W / 2}" y="{_H / 2}" text-anchor="middle" font-size="11" fill="#57606a">no data</text>'
        values = [0.0]
    ys_lo, ys_hi = _scale([0.0, *values]) if title.startswith("failing") else _scale(values)

    def px(r: float) -> float:
        return x0 + _PAD + (r - xs_lo) / (xs_hi - xs_lo) * (_W - 2 * _PAD)

    def py(v: float) -> float:
        return _H - _PAD - (v - ys_lo) / (ys_hi - ys_lo) * (_H - 2 * _PAD)

    yield f'<text x="{x0 + _W / 2}" y="14" text-anchor="middle" font-size="12">{_e(title)}</text>'
    yield (f'<line x1="{x0 + _PAD}" y1="{_H - _PAD}" x2="{x0 + _W - _PAD}" y2="{_H - _PAD}" stroke="#57606a"/>'
           f'<line x1="{x0 + _PAD}" y1="{_PAD}" x2="{x0 + _PAD}" y2="{_H - _PAD}" stroke="#57606a"/>')
    for v in (ys_lo, ys_hi):
        yield f'<text x="{x0 + _PAD - 4}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="10">{v:.3g}</text>'
    for r, ok in zip(ratios, passed, strict=True):
        yield f'<text x="{px(r):.1f}" y="{_H - _PAD + 14}" text-anchor="middle" font-size="10">{r:g}</text>'
        yield (f'<circle cx="{px(r):.1f}" cy="{_H - _PAD}" r="4" fill="{"#1a7f37" if ok else "#cf222e"}">'
               f'<title>ratio {r:g}: {"PASS" if ok else "FAIL"}</title></circle>')
    if best is not None:
        yield (f'<line x1="{px(best):.1f}" y1="{_PAD}" x2="{px(best):.1f}" y2="{_H - _PAD}" stroke="#1a7f37" '
               f'stroke-dasharray="4 3"><title>largest passing ratio {best:g}</title></line>')
    yield f'<text x="{x0 + _W / 2}" y="{_H - 4}" text-anchor="middle" font-size="10">ratio of experts removed</text>'
    for i, (name, ys) in enumerate(series.items()):
        pts = [(px(r), py(v)) for r, v in zip(ratios, ys, strict=True) if v is not None]
        color = _COLORS[i % len(_COLORS)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        yield f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"><title>{_e(name)}</title>'
        yield "</polyline>"
        for x, y in pts:
            yield f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'


def sweep_svg(method: SweepMethod) -> str:
    """Failing items per check and the worst perplexity ratio against the ratio, with a legend."""
    ratios = [p.ratio for p in method.points]
    passed = [p.passed for p in method.points]
    checks = sorted({c for p in method.points for c, n in p.failures.items() if n})  # checks that ever failed
    failing = {c: [float(p.failures.get(c, 0)) for p in method.points] for c in checks}
    ppl = {"perplexity ratio (worst case)": [p.perplexity_ratio for p in method.points]}
    best = method.largest_passing
    legend_h = 16 * ((len(checks) + 3) // 4)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * _W}" height="{_H + legend_h + 8}" '
             f'role="img" aria-label="sweep of {_e(method.method)}" font-family="system-ui, sans-serif">']
    parts.extend(_panel(0, "failing items per check", ratios, failing, passed, best))
    parts.extend(_panel(_W, "perplexity ratio (worst case) vs baseline", ratios, ppl, passed, best))
    for i, check in enumerate(checks):
        x, y = 10 + (i % 4) * 150, _H + 12 + (i // 4) * 16
        parts.append(f'<rect x="{x}" y="{y - 8}" width="10" height="10" fill="{_COLORS[i % len(_COLORS)]}"/>'
                     f'<text x="{x + 14}" y="{y + 1}" font-size="11">{_e(check)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sweep_section(methods: Sequence[SweepMethod]) -> str:
    """The "Ratio sweep" section: per method the largest passing ratio, the plot and a table."""
    if not methods:
        return ""
    parts = ['<section id="sweep"><h2>Ratio sweep</h2>']
    for m in methods:
        best = m.largest_passing
        text = f"largest passing ratio {best:g}" if best is not None else "no swept ratio passes"
        parts.append(f'<h3 class="mono">{_e(m.method)}: {_e(text)}</h3>')
        if m.non_monotone:
            parts.append(f'<p class="muted">non-monotone: {_e(", ".join(f"{r:g}" for r in m.non_monotone))} '
                         "pass above a failing ratio (not taken as the answer)</p>")
        parts.append(sweep_svg(m))
        parts.append("<table><thead><tr><th>ratio</th><th>variant</th><th>suite verdict</th>"
                     "<th>perplexity ratio</th><th>failing items</th></tr></thead><tbody>")
        for p in m.points:
            failing = ", ".join(f"{c} {n}" for c, n in p.failures.items() if n) or "none"
            ppl = f"{p.perplexity_ratio:.3f}" if p.perplexity_ratio is not None else "—"
            parts.append(f'<tr><td class="num">{p.ratio:g}</td><td class="mono">{_e(p.label)}</td>'
                         f'<td class="{"cell-pass" if p.passed else "cell-fail"}">{"PASS" if p.passed else "FAIL"}</td>'
                         f'<td class="num">{ppl}</td><td>{_e(failing)}</td></tr>')
        parts.append("</tbody></table>")
    parts.append("</section>")
    return "".join(parts)
