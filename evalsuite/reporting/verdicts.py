"""HTML sections for the suite verdict (gate/verdict.py), inserted into the gate's HTML report.

Why a module of its own: the report's page layout (reporting/html.py) stays one job; these fragments
say how a PASS/FAIL was decided (mode, alpha, per-family counts and p-values) and list the fragile
cases with their evidence. Every value is escaped: case ids and responses are untrusted text.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from evalsuite.gate.verdict import SuiteVerdict

__all__ = ["verdict_section"]


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
