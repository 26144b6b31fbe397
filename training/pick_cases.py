"""Pick the continuation and translation cases of prompts/embedded for the current embedded model.

    python -m training.pick_cases [--per-language 2] [--depths 3] [--seeds 100 ... 147] [--write]   [~15 min]

Why: a case is only an instrument when the original model's own answer is worth keeping, and when that answer
does not flip under noise far below what any compression does (a case that flips makes the gate report noise).
Candidates are the evaluation half of the shipped held-out data (never calibration text): continuation prompts
cut mid-sentence at three depths (`training.data.heldout.mid_sentence`; at most one case per document) and
English->X translation prompts. A candidate qualifies when its greedy answer, generated with the case file's
own budget and stop strings, is a real continuation (>= 60 characters passing the gate's language and collapse
checks, in a language the detector is sure of) or a translation of a source of 3+ words into the target
language with sentence chrF >= 30 against the reference. Among qualified candidates those whose answer never
changes under weight noise of 1e-2 x rms come first, then the better ones (longer continuation, higher chrF);
a language's second case must flip under at most 1 in 16 draws (its first is kept whatever its flips).
The selection seeds (default 100-147: 48 draws; 3 let too many fragile cases through) are not the seeds
`training.stability` measures with (0-2): the card's stability figure is measured on noise the selection never
saw.
Prints the cases; `--write` replaces the `cases:` list of both files (the header comments stay).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evalsuite.gate.cases import load_case_file
from evalsuite.gate.perturb import Perturbation, apply_perturbation
from evalsuite.heldout import heldout_split
from evalsuite.io import atomic_write_text
from evalsuite.metrics.collapse import check_collapse
from evalsuite.metrics.language import check_language, detect_language, same_language
from evalsuite.metrics.translation import chrf
from evalsuite.model.loading import configure_torch, default_model_path, load_model
from training import measure
from training.data.heldout import mid_sentence
from training.stability import SUITE

MIN_CONTINUATION_CHARS = 60
# the detector must be sure of the answer's language: a list of translators' names and e-mail addresses
# reads as 'fr' at 0.19 and passes the language check, so it could never show a compression's damage
MIN_LANGUAGE_PROB = 0.5
MIN_TRANSLATION_CHRF = 30.0
SELECTION_SEEDS = range(100, 148)  # 48 draws; the card's stability figure uses seeds 0-2
MIN_TRANSLATION_WORDS = 3  # "Aymara, Central" is a name to copy, not a sentence to translate
# v2c's second continuation in fr/de/ru/zh/ja flipped under 4-11 of 48 draws: two such cases per language
# add ~1 changed answer per noise draw to the suite, the size of the whole stability target (issue 11)
MAX_EXTRA_FLIP_SHARE = 1 / 16


@dataclass
class Candidate:
    case_id: str
    language: str
    prompt: str
    reference: str | None = None
    document: str = ""  # the held-out item it comes from: at most one case per document
    answer: str = ""
    flips: int = 0
    quality: float = 0.0  # continuation length or chrF; 0: does not qualify


def continuation_candidates(depths: int = 1) -> list[Candidate]:
    """Each evaluation-half prompt cut mid-sentence, at `depths` successive depths (`mid_sentence`)."""
    out = []
    for lg in measure.LANGS:
        for r in heldout_split(measure.held(f"prompts-{lg}"), "eval"):
            for depth in range(depths):
                prompt, rest = mid_sentence(r, lg, depth)
                if rest:
                    suffix = f"-cut{depth}" if depth else ""
                    out.append(
                        Candidate(f"cont-{lg}-{r['id'].rsplit('-', 1)[1]}{suffix}", lg, prompt, document=r["id"])
                    )
    return out


def translation_candidates() -> list[Candidate]:
    return [
        Candidate(r["id"], lg, r["prompt"], reference=r["target"])
        for lg in measure.TRANS
        for r in heldout_split(measure.held(f"translation-en-{lg}"), "eval")
    ]


def continuation_quality(c: Candidate) -> float:
    text = c.answer
    guess = detect_language(text)
    sure = guess is not None and same_language(guess.lang, c.language) and guess.prob >= MIN_LANGUAGE_PROB
    good = (
        sure
        and len(text.strip()) >= MIN_CONTINUATION_CHARS
        and check_language(text, expected=c.language).passed
        and check_collapse(text).passed
    )
    return float(len(text.strip())) if good else 0.0


def translation_quality(c: Candidate) -> float:
    text, source = c.answer.strip(), c.prompt.split("\n")[0].removeprefix("English: ")
    if len(source.split()) < MIN_TRANSLATION_WORDS or not text or not check_language(text, expected=c.language).passed:
        return 0.0
    score = chrf(text, c.reference or "")
    return score if score >= MIN_TRANSLATION_CHRF else 0.0


def score(
    s: measure.Subject, cands: list[Candidate], case_file: Path, seeds: list[int], quality: Callable[[Candidate], float]
) -> None:
    """Answer every candidate as the case file would, then count the qualified ones' flips under noise."""
    defaults = load_case_file(case_file)[0]
    budget, stop = defaults.max_new_tokens or 64, defaults.stop
    prompts = [c.prompt for c in cands]
    for c, text in zip(cands, s.greedy(prompts, budget, stop), strict=True):
        c.answer = text
        c.quality = quality(c)
    qualified = [c for c in cands if c.quality > 0]  # only these can be picked: the others need no noise draws
    for seed in seeds:
        with apply_perturbation(s.model, Perturbation("noise", 0.01, seed)):
            for c, text in zip(qualified, s.greedy([c.prompt for c in qualified], budget, stop), strict=True):
                c.flips += text != c.answer


def pick(cands: list[Candidate], per_language: int, draws: int) -> list[Candidate]:
    """Per language, the qualified candidates with the fewest flips, then the highest quality; one per document.

    The first case of a language is always kept (a language without a case is a blind spot of the gate); a
    further one only when it flips under at most MAX_EXTRA_FLIP_SHARE of the `draws` selection draws."""
    picked: list[Candidate] = []
    for c in sorted(cands, key=lambda c: (c.flips, -c.quality, c.case_id)):
        if c.document and any(p.document == c.document for p in picked):
            continue
        same = sum(p.language == c.language for p in picked)
        if c.quality > 0 and same < per_language and (same == 0 or c.flips <= MAX_EXTRA_FLIP_SHARE * draws):
            picked.append(c)
    order = {lg: i for i, lg in enumerate(measure.LANGS)}
    return sorted(picked, key=lambda c: order[c.language])


def case_yaml(c: Candidate, seeds: int) -> str:
    lines = [
        f"  - id: {c.case_id}",
        f"    language: {c.language}",
        f"    prompt: {json.dumps(c.prompt, ensure_ascii=False)}",
    ]
    if c.reference is not None:
        lines.append(f"    reference: {json.dumps(c.reference, ensure_ascii=False)}")
    lines.append(
        f"    # flips under 1e-2 noise: {c.flips}/{seeds} selection seeds; baseline starts "
        f"{json.dumps(c.answer[:60], ensure_ascii=False)}"
    )
    return "\n".join(lines)


def write_cases(path: Path, cases_yaml: str) -> None:
    """Replace what follows the file's `cases:` line, keep its header comments and defaults."""
    text = path.read_text(encoding="utf-8")
    head, sep, _ = text.partition("\ncases:\n")
    if not sep:
        raise SystemExit(f"{path}: no 'cases:' line to replace the cases after")
    atomic_write_text(path, head + sep + cases_yaml + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-language", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SELECTION_SEEDS))
    ap.add_argument("--depths", type=int, default=3, help="continuation cut depths per prompt (mid_sentence)")
    ap.add_argument("--write", action="store_true", help="rewrite the case lists of the two case files")
    args = ap.parse_args()
    configure_torch(1)
    loaded = load_model(default_model_path())
    s = measure.Subject(loaded.model, loaded.tokenizer)
    for name, cands, quality in (
        ("continuation", continuation_candidates(args.depths), continuation_quality),
        ("translation", translation_candidates(), translation_quality),
    ):
        path = SUITE / f"{name}.yaml"
        score(s, cands, path, args.seeds, quality)
        picked = pick(cands, args.per_language, len(args.seeds))
        stable = sum(c.flips == 0 and c.quality > 0 for c in cands)
        print(
            f"# {name}: {len(cands)} candidates, {sum(c.quality > 0 for c in cands)} qualify, "
            f"{stable} of them never flip under the selection seeds; picked {len(picked)}"
        )
        text = "\n".join(case_yaml(c, len(args.seeds)) for c in picked)
        print(text)
        if args.write:
            write_cases(path, text)


if __name__ == "__main__":
    main()
