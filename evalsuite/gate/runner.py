"""One gate run: which model variants, which cases, one shared generation pass per variant.

Why a session object and not per-test work: every generative check of every case under one variant
reads the same greedy response, so the runner generates all registered prompts of a variant in one
batched pass the first time any of them is needed, and caches the results by
(model fingerprint, variant, case hash, generation settings). Variants that compress the base model
in place are applied one at a time (`activate`), and the plugin orders the items so each variant is
applied once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.config import GateSettings
from evalsuite.errors import BaselineError, EvalsuiteError
from evalsuite.gate.baselines import BaselineStore, StoredBaseline
from evalsuite.gate.cases import Case, resolve_data_path
from evalsuite.gate.checks import CheckInput, Verdict, baseline_metrics, code_program, run_check
from evalsuite.io import read_jsonl
from evalsuite.reporting.outcome import CheckOutcome

__all__ = ["Gate", "Variant", "ActiveModel"]

LOGPROB_DIGITS = 5


@dataclass(frozen=True)
class Variant:
    """A model under test: the base itself, a recipe applied to it, or a checkpoint on disk."""

    label: str
    kind: str  # "base" | "recipe" | "checkpoint"
    spec: str | None = None

    @classmethod
    def base(cls) -> Variant:
        return cls("base", "base")

    @classmethod
    def recipe(cls, text: str) -> Variant:
        try:
            from evalsuite.compression.recipe import parse_recipe

            short = parse_recipe(text).short
        except ImportError:
            short = text
        return cls(short, "recipe", text)

    @classmethod
    def checkpoint(cls, path: str) -> Variant:
        return cls(f"ckpt:{Path(path).name}", "checkpoint", path)


@dataclass
class ActiveModel:
    """The model a variant's checks run on (the in-place compressed base, or a loaded checkpoint)."""

    model: Any
    tokenizer: Any
    variant: Variant
    key: str  # identifies the weights for the generation cache
    record: Any = None  # the compression record, for recipes
    path: Path | None = None
    fingerprint: str = ""


@dataclass
class _Timing:
    generate_s: float = 0.0
    score_s: float = 0.0
    compress_s: float = 0.0
    load_s: float = 0.0
    prompts: int = 0
    extra: dict[str, float] = field(default_factory=dict)


_LOADED: dict[tuple, Any] = {}


def _load_cached(path: Path | None, s: GateSettings):
    """load_model, memoised per process by (folder, file sizes and mtimes, dtype, device).

    Why: repeated in-process gate sessions (pytester, the benchmark, a notebook) reuse the weights;
    every session restores in-place compressions when it ends, so the cached model is the original.
    """
    from evalsuite.model.loading import default_model_path, load_model

    folder = Path(path) if path is not None else default_model_path()
    try:
        stamp = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
    except OSError:
        stamp = ()
    key = (str(folder.resolve()), stamp, s.dtype, s.device, s.trust_remote_code)
    if key in _LOADED:
        _LOADED[key] = _LOADED.pop(key)  # most recently used last
    else:
        while len(_LOADED) >= 2:  # base + one checkpoint: never hold more weights than a session needs
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_model(path, dtype=s.dtype, device=s.device, trust_remote_code=s.trust_remote_code)
    return _LOADED[key]


def _release_checkpoints(keep: Any) -> None:
    """Forget every memoised model but ``keep`` (the base, when loaded) before loading a checkpoint."""
    for key in [k for k, v in _LOADED.items() if v is not keep]:
        del _LOADED[key]


def describe_record(record: Any) -> str:
    """One line of what a recipe did, from its compression record."""
    if not isinstance(record, dict) or not isinstance(record.get("layers"), list):
        return "compressed"
    rows = [r for r in record["layers"] if isinstance(r, dict)]
    removed = sum(len(r.get("removed", [])) for r in rows)
    total = sum(int(r.get("experts", 0)) for r in rows)
    calibration = record.get("calibration")
    if isinstance(calibration, dict):
        calibration = calibration.get("name")
    text = f"removed {removed} of {total} experts over {len(rows)} layers"
    return text + (f", calibrated on {calibration}" if calibration else "")


def _portable(path: Path, root: Path) -> str:
    """A model path as stored in model.json: relative to the project or the package when inside."""
    try:
        from evalsuite.model.loading import default_model_path

        if path.resolve() == default_model_path().resolve():
            return "<embedded default model>"
    except ImportError:
        pass
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _with_tail(rows: list[list[float]]) -> list[list[float]]:
    out = []
    for row in rows:
        rest = 1.0 - sum(math.exp(v) for v in row)
        out.append([*row, math.log(max(rest, 1e-30))])
    return out


class Gate:
    """State of one gate session: settings, variants, registered cases, caches and outcomes."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self.cases: dict[str, Case] = {}
        self.case_files: dict[str, Path] = {}  # case key -> the file that defined it (ids unique per suite)
        self.wanted: dict[str, list[str]] = {}  # variant label -> case keys, in registration order
        self.outcomes: list[CheckOutcome] = []
        self.timing = _Timing()
        self._base = None
        self._base_error: EvalsuiteError | None = None
        self._store: BaselineStore | None = None
        self._active: ActiveModel | None = None
        self._compression = None
        self._checkpoints: dict[str, Any] = {}
        self._generations: dict[tuple[str, ...], Any] = {}
        self._scores: dict[tuple[str, ...], Any] = {}
        self._values: dict[tuple[str, ...], dict[str, Any]] = {}
        self._baselines: dict[str, StoredBaseline | BaselineError] = {}
        self._recorded = False
        self._failed_variants: dict[str, EvalsuiteError] = {}
        self.recorded: dict[str, str] = {}  # case key -> new | changed | unchanged (update mode)
        self.records: dict[str, Any] = {}  # variant label -> compression record (what was removed/merged)
        self.variants = self._variants()

    # -- setup -----------------------------------------------------------------------------------
    def _variants(self) -> list[Variant]:
        s = self.settings
        if s.update_baselines:
            return [Variant.base()]
        variants = [Variant.recipe(r) for r in s.recipes] + [Variant.checkpoint(p) for p in s.compressed]
        return variants or [Variant.base()]

    def register(self, case: Case, variant: Variant) -> None:
        """Called at collection: the case will be checked under the variant (drives batching)."""
        self.cases[case.key] = case
        keys = self.wanted.setdefault(variant.label, [])
        if case.key not in keys:
            keys.append(case.key)

    def budget(self, case: Case) -> int:
        return case.max_new_tokens or self.settings.max_new_tokens

    def case_hash(self, case: Case) -> str:
        return case.content_hash(self.settings.max_new_tokens)

    # -- models ----------------------------------------------------------------------------------
    def base(self):
        """The base (original) model, loaded once per session."""
        if self._base_error is not None:  # a failed load is reported by every item, attempted once
            raise self._base_error
        if self._base is None:
            from evalsuite.model.loading import configure_torch

            start = time.perf_counter()
            s = self.settings
            configure_torch(s.threads)
            path = s.resolve(s.model) if s.model else None
            try:
                self._base = _load_cached(path, s)
            except EvalsuiteError as exc:
                self._base_error = exc
                raise
            self.timing.load_s += time.perf_counter() - start
        return self._base

    def base_path(self) -> Path:
        from evalsuite.model.loading import default_model_path

        s = self.settings
        return s.resolve(s.model) if s.model else default_model_path()

    def store(self) -> BaselineStore:
        """The base model's baselines, found by its file fingerprint: gating a checkpoint never loads the base."""
        if self._store is None:
            from evalsuite.model.fingerprint import fingerprint_checkpoint

            path = self.base_path()
            fingerprint = self._base.fingerprint if self._base is not None else fingerprint_checkpoint(path)
            self._store = BaselineStore(
                self.settings.resolve(self.settings.baselines),
                fingerprint,
                model_path=_portable(path, self.settings.rootdir),
            )
        return self._store

    def _restore(self) -> None:
        if self._compression is not None:
            self._compression.restore()
            self._compression = None

    def activate(self, variant: Variant) -> ActiveModel:
        """Make ``variant`` the model under test (undoing the previous in-place compression)."""
        if self._active is not None and self._active.variant == variant:
            return self._active
        if variant.label in self._failed_variants:  # do not redo an expensive failing compression per item
            raise self._failed_variants[variant.label]
        base = self.base() if variant.kind != "checkpoint" else None  # a checkpoint alone: one model in memory
        self._restore()
        self._active = None
        try:
            return self._activate(variant, base)
        except EvalsuiteError as exc:
            self._failed_variants[variant.label] = exc
            raise

    def _activate(self, variant: Variant, base) -> ActiveModel:
        if variant.kind == "base":
            active = ActiveModel(base.model, base.tokenizer, variant, f"base:{base.fingerprint}",
                                 path=base.path, fingerprint=base.fingerprint)
        elif variant.kind == "recipe":
            from evalsuite.compression import compress, parse_recipe

            recipe = parse_recipe(variant.spec)
            start = time.perf_counter()
            self._compression = compress(base.model, base.tokenizer, recipe)
            self.timing.compress_s += time.perf_counter() - start
            model = getattr(self._compression, "model", None) or base.model  # apply=remove works on a copy
            self.records[variant.label] = getattr(self._compression, "record", None)
            active = ActiveModel(model, base.tokenizer, variant, f"{base.fingerprint}+{recipe.hash}",
                                 record=getattr(self._compression, "record", None), path=base.path,
                                 fingerprint=f"{base.fingerprint[:16]}+{recipe.hash}")
        else:
            loaded = self._checkpoints.get(variant.spec or "")
            if loaded is None:
                s = self.settings
                self._checkpoints.clear()  # variants run one after another: hold one checkpoint at a time
                _release_checkpoints(keep=self._base)
                start = time.perf_counter()
                loaded = _load_cached(s.resolve(variant.spec or ""), s)
                self.timing.load_s += time.perf_counter() - start
                self._checkpoints[variant.spec or ""] = loaded
            active = ActiveModel(loaded.model, loaded.tokenizer, variant, f"ckpt:{loaded.fingerprint}",
                                 path=loaded.path, fingerprint=loaded.fingerprint)
        self._active = active
        return active

    def close(self) -> None:
        """Undo any in-place compression (the base model is left as loaded)."""
        self._restore()
        self._active = None

    # -- baselines -------------------------------------------------------------------------------
    def baseline(self, case: Case) -> StoredBaseline:
        """The stored baseline of a case; raises BaselineError (missing / stale), cached either way."""
        if case.key not in self._baselines:
            try:
                self._baselines[case.key] = self.store().load(
                    case.suite, case.id, case_hash=self.case_hash(case), settings_hash=self.settings.generation_hash()
                )
            except BaselineError as exc:
                self._baselines[case.key] = exc
        found = self._baselines[case.key]
        if isinstance(found, BaselineError):
            raise found
        return found

    def record(self) -> list[Path]:
        """Record baselines of the base model for every registered case (update mode only)."""
        if not self.settings.update_baselines:
            raise EvalsuiteError("baselines are only recorded with --evalsuite-update-baselines")
        if self._recorded:
            return []
        self._recorded = True
        variant = Variant.base()
        active = self.activate(variant)
        keys = self.wanted.get(variant.label, [])
        cases = [self.cases[k] for k in keys]
        store = self.store()
        base = self.base()
        written = [store.write_model_info({
            "path": _portable(Path(base.path), self.settings.rootdir),
            "model_type": getattr(base.model.config, "model_type", None),
            "settings": self.settings.generation_key(),
        })]
        generative = [c for c in cases if c.generative]
        gens = self._generate(active, generative)
        scores = self._score(active, generative, [gens[c.key].token_ids for c in generative], gather=None)
        for case in generative:
            gen, sc = gens[case.key], scores[case.key]
            metrics = baseline_metrics(case, gen.text)
            if case.tests:
                metrics.update(self._run_code(case, gen.text))
            payload = {
                "kind": case.kind,
                "prompt": case.prompt,
                "response": gen.text,
                "finish": gen.finish,
                "prompt_ids": gen.prompt_ids,
                "response_ids": gen.token_ids,
                "metrics": metrics,
                "logprobs": {
                    "token": [round(v, LOGPROB_DIGITS) for v in sc.token_logprobs],
                    "top_ids": sc.top_ids,
                    "top_logprobs": [[round(v, LOGPROB_DIGITS) for v in row] for row in sc.top_logprobs],
                },
            }
            written.append(self._write(case, payload))
        for case in cases:
            if not case.generative:
                values = self.discriminative(active, case)
                written.append(self._write(case, {"kind": case.kind, "data": case.data, "metrics": values}))
        self._baselines.clear()
        return written

    def _write(self, case: Case, payload: dict[str, Any]) -> Path:
        """Write one baseline and note whether it is new, changed or unchanged (for the summary)."""
        path = self.store().case_path(case.suite, case.id)
        status = "new"
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = {}
            # what a reviewer cares about: the response (or a discriminative case's values), not
            # float noise in the stored log-probs
            keys = ("prompt", "response", "response_ids", "finish") if case.generative else ("data", "metrics")
            same = all(old.get(k) == json.loads(json.dumps(payload.get(k))) for k in keys)
            status = "unchanged" if same and old.get("case_hash") == self.case_hash(case) else "changed"
        self.recorded[case.key] = status
        return self.store().write_case(
            case.suite,
            case.id,
            case_hash=self.case_hash(case),
            settings=self.settings.generation_key(),
            settings_hash=self.settings.generation_hash(),
            payload=payload,
        )

    # -- model work, batched and cached -----------------------------------------------------------
    def _cache_key(self, active: ActiveModel, case: Case, what: str) -> tuple[str, ...]:
        return (active.key, self.case_hash(case), self.settings.generation_hash(), what)

    def _generate(self, active: ActiveModel, cases: Iterable[Case]) -> dict[str, Any]:
        from evalsuite.model.generation import encode_prompt, generate_greedy

        todo = [c for c in cases if self._cache_key(active, c, "gen") not in self._generations]
        if todo:
            tok = active.tokenizer
            start = time.perf_counter()
            outs = generate_greedy(
                active.model,
                tok,
                [encode_prompt(tok, c.prompt, chat=c.chat) for c in todo],
                max_new_tokens=[self.budget(c) for c in todo],
                stop=[c.stop for c in todo],
                batch_size=self.settings.batch_size,
            )
            self.timing.generate_s += time.perf_counter() - start
            self.timing.prompts += len(todo)
            for case, out in zip(todo, outs, strict=True):
                self._generations[self._cache_key(active, case, "gen")] = out
        return {c.key: self._generations[self._cache_key(active, c, "gen")] for c in cases}

    def _score(
        self,
        active: ActiveModel,
        cases: list[Case],
        responses: list[list[int]],
        gather: list[list[list[int]]] | None,
    ) -> dict[str, Any]:
        from evalsuite.model.generation import encode_prompt, score_responses

        tok = active.tokenizer
        start = time.perf_counter()
        out = score_responses(
            active.model,
            tok,
            [encode_prompt(tok, c.prompt, chat=c.chat) for c in cases],
            responses,
            top_k=self.settings.top_k_logprobs,
            gather=gather,
            batch_size=self.settings.batch_size,
        )
        self.timing.score_s += time.perf_counter() - start
        return {c.key: s for c, s in zip(cases, out, strict=True)}

    def generation(self, active: ActiveModel, case: Case):
        """The variant's greedy response to a case; the first call generates all registered cases."""
        key = self._cache_key(active, case, "gen")
        if key not in self._generations:
            batch = [self.cases[k] for k in self.wanted.get(active.variant.label, []) if self.cases[k].generative]
            self._generate(active, batch if case in batch else [*batch, case])
        return self._generations[key]

    def divergence_inputs(self, active: ActiveModel, case: Case) -> list[list[float]]:
        """Per baseline-response position: the variant's log-probs at the baseline's top-k ids, plus
        log of the remaining mass (an exact k+1-outcome distribution), batched over all cases."""
        key = self._cache_key(active, case, "kl")
        if key not in self._scores:
            todo, responses, gather = [], [], []
            for k in self.wanted.get(active.variant.label, []) or [case.key]:
                other = self.cases[k]
                if not other.generative or "divergence" not in other.checks:
                    continue
                if self._cache_key(active, other, "kl") in self._scores:
                    continue
                try:
                    stored = self.baseline(other)
                except BaselineError:
                    continue
                todo.append(other)
                responses.append(stored.response_ids)
                gather.append(stored.logprobs.get("top_ids", []))
            if case not in todo:
                stored = self.baseline(case)
                todo.append(case)
                responses.append(stored.response_ids)
                gather.append(stored.logprobs.get("top_ids", []))
            scored = self._score(active, todo, responses, gather)
            for other in todo:
                self._scores[self._cache_key(active, other, "kl")] = _with_tail(scored[other.key].gathered)
        return self._scores[key]

    def _run_code(self, case: Case, response: str) -> dict[str, Any]:
        """Run the case's tests on a response in the sandbox (never in this process)."""
        from evalsuite.sandbox import run_tests

        tol = case.checks.get("code", {})
        program = code_program(case, response)
        result = run_tests(
            program["completion"],
            case.prompt,
            "\n".join(case.tests),
            case.entry_point or "",
            include_prompt=program["include_prompt"],
            timeout_s=float(tol.get("timeout_s", 10.0)),
            memory_mb=int(tol.get("memory_mb", 1024)),
        )
        if result.passed:
            detail = "tests passed"
        else:
            last = (result.stderr or "").strip().splitlines()[-1:] or [result.reason or ""]
            detail = f"tests {result.status}: {last[0]}"
        return {"code_passed": bool(result.passed), "code_detail": detail[:300]}

    def _data_rows(self, case: Case) -> list[dict[str, Any]]:
        rows = read_jsonl(resolve_data_path(case))
        if case.data and case.data.startswith("heldout:"):
            from evalsuite.compression.calibration import heldout_split

            rows = heldout_split(rows, "eval")  # never score on text a recipe may calibrate on
        return rows[: case.limit] if case.limit else rows

    def discriminative(self, active: ActiveModel, case: Case) -> dict[str, Any]:
        """Perplexity or multiple-choice values of the variant on the case's data (cached).

        All registered cases of the same kind are scored in one lm-eval call: its per-call setup costs
        seconds, the scoring of a few dozen documents of a small model much less.
        """
        key = self._cache_key(active, case, "disc")
        if key in self._values:
            return self._values[key]
        from evalsuite.gate import lm_eval_checks

        batch = [
            self.cases[k] for k in self.wanted.get(active.variant.label, [])
            if self.cases[k].kind == case.kind and self._cache_key(active, self.cases[k], "disc") not in self._values
        ]
        if case not in batch:
            batch.append(case)
        rows = [self._data_rows(c) for c in batch]
        flat = [r for part in rows for r in part]
        start = time.perf_counter()
        bs = self.settings.batch_size
        if case.kind == "perplexity":
            docs = lm_eval_checks.perplexity_per_doc(
                active.model, active.tokenizer, [r["text"] for r in flat], batch_size=bs
            )
        else:
            items = lm_eval_checks.mc_per_item(active.model, active.tokenizer, flat, batch_size=bs)
        self.timing.extra[case.kind] = self.timing.extra.get(case.kind, 0.0) + time.perf_counter() - start
        offset = 0
        for other, part in zip(batch, rows, strict=True):
            if case.kind == "perplexity":
                mine = docs[offset : offset + len(part)]
                values = {
                    "docs": len(mine),
                    "token_perplexity": round(float(lm_eval_checks.token_perplexity(mine)), 6),
                    "loglikelihood": [round(float(d.loglikelihood), 4) for d in mine],
                }
            else:
                mine = items[offset : offset + len(part)]
                values = {
                    "items": len(mine),
                    "accuracy": round(float(lm_eval_checks.mc_accuracy(mine)), 6),
                    "correct": [int(bool(i.acc)) for i in mine],
                    "ids": [str(r.get("id", i)) for i, r in enumerate(part)],
                }
            offset += len(part)
            self._values[self._cache_key(active, other, "disc")] = values
        return self._values[key]

    def run_info(self) -> dict[str, Any]:
        """Key facts of this run for reports (model, fingerprint, variants, settings, versions)."""
        from evalsuite.gate.baselines import library_versions

        info: dict[str, Any] = {
            "variants": ", ".join(v.label for v in self.variants),
            "settings": self.settings.generation_key(),
            "max_new_tokens": self.settings.max_new_tokens,
            "versions": library_versions(),
        }
        if self._base is not None or self._store is not None:
            info["model"] = _portable(self.base_path(), self.settings.rootdir)
            info["fingerprint"] = self.store().fingerprint[:16]
            info["baselines"] = str(self.store().folder)
        for label, record in self.records.items():
            info[f"compression {label}"] = describe_record(record)
        t = self.timing
        info["time_s"] = {"load": round(t.load_s, 2), "compress": round(t.compress_s, 2),
                          "generate": round(t.generate_s, 2), "score": round(t.score_s, 2),
                          "discriminative": round(sum(t.extra.values()), 2)}
        return info

    def _check_tokenization(self, active: ActiveModel, case: Case, stored: StoredBaseline) -> None:
        """The model fingerprint does not cover the tokenizer: a baseline whose prompt ids no longer
        match is stale (its response ids and log-probs would be compared on other tokens)."""
        from evalsuite.model.generation import encode_prompt

        key = self._cache_key(active, case, "tok")
        if key not in self._values:
            recorded = stored.data.get("prompt_ids")
            now = encode_prompt(active.tokenizer, case.prompt, chat=case.chat)
            self._values[key] = {"same": recorded is None or list(recorded) == now}
        if not self._values[key]["same"]:
            raise BaselineError(
                f"stale baseline {stored.path}: the tokenizer of {active.variant.label} encodes the prompt "
                "differently than the tokenizer the baseline was recorded with; re-record with "
                "`pytest --evalsuite-update-baselines` if the tokenizer change is intended"
            )

    # -- one check ---------------------------------------------------------------------------------
    def check(self, variant: Variant, case: Case, check: str) -> CheckOutcome:
        """Run one check of one case under one variant and keep its outcome for the reports."""
        if self.settings.update_baselines and not self._recorded:
            self.record()
        stored = self.baseline(case)
        active = self.activate(variant)
        tolerance = case.checks[check]
        x = CheckInput(case=case, tolerance=tolerance, baseline_metrics=stored.metrics)
        if case.generative:
            self._check_tokenization(active, case, stored)
            gen = self.generation(active, case)
            x.baseline_text, x.new_text = stored.response, gen.text
            x.baseline_logprobs = stored.logprobs
            if check == "divergence":
                x.new_values["kl_rows"] = self.divergence_inputs(active, case)
            elif check == "code":
                ckey = self._cache_key(active, case, "code")
                if ckey not in self._values:
                    self._values[ckey] = self._run_code(case, gen.text)
                x.new_values.update(self._values[ckey])
        else:
            x.new_values.update(self.discriminative(active, case))
        verdict: Verdict = run_check(check, x)
        outcome = CheckOutcome(
            recipe=variant.label,
            case_id=case.key,
            check=check,
            passed=verdict.passed,
            baseline_value=verdict.baseline_value,
            new_value=verdict.new_value,
            tolerance=verdict.tolerance,
            baseline_response=stored.response if case.generative else None,
            new_response=x.new_text if case.generative else None,
            detail=verdict.detail,
            extra={"prompt": case.prompt, "file": str(case.file), "domain": case.domain,
                   "language": case.language, **verdict.extra},
        )
        self.outcomes.append(outcome)
        return outcome
