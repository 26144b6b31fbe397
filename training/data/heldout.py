"""The shipped held-out evaluation files (evalsuite/data/heldout/), built from held-out source keys only.

Formats are documented in evalsuite/data/heldout/FORMATS.md; each builder returns JSONL rows and
takes its own seeded `random.Random`, so adding a training source never changes held-out content.
"""

from __future__ import annotations

import random
import re

from training.data.arithmetic import arith_prompt, worked
from training.data.common import in_language, is_mojibake, split_sentences
from training.data.leakage import continuation_probe
from training.data.parallel import trans_text

PPL_ITEMS = 40  # perplexity texts per language
PROMPT_ITEMS = 80  # continuation prompts per language (half of them evaluation-half candidates for the gate)
PROMPT_MIN_CONTINUATION = 120  # characters of the source document after a prompt
MC_TEXT_ITEMS = 40  # word-substitution items per language
MC_TEXT_WORDS = 8  # words of the true continuation per item (zh/ja: two-character chunks)
TRANSLATION_ITEMS = 50  # held-out pairs shipped per language
MC_TRANSLATION_ITEMS = 20  # per language (es, fr, de)


def text_rows(
    lang: str,
    held: list[str],
    prose: set[str],
    rng: random.Random,
    ppl: list[str] | None = None,
    trained: str = "",
) -> tuple[list[dict], list[dict]]:
    """(perplexity texts, continuation prompts) of one language from its held-out documents.

    `prose`: the held-out documents of prose sources; prompts come only from them, with at least
    PROMPT_MIN_CONTINUATION characters of the document after the prompt, because a complete quote or verse
    is rightly answered by its attribution or by ending the text, which says nothing about the language a
    model keeps writing in (v2 answered 83% of the Spanish fortune prompts that way). `ppl`: the shipped
    perplexity texts, kept as they are when only the prompts are rebuilt (`build_corpus --prompts-only`).
    `trained`: the language's training stream (`leakage.joined`); a continuation found there is boilerplate
    that recurs under other source keys (translator credits, licence notes, character tables) and would
    measure memory, not continuation."""
    held = list(held)
    rng.shuffle(held)
    if ppl is None:
        ppl = [t[:1000] for t in held if len(t) >= 300 and in_language(lang, t)][:PPL_ITEMS]
    used = set(ppl)
    prompts = []
    for t in held:
        if t[:1000] in used or t not in prose or is_mojibake(t):
            continue
        first = t.split("\n")[0]
        sents = split_sentences(first if len(first) > 80 else t.replace("\n", " "))
        if len(sents) < 2:
            continue
        prompt = sents[0] if len(sents[0]) >= 40 else " ".join(sents[:2])
        if not (30 <= len(prompt) <= 300):
            continue
        cont = t.replace("\n", " ")[len(prompt) :].strip()[:300]
        if len(cont) < PROMPT_MIN_CONTINUATION or not in_language(lang, prompt) or not in_language(lang, cont):
            continue
        probe = continuation_probe(cont)
        if probe is not None and probe in trained:
            continue
        prompts.append({"id": f"prompt-{lang}-{len(prompts)}", "prompt": prompt, "continuation": cont})
        if len(prompts) == PROMPT_ITEMS:
            break
    return [{"id": f"text-{lang}-{i}", "text": t} for i, t in enumerate(ppl)], prompts


def translation_rows(lang: str, held: list[tuple[str, str]], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """(translation prompts with references, multiple-choice items for es/fr/de)."""
    held = list(held)
    rng.shuffle(held)
    good = [(s, t) for s, t in held if 12 <= len(s) <= 90 and " " in s]
    shipped = good[:TRANSLATION_ITEMS]
    rows = [
        {"id": f"tr-en-{lang}-{i}", "source": s, "target": t, "prompt": trans_text(lang, s)}
        for i, (s, t) in enumerate(shipped)
    ]
    mc = []
    if lang in ("es", "fr", "de"):
        pool = good[TRANSLATION_ITEMS:]
        for i, (s, t) in enumerate(shipped[:MC_TRANSLATION_ITEMS]):
            choices = [t] + rng.sample([tt for _, tt in pool if tt != t], 3)
            rng.shuffle(choices)
            mc.append(
                {
                    "id": f"mc-tr-{lang}-{i}",
                    "context": trans_text(lang, s),
                    "choices": [" " + c for c in choices],
                    "gold": choices.index(t),
                }
            )
    return rows, mc


def arithmetic_rows(problems: list[tuple[int, str, int]], rng: random.Random) -> tuple[list[dict], list[dict]]:
    """(60 worked problems, multiple choice among the true worked answer and 3 neighbouring problems')."""
    rows = []
    for i, (a, op, b) in enumerate(problems[:60]):
        body, ans = worked(a, op, b)
        rows.append({"id": f"arith-{i}", "prompt": arith_prompt(a, op, b), "answer": str(ans), "worked": body})
    mc = []
    for i, (a, op, b) in enumerate(problems[60:100]):
        body, _ = worked(a, op, b)
        wrong: set[str] = set()
        for da, db in rng.sample([(1, 0), (-1, 0), (0, 1), (0, -1), (10, 0), (0, 10), (-10, 0), (0, -10)], 8):
            a2, b2 = a + da, b + db
            if a2 < 0 or b2 < 0 or (op == "-" and b2 > a2) or len(str(a2)) != len(str(a)):
                continue
            other, _ = worked(a2, op, b2)
            if other != body:
                wrong.add(other)
            if len(wrong) == 3:
                break
        if len(wrong) < 3:
            continue
        choices = [body] + sorted(wrong)
        rng.shuffle(choices)
        mc.append(
            {"id": f"mc-arith-{i}", "context": arith_prompt(a, op, b), "choices": choices, "gold": choices.index(body)}
        )
    return rows, mc


# one-token behaviour changes of a correct body: a damaged model that still copies names and constants
# from the docstring must tell these apart (v1's distractors changed the name or constant, which even a
# half-pruned v2 never confused: mc-code stayed at 1.0)
_NEAR_MISS_EDITS = [
    (r"<=", "<"),
    (r">=", ">"),
    (r"(?<![<>=!])<(?![=<])", "<="),
    (r"(?<![<>=!-])>(?![=>])", ">="),
    (r"==", "!="),
    (r" \+ ", " - "),
    (r" - ", " + "),
    (r" \* ", " + "),
    (r" % ", " // "),
]


def near_misses(body: str) -> list[str]:
    """Every body that differs from ``body`` by one operator swap or one integer constant +-1, sorted."""
    out = set()
    for pattern, repl in _NEAR_MISS_EDITS:
        for m in re.finditer(pattern, body):
            out.add(body[: m.start()] + repl + body[m.end() :])
    for m in re.finditer(r"(?<![\w.])\d+(?![\w.])", body):
        for v in (int(m.group()) + 1, int(m.group()) - 1):
            if v >= 0:
                out.add(body[: m.start()] + str(v) + body[m.end() :])
    out.discard(body)
    return sorted(out)


def code_task_rows(held: list[dict], families: list[str]) -> tuple[list[dict], list[dict]]:
    """(50 tasks, up to 3 per family so every family is represented; MC over same-family bodies)."""
    by_family: dict[str, list[dict]] = {}
    for t in held:
        by_family.setdefault(t["family"], []).append(t)
    picked = [by_family[f][r] for r in range(3) for f in families if len(by_family.get(f, [])) > r][:50]
    rows = [
        {
            "id": f"task-{i}",
            "prompt": t["prompt"],
            "entry_point": t["name"],
            "tests": t["tests"],
            "canonical_solution": t["completion"],
            "family": t["family"],
        }
        for i, t in enumerate(picked)
    ]
    mc = []
    rest = [t for t in held if t not in picked]
    for i, t in enumerate(rest[:40]):
        others = near_misses(t["completion"])
        if len(others) < 3:
            continue
        choices = [t["completion"]] + random.Random(i).sample(others, 3)
        random.Random(i + 7).shuffle(choices)
        mc.append(
            {"id": f"mc-code-{i}", "context": t["prompt"], "choices": choices, "gold": choices.index(t["completion"])}
        )
    return rows, mc


def mid_sentence(row: dict, lang: str, depth: int = 0) -> tuple[str, str]:
    """(context, rest): a continuation prompt extended by the first words of its own continuation (4 words,
    or 12 characters in zh/ja; `depth` d cuts 8 words / 24 characters further per step), so the text stops
    mid-sentence, and what follows. Why: the shipped prompts end on a full stop, and a model trained on
    one-line fortunes and verses often answers a complete sentence by ending the document (or with an
    attribution), which says nothing about the language it writes in. Deeper cuts of the same document give
    the case picker more candidates where a language has few."""
    cont = row["continuation"]
    if lang in ("zh", "ja"):
        n = 12 + 24 * depth
        return row["prompt"] + cont[:n], cont[n:]
    head = re.match(rf"\s*(?:\S+\s+){{0,{3 + 8 * depth}}}\S+", cont)
    end = head.end() if head else 0
    return row["prompt"] + " " + " ".join(cont[:end].split()), cont[end:].strip()


def text_units(text: str, lang: str) -> list[str]:
    """Words, or two-character chunks in zh/ja (no spaces to split on)."""
    if lang in ("zh", "ja"):
        return [text[i : i + 2] for i in range(0, len(text), 2)]
    return text.split()


def word_substitutions(units: list[str], vocabulary: list[str], rng: random.Random, n: int = 3) -> list[list[str]]:
    """`n` distinct copies of `units`, each with one unit replaced by a different word of `vocabulary`.

    The distractors of mc-text: same length and position, one word that does not fit, so telling them from
    the real text takes the language's vocabulary in context. Measured on v2 (the shipped 280 items): 0.75,
    and 0.69 under freq:0.5@english (p 0.001; es/ru/zh lose most, English least). Two other designs were
    measured and dropped: the continuations of other prompts (chance, 0.31: a one-line fortune's
    continuation is an attribution no model can predict) and two neighbouring words swapped (0.88 -> 0.86:
    word order survives the pruning of a language's experts)."""
    out: list[list[str]] = []
    for _ in range(100 * n):
        if len(out) == n:
            break
        k, word = rng.randrange(len(units)), rng.choice(vocabulary)
        candidate = units[:k] + [word] + units[k + 1 :]
        if word != units[k] and candidate not in out:
            out.append(candidate)
    return out


def mc_text_rows(prompts: dict[str, list[dict]], rng: random.Random) -> list[dict]:
    """Which is the real continuation of the prompt: its first words vs 3 copies with one word replaced by
    a word from another continuation of the same language."""
    out = []
    for lang, rows in prompts.items():
        sep = "" if lang in ("zh", "ja") else " "
        golds = [text_units(r["continuation"], lang)[:MC_TEXT_WORDS] for r in rows]
        for i, (r, gold) in enumerate(zip(rows[:MC_TEXT_ITEMS], golds, strict=False)):
            vocabulary = sorted({w for j, g in enumerate(golds) if j != i for w in g})
            others = word_substitutions(gold, vocabulary, rng)
            if len(others) < 3:
                continue
            choices = [gold, *others]
            rng.shuffle(choices)
            out.append(
                {
                    "id": f"mc-text-{lang}-{i}",
                    "context": r["prompt"],
                    "choices": [sep + sep.join(c) for c in choices],
                    "gold": choices.index(gold),
                }
            )
    return out
