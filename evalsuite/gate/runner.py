"""One gate run: which model variants, which cases, and their verdicts.

Why this shape: the runner only orchestrates. Which weights are live is gate/models.py; what is asked
of a model is a per-variant work plan (gate/plan.py), executed once per variant by a backend
(evalsuite/backends/) the first time any of the variant's checks needs it; how outputs are judged is
the check registry (gate/checks.py); what a baseline holds is gate/recording.py. Variants that
compress the base model in place are applied one at a time, and the plugin orders the items so each
variant is applied once.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from evalsuite.backends.base import Backend
from evalsuite.config import GateSettings, key_hash
from evalsuite.errors import BaselineError, EvalsuiteError, SetupError
from evalsuite.gate import preflight
from evalsuite.gate.baselines import UPDATE_HINT, BaselineStore, StoredBaseline
from evalsuite.gate.cases import Case
from evalsuite.gate.chat import RenderedPrompt, render_case, split_response
from evalsuite.gate.checks import CheckInput, run_check
from evalsuite.gate.models import ActiveModel, ModelSession, Timing, Variant, portable_path
from evalsuite.gate.noise import FLOOR_FILE, CaseFloor, NoiseFloor, deviation, response_hash
from evalsuite.gate.outcome import CheckOutcome, describe_record
from evalsuite.gate.plan import build_plan, execute
from evalsuite.gate.recording import generative_payload, write_baseline
from evalsuite.metrics.reasoning import ReasoningSplit

__all__ = ["Gate", "Variant", "ActiveModel", "describe_record"]


def _model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None


class Gate:
    """State of one gate session: settings, variants, registered cases, results and outcomes."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self.cases: dict[str, Case] = {}
        self.case_files: dict[str, Path] = {}  # case key -> the file that defined it (ids unique per suite)
        self.wanted: dict[str, list[str]] = {}  # variant label -> case keys, in registration order
        self.outcomes: list[CheckOutcome] = []
        self.timing = Timing()
        self.recorded: dict[str, str] = {}  # case key -> new | changed | unchanged (update mode)
        self.records: dict[str, Any] = {}  # variant label -> compression record (what was removed/merged)
        self.models = ModelSession(settings, self.timing, self.records.__setitem__)
        self._store: BaselineStore | None = None
        self._baselines: dict[str, StoredBaseline | BaselineError] = {}
        self._recorded = False
        self._results: dict[str, dict[tuple[str, str], Any]] = {}  # active.key -> {(case key, what): value}
        self._rendered: dict[tuple[int, str], tuple[Any, RenderedPrompt]] = {}  # (id(tokenizer), case key)
        self._tokenizer = None  # the base tokenizer when the base model itself is not loaded
        self._backends: dict[str, Backend] = {}
        self._floors: dict[str, NoiseFloor | None] = {}  # suite -> its noise floor (None: not recorded)
        self._record_error: SetupError | None = None
        self._unusable: dict[str, SetupError] = {}  # variant label -> why its prompts cannot run
        self.reported_setup: set[str] = set()  # scopes whose SetupError an item has already reported
        from evalsuite.gate.sweep import sweep_recipes

        self.sweep = sweep_recipes(settings.sweep, settings.sweep_ratios)  # recipe text -> (method, ratio)
        self.variants = self._variants()

    # -- setup -----------------------------------------------------------------------------------
    def _variants(self) -> list[Variant]:
        s = self.settings
        if s.update_baselines:
            return [Variant.base()]
        # "benign:PERTURBATION" gates a benign replicate (gate/perturb.py) like a recipe: the benchmark's
        # false-alarm runs, and a quick way to see what noise alone does to a suite
        recipes = list(s.recipes) + [r for r in self.sweep if r not in s.recipes]
        variants = [Variant.perturbation(r.removeprefix("benign:")) if r.startswith("benign:") else Variant.recipe(r)
                    for r in recipes] + Variant.checkpoints(s.compressed)
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
        """The case's content hash; a chat case's covers its prompt as the base tokenizer renders it."""
        rendered = self.rendered(self._base_tokenizer(), case).text if case.chat else None
        return case.content_hash(self.settings.max_new_tokens, rendered=rendered)

    def rendered(self, tokenizer: Any, case: Case) -> RenderedPrompt:
        """The case's prompt as ``tokenizer`` renders it (chat template, template arguments), once; every
        backend then gets these ids."""
        key = (id(tokenizer), case.key)
        if key not in self._rendered:  # the tokenizer is kept with its result, so its id is not reused
            self._rendered[key] = (tokenizer, render_case(tokenizer, case, template_kwargs=case.chat_template_kwargs))
        return self._rendered[key][1]

    def _base_tokenizer(self) -> Any:
        """The base model's tokenizer; rendering a prompt for its hash needs no weights loaded."""
        base = self.models.loaded_base
        if base is not None:
            return base.tokenizer
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(
                self.models.base_path(), trust_remote_code=self.settings.trust_remote_code, local_files_only=True
            )
        return self._tokenizer

    def answer(self, active: ActiveModel, case: Case, gen: Any) -> ReasoningSplit:
        """A response's answer (what the answer checks judge) and reasoning trace (the reasoning check)."""
        prompt = self.rendered(active.tokenizer, case).text
        return split_response(active.tokenizer, case, gen.token_ids, gen.text, prompt)

    # -- models ----------------------------------------------------------------------------------
    def base(self):
        """The base (original) model, loaded once per session."""
        return self.models.base()

    def activate(self, variant: Variant) -> ActiveModel:
        """Make ``variant`` the model under test (undoing the previous in-place compression)."""
        return self.models.activate(variant)

    def backend(self, active: ActiveModel) -> Backend:
        """The backend that answers the variant's requests (one per variant, kept for the session)."""
        if active.key not in self._backends:
            from evalsuite.backends import make_backend

            for other in [k for k in self._backends if self.settings.backend != "hf"]:
                self._backends.pop(other).close()  # one server at a time: each holds a whole model
            self._backends[active.key] = make_backend(self.settings, active)
        return self._backends[active.key]

    def close(self) -> None:
        """Stop backends (servers) and undo any in-place compression (the base is left as loaded)."""
        while self._backends:
            self._backends.popitem()[1].close()
        self.models.close()

    # -- baselines -------------------------------------------------------------------------------
    def generation_key(self, *, baseline: bool = False) -> dict[str, Any]:
        """The settings key of this run's outputs (dtype resolved); ``baseline=True``: the key of the
        baselines to judge against (another backend's / dtype's, for a cross-backend comparison)."""
        s = self.settings
        if baseline:
            return s.generation_key(dtype=s.baseline_dtype or self.dtype(), backend=s.baseline_backend)
        return s.generation_key(dtype=self.dtype())

    def dtype(self) -> str:
        """The dtype outputs are computed in: the setting, or the checkpoint's own for "auto"."""
        from evalsuite.model.loading import resolved_dtype

        return resolved_dtype(self.models.base_path(), self.settings.dtype)

    def store(self) -> BaselineStore:
        """The base model's baselines, found by its file fingerprint: gating a checkpoint never loads the base."""
        if self._store is None:
            from evalsuite.model.fingerprint import fingerprint_checkpoint

            path = self.models.base_path()
            base = self.models.loaded_base
            self._store = BaselineStore(
                self.settings.resolve(self.settings.baselines),
                base.fingerprint if base is not None else fingerprint_checkpoint(path),
                model_path=portable_path(path, self.settings.rootdir),
            )
        return self._store

    def baseline(self, case: Case) -> StoredBaseline:
        """The stored baseline of a case; raises BaselineError (missing / stale), cached either way."""
        if case.key not in self._baselines:
            try:
                self._baselines[case.key] = self.store().load(
                    case.suite, case.id, case_hash=self.case_hash(case),
                    settings_hash=key_hash(self.generation_key(baseline=True)),
                )
            except BaselineError as exc:
                self._baselines[case.key] = exc
        found = self._baselines[case.key]
        if isinstance(found, BaselineError):
            raise found
        return found

    def prompt_ids(self, active: ActiveModel, case: Case) -> list[int]:
        """The case's prompt as token ids, rendered once per tokenizer."""
        return self.rendered(active.tokenizer, case).ids

    def record(self) -> list[Path]:
        """Record baselines of the base model for every registered case (update mode only).

        All or nothing: every check (model, tokenizer, prompts, responses, case sources) runs and every
        payload is computed before the first file is written. A failure is one SetupError, re-raised
        (never retried) for every later item, which must not advise "record it": that is what ran.
        """
        if not self.settings.update_baselines:
            raise EvalsuiteError("baselines are only recorded with --evalsuite-update-baselines")
        if self._record_error is not None:
            raise self._record_error
        if self._recorded:
            return []
        self._recorded = True
        try:
            return self._record_all()
        except EvalsuiteError as exc:
            failed = exc if isinstance(exc, SetupError) else SetupError(f"recording baselines failed: {exc}")
            self._record_error = failed
            raise failed from None
        except Exception as exc:  # a bug: the first item shows the traceback, the others point to it
            self._record_error = SetupError(f"recording baselines failed: {type(exc).__name__}: {exc}")
            self.reported_setup.add(self._record_error.scope)
            raise

    def _record_all(self) -> list[Path]:
        active = self.activate(Variant.base())
        cases = [self.cases[k] for k in self.wanted.get("base", [])]
        store, key = self.store(), self.generation_key()
        preflight.check_sources(store, cases, self._source, self.settings.rootdir)
        self._preflight(active, [c for c in cases if c.generative])
        backend = self.backend(active)
        engine = backend.info.to_dict()
        plan = build_plan(cases, prompt_ids=lambda c: self.prompt_ids(active, c), budget=self.budget,
                          baseline=None, top_k=self.settings.top_k_logprobs)
        results = execute(plan, backend, top_k=self.settings.top_k_logprobs, timing=self.timing,
                          sandbox=self.settings.sandbox, answer=lambda c, g: self.answer(active, c, g).answer)
        label = f"the base model {portable_path(Path(active.path), self.settings.rootdir)}"
        generative = [c for c in cases if c.generative]
        preflight.check_scores(generative, [results[(c.key, "gen")] for c in generative], label, "run")
        pending = []
        for case in cases:
            if case.generative:
                gen = results[(case.key, "gen")]
                payload = generative_payload(case, gen, results.get((case.key, "code")), engine,
                                             prompt=self.rendered(active.tokenizer, case).text,
                                             answer=self.answer(active, case, gen))
            else:
                payload = {"kind": case.kind, "data": case.data, "metrics": results[(case.key, "disc")],
                           "engine": engine}
            pending.append((case, {**payload, "file": self._source(case)}))
        written = [store.write_model_info({
            "path": portable_path(Path(active.path), self.settings.rootdir),
            "model_type": _model_type(Path(active.path)),
            "settings": key,
            "engine": engine,
        })]
        for case, payload in pending:
            path, self.recorded[case.key] = write_baseline(
                store, case, payload, case_hash=self.case_hash(case), settings=key, settings_hash=key_hash(key)
            )
            written.append(path)
        self._baselines.clear()
        written += self._record_floor(cases)
        return written

    def _source(self, case: Case) -> str:
        """The case file as stored in its baseline: the same suite/id from two files is refused."""
        return portable_path(Path(case.file), self.settings.rootdir)

    def _preflight(self, active: ActiveModel, cases: list[Case]) -> None:
        """Tokenizer, chat templates and context of the prompts about to run: one SetupError, cached."""
        scope = "run" if self.settings.update_baselines else f"variant {active.variant.label}"
        if active.variant.label in self._unusable:
            raise self._unusable[active.variant.label]
        label = active.variant.label if active.variant.kind != "base" else f"the model {active.path}"
        try:
            preflight.check_tokenizer(active.tokenizer, label, scope)
            preflight.check_prompts(active.tokenizer, active.model, cases, lambda c: self.prompt_ids(active, c),
                                    label=label, scope=scope)
        except SetupError as exc:
            self._unusable[active.variant.label] = exc
            raise

    # -- noise floor -------------------------------------------------------------------------------
    def _record_floor(self, cases: list[Case]) -> list[Path]:
        """Run the base model under the configured benign replicates and store each check's spread per
        case (gate/noise.py); nothing when noise_replicates is 0."""
        from evalsuite.gate.perturb import replicate_schedule

        s = self.settings
        replicates = replicate_schedule(s.noise_replicates, s.noise_scales)
        if not replicates or not cases:
            return []
        settings_hash = key_hash(self.generation_key())
        entries = {c.key: CaseFloor(self.case_hash(c), settings_hash, response_hash(self.baseline(c))) for c in cases}
        stored_at = []
        for p in replicates:
            variant = Variant.perturbation(p.id)
            self.wanted[variant.label] = [c.key for c in cases]
            outcomes = [self._judge(variant, c, check) for c in cases for check in c.checks]
            kls = [float(o.new_value) for o in outcomes if o.check == "divergence"]
            mean_kl = sum(kls) / len(kls) if kls else 0.0
            if mean_kl > s.noise_max_kl:
                raise EvalsuiteError(
                    f"noise floor: replicate {p.id} is not benign: its mean teacher-forced KL over the suite is "
                    f"{mean_kl:.4f} nats > noise_max_kl {s.noise_max_kl}; lower noise_scales (now {s.noise_scales})"
                )
            stored_at.append({"id": p.id, "mean_kl": round(mean_kl, 6)})
            for o in outcomes:
                checks = entries[o.case_id].checks.setdefault(o.check, {"deviation": [], "passed": []})
                checks["deviation"].append(deviation(o))
                checks["passed"].append(o.passed)
            key = self.activate(variant).key
            results = self._results.pop(key, {})
            backend = self._backends.pop(key, None)
            if backend is not None:
                backend.close()
            for c in cases:
                gen = results.get((c.key, "gen"))
                if gen is not None and list(gen.token_ids) != list(self.baseline(c).response_ids):
                    entries[c.key].flips[p.id] = gen.text
        self.activate(Variant.base())
        written = []
        for suite in sorted({c.suite for c in cases}):
            path = self.store().folder / suite / FLOOR_FILE
            old = NoiseFloor.load(path)
            # the same replicates (ids; mean_kl depends on which cases ran): keep the other cases' entries
            same = old is not None and old.replicate_ids == [str(r["id"]) for r in stored_at]
            floor = old if same else NoiseFloor(path, stored_at)
            floor.replicates = stored_at
            floor.cases.update({c.id: entries[c.key] for c in cases if c.suite == suite})
            written.append(floor.save())
            self._floors.pop(suite, None)
        return written

    def floor(self, suite: str) -> NoiseFloor | None:
        """The suite's recorded noise floor (None when none was recorded)."""
        if suite not in self._floors:
            self._floors[suite] = NoiseFloor.load(self.store().folder / suite / FLOOR_FILE)
        return self._floors[suite]

    def floor_entry(self, case: Case) -> CaseFloor | str:
        """The case's usable noise floor, or a sentence saying why there is none."""
        floor = self.floor(case.suite)
        if floor is None:
            return "no noise floor recorded: absolute thresholds only"
        return floor.entry(case.id, case_hash=self.case_hash(case), response=response_hash(self.baseline(case)),
                           settings_hash=key_hash(self.generation_key(baseline=True)))

    def _against_floor(self, case: Case, outcome: CheckOutcome) -> CheckOutcome:
        entry = self.floor_entry(case)
        if isinstance(entry, str):
            return replace(outcome, extra={**outcome.extra, "floor": {"status": entry}})
        floor = self.floor(case.suite)
        margin = self.settings.noise_margin
        return entry.judge(outcome, margin, floor.replicate_ids if floor else [],
                           floor.suite_edge(outcome.check, margin) if floor else None)

    # -- model work: one plan per variant -----------------------------------------------------------
    def _work(self, active: ActiveModel, case: Case) -> dict[tuple[str, str], Any]:
        """The variant's model outputs; the first call runs the plan of every case registered for it."""
        done = self._results.setdefault(active.key, {})
        if (case.key, "planned") not in done:
            keys = self.wanted.get(active.variant.label, [])
            todo = [self.cases[k] for k in keys if (k, "planned") not in done]
            if case not in todo:
                todo.append(case)
            self._preflight(active, [c for c in todo if c.generative])
            plan = build_plan(todo, prompt_ids=lambda c: self.prompt_ids(active, c), budget=self.budget,
                              baseline=lambda c: self._scorable(active, c))
            done.update(execute(plan, self.backend(active), top_k=self.settings.top_k_logprobs, timing=self.timing,
                                sandbox=self.settings.sandbox, answer=lambda c, g: self.answer(active, c, g).answer))
            done.update({(c.key, "planned"): True for c in todo})
        return done

    def _scorable(self, active: ActiveModel, case: Case) -> StoredBaseline:
        """The stored baseline, if the model under test can score its token ids: a hand-edited id past the
        vocabulary fails that case alone, instead of an index error in the batch every case shares."""
        stored = self.baseline(case)
        config = getattr(active.model, "config", None)
        config = config.get_text_config() if hasattr(config, "get_text_config") else config
        vocab = getattr(config, "vocab_size", None) or len(active.tokenizer)
        top = [i for row in stored.logprobs.get("top_ids", []) for i in row]
        largest = max([*stored.response_ids, *top], default=-1)
        if largest >= vocab:
            raise BaselineError(
                f"corrupt baseline {stored.path}: token id {largest} is outside the {vocab}-token vocabulary of "
                f"{active.variant.label}; restore it from version control or {UPDATE_HINT}"
            )
        return stored

    def _check_tokenization(self, active: ActiveModel, case: Case, stored: StoredBaseline) -> None:
        """The fingerprint covers the base's tokenizer files, not the tokenizer library's behaviour or a
        checkpoint's own tokenizer: a baseline whose prompt ids no longer match is stale (its response ids
        and log-probs would be compared on other tokens)."""
        recorded = stored.data.get("prompt_ids")
        if recorded is not None and list(recorded) != self.prompt_ids(active, case):
            raise BaselineError(
                f"stale baseline {stored.path}: the tokenizer of {active.variant.label} encodes the prompt "
                "differently than the tokenizer the baseline was recorded with; re-record with "
                "`pytest --evalsuite-update-baselines` if the tokenizer change is intended"
            )

    # -- one check ---------------------------------------------------------------------------------
    def check(self, variant: Variant, case: Case, check: str) -> CheckOutcome:
        """Run one check of one case under one variant, judged against the case's noise floor when one
        was recorded, and keep its outcome for the reports."""
        if self.settings.update_baselines:
            self.record()  # once; a failed record is re-raised, never retried
        outcome = self._judge(variant, case, check)
        if variant.kind != "base":
            outcome = self._against_floor(case, outcome)
        self.outcomes.append(outcome)
        return outcome

    def _judge(self, variant: Variant, case: Case, check: str) -> CheckOutcome:
        """One check against the stored baseline with its absolute tolerance (no floor)."""
        stored = self.baseline(case)
        active = self.activate(variant)
        x = CheckInput(case=case, tolerance=case.checks[check], baseline_metrics=stored.metrics,
                       variant=variant.label)
        if case.generative:
            self._scorable(active, case)
            self._check_tokenization(active, case, stored)
            results = self._work(active, case)
            split = self.answer(active, case, results[(case.key, "gen")])
            x.baseline_text, x.new_text = stored.response, split.answer
            x.new_values["reasoning"] = split
            x.baseline_logprobs = stored.logprobs
            x.new_values["kl_rows"] = results.get((case.key, "kl_rows"))
            x.new_values.update(results.get((case.key, "code"), {}))
        else:
            x.new_values.update(self._work(active, case)[(case.key, "disc")])
        return run_check(check, x)

    def run_info(self) -> dict[str, Any]:
        """Key facts of this run for reports (model, fingerprint, variants, settings, versions)."""
        from evalsuite.gate.baselines import library_versions

        info: dict[str, Any] = {
            "variants": ", ".join(v.label for v in self.variants),
            "backend": self.settings.backend,
            "max_new_tokens": self.settings.max_new_tokens,
            "versions": library_versions(),
        }
        if self.models.loaded_base is not None or self._store is not None:
            info["settings"] = self.generation_key()
            info["model"] = portable_path(self.models.base_path(), self.settings.rootdir)
            info["fingerprint"] = self.store().fingerprint[:16]
            info["baselines"] = str(self.store().folder)
        for backend in self._backends.values():
            info["engine"] = backend.info.to_dict()
        for label, record in self.records.items():
            info[f"compression {label}"] = describe_record(record)
        t = self.timing
        info["time_s"] = {"load": round(t.load_s, 2), "compress": round(t.compress_s, 2),
                          "generate": round(t.generate_s, 2), "score": round(t.score_s, 2),
                          "discriminative": round(sum(t.extra.values()), 2)}
        return info
