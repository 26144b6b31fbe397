"""Pick the continuation cases of prompts/embedded/continuation.yaml for the current embedded model.

    python -m training.pick_continuations [--per-language 2] [--seeds 3]

Why: a continuation case is only an instrument when the original model writes a real continuation of
its own: an empty or looping baseline cannot show a compression's damage. Candidates are the held-out
prompts of the evaluation half (never calibration text), cut mid-sentence (`training.data.heldout.mid_sentence`);
a candidate qualifies when its 40-token greedy continuation passes the gate's language and collapse
checks and has at least 60 characters; qualified candidates whose answer does not change under weight
noise of 1e-2 x rms (the noise floor's family, seeds 0..N-1) come first. Prints the YAML cases.
"""

from __future__ import annotations

import argparse
import json

from evalsuite.gate.perturb import Perturbation, apply_perturbation
from evalsuite.heldout import is_calibration_record
from evalsuite.metrics.collapse import check_collapse
from evalsuite.metrics.language import check_language
from evalsuite.model.loading import configure_torch, default_model_path, load_model
from training import measure
from training.data.heldout import mid_sentence


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-language", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    configure_torch(1)
    loaded = load_model(default_model_path())
    s = measure.Subject(loaded.model, loaded.tokenizer)
    rows = [(lg, r) for lg in measure.LANGS for r in measure.held(f"prompts-{lg}")
            if not is_calibration_record(r["id"])]
    prompts = [mid_sentence(r, lg)[0] for lg, r in rows]
    base = s.greedy(prompts, 40)
    flips = [0] * len(rows)
    for seed in range(args.seeds):
        with apply_perturbation(loaded.model, Perturbation("noise", 0.01, seed)):
            for i, text in enumerate(s.greedy(prompts, 40)):
                flips[i] += text != base[i]
    picked: dict[str, list[int]] = {}
    order = sorted(range(len(rows)), key=lambda i: (flips[i], i))
    for i in order:
        lg, _ = rows[i]
        text = base[i]
        good = (len(text.strip()) >= 60 and check_language(text, expected=lg).passed
                and check_collapse(text).passed)
        if good and len(picked.setdefault(lg, [])) < args.per_language:
            picked[lg].append(i)
    for lg in measure.LANGS:
        for i in picked.get(lg, []):
            _, row = rows[i]
            number = row["id"].rsplit("-", 1)[1]
            prompt, answer = json.dumps(prompts[i], ensure_ascii=False), json.dumps(base[i][:60], ensure_ascii=False)
            print(f"  - id: cont-{lg}-{number}\n    language: {lg}\n    prompt: {prompt}"
                  f"\n    # flips under 1e-2 noise: {flips[i]}/{args.seeds}; baseline starts {answer}")


if __name__ == "__main__":
    main()
