"""Prompt cases: YAML files under `prompts/<suite>/`, each case one group of test items.

Why strict parsing: a typo in a case file must fail collection loudly (file, case, field), never turn
into a silently skipped check. The format is documented in prompts/README.md.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evalsuite.config import DEFAULT_TOLERANCES, MAX_NEW_TOKENS_LIMIT, merge_tolerance
from evalsuite.datafiles import data_digest
from evalsuite.errors import CaseFileError, EvalsuiteError, SettingError
from evalsuite.gate.baselines import name_problem
from evalsuite.gate.chat import conversation_problem, messages_problem
from evalsuite.gate.checks import REGISTRY
from evalsuite.heldout import data_path as resolve_data_path

__all__ = ["Case", "load_case_file", "resolve_data_path", "KINDS"]

KINDS = ("generate", "perplexity", "multiple_choice", "lm_eval")

# field -> (type(s), kinds where allowed); "defaults:" may hold any of them except id
_FIELDS: dict[str, tuple[tuple[type, ...], tuple[str, ...]]] = {
    "id": ((str,), KINDS),
    "kind": ((str,), KINDS),
    "description": ((str,), KINDS),
    "domain": ((str,), KINDS),
    "language": ((str,), KINDS),
    "prompt": ((str,), ("generate",)),
    "chat": ((bool,), ("generate",)),
    "system": ((str,), ("generate",)),
    "messages": ((list,), ("generate",)),
    "chat_template_kwargs": ((dict,), ("generate",)),
    "reasoning": ((str,), ("generate",)),
    "max_new_tokens": ((int,), ("generate",)),
    "stop": ((str, list), ("generate",)),
    "reference": ((str,), ("generate",)),
    "answer": ((str, int, float), ("generate",)),
    "tests": ((str, list), ("generate",)),
    "entry_point": ((str,), ("generate",)),
    "keywords": ((list,), ("generate",)),
    "data": ((str,), ("perplexity", "multiple_choice")),
    "limit": ((int,), ("perplexity", "multiple_choice", "lm_eval")),
    "task": ((str,), ("lm_eval",)),
    "metric": ((str,), ("lm_eval",)),
    "checks": ((dict,), KINDS),
}


def _budget(value: int) -> str | None:
    if not 1 <= value <= MAX_NEW_TOKENS_LIMIT:
        return f"must be between 1 and {MAX_NEW_TOKENS_LIMIT}, got {value}"
    return None


def _positive(value: int) -> str | None:
    return None if value >= 1 else f"must be >= 1, got {value}"


def _expected_text(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number or a text, got {value!r}"
    if not str(value).strip():
        return "must not be empty: every response contains the empty text, so the check could never fail"
    return None


def _identifier(value: str) -> str | None:
    return None if value.isidentifier() else f"must be a Python function name, got {value!r}"


def _reasoning_style(value: str) -> str | None:
    from evalsuite.metrics.reasoning import REASONING_STYLES

    return None if value in REASONING_STYLES else f"must be one of {', '.join(REASONING_STYLES)}, got {value!r}"


#: field -> rule on a value of the right type (None = fine, else what is wrong); fields not listed
#: need only their type. A new field with a range or meaning to check adds one line here.
_RULES: dict[str, Callable[[Any], str | None]] = {
    "max_new_tokens": _budget,
    "limit": _positive,
    "answer": _expected_text,
    "reference": _expected_text,
    "entry_point": _identifier,
    "messages": messages_problem,
    "reasoning": _reasoning_style,
}


@dataclass
class Case:
    """One prompt case (or one held-out data set for perplexity / multiple choice)."""

    id: str
    suite: str
    file: Path
    kind: str = "generate"
    domain: str = ""
    language: str = "en"
    description: str = ""
    prompt: str = ""
    chat: bool = False
    system: str = ""  # chat cases: the system prompt, `messages`: earlier turns, the prompt is the last user turn
    messages: list[dict[str, str]] = field(default_factory=list)
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)
    reasoning: str | None = None  # how a reasoning trace is split off (metrics.reasoning); None = not set
    max_new_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    reference: str | None = None
    answer: str | None = None
    tests: list[str] = field(default_factory=list)
    entry_point: str | None = None
    keywords: list[str] = field(default_factory=list)
    data: str | None = None
    limit: int | None = None
    task: str | None = None  # lm_eval: a registered task name or a task YAML relative to the case file
    metric: str | None = None  # lm_eval: the per-item 0/1 metric to pair (default: the task's first such)
    # check name -> effective tolerance (defaults merged with the case's overrides)
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique within a run: suite/id."""
        return f"{self.suite}/{self.id}"

    @property
    def generative(self) -> bool:
        return self.kind == "generate"

    def content_hash(self, max_new_tokens: int, *, rendered: str | None = None) -> str:
        """Hash of what decides the baseline's content: prompt, decoding budget, references, data.

        ``rendered`` is the prompt as the model reads it (chat template applied), so a changed template
        or template argument makes a chat case's baseline stale. Tolerances, keywords, domain and
        description are left out on purpose: tightening a check must not invalidate a recorded baseline.
        """
        payload: dict[str, Any] = {"kind": self.kind}
        chat_fields = {"system": self.system, "messages": self.messages,
                       "chat_template_kwargs": self.chat_template_kwargs, "reasoning": self.reasoning,
                       "rendered": rendered}
        payload.update({k: v for k, v in chat_fields.items() if v})  # absent when unset: older hashes hold
        if self.kind == "lm_eval":
            from evalsuite.gate.lm_eval_tasks import task_config, task_hash

            config = task_config(self.task or "", self.file.parent)
            payload.update(limit=self.limit, metric=self.metric, **task_hash(config))
        elif self.generative:
            payload.update(
                prompt=self.prompt,
                chat=self.chat,
                max_new_tokens=self.max_new_tokens or max_new_tokens,
                stop=self.stop,
                reference=self.reference,
                answer=self.answer,
                tests=self.tests,
                entry_point=self.entry_point,
            )
        else:
            path = resolve_data_path(self)
            payload.update(
                data=self.data,
                limit=self.limit,
                data_sha256=data_digest(path),
            )
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _fail(path: Path, case: str | None, fld: str | None, msg: str) -> CaseFileError:
    where = str(path)
    if case is not None:
        where += f": case {case!r}"
    if fld is not None:
        where += f": field {fld!r}"
    return CaseFileError(f"{where}: {msg}")


def _string_list(path: Path, cid: str, name: str, value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(x, str) and x for x in items):
        raise _fail(path, cid, name, f"must be a list of non-empty strings, got {value!r}")
    return list(items)


def _build_case(
    path: Path, suite: str, raw: dict[str, Any], index: int, tolerances: dict[str, dict[str, Any]]
) -> Case:
    cid = raw.get("id")
    problem = name_problem(cid)
    if problem:
        raise _fail(path, f"#{index + 1}", "id", f"every case needs an id that names its baseline file: {problem}")
    kind = raw.get("kind", "generate")
    if kind not in KINDS:
        raise _fail(path, cid, "kind", f"must be one of {', '.join(KINDS)}; got {kind!r}")
    for name, value in raw.items():
        if name not in _FIELDS:
            raise _fail(path, cid, name, f"unknown field; known fields: {', '.join(sorted(_FIELDS))}")
        types, kinds = _FIELDS[name]
        if kind not in kinds:
            raise _fail(path, cid, name, f"not allowed in a case of kind {kind!r}")
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            raise _fail(path, cid, name, f"must be {names}, got {type(value).__name__} {value!r}")
        rule = _RULES.get(name)
        problem = rule(value) if rule else None
        if problem:
            raise _fail(path, cid, name, problem)
    case = Case(id=cid, suite=suite, file=path, kind=kind)
    for name in ("domain", "language", "description", "prompt", "reference", "entry_point", "data"):
        if name in raw:
            setattr(case, name, raw[name])
    for name in ("system", "messages", "chat_template_kwargs", "reasoning", "task", "metric"):
        if name in raw:
            setattr(case, name, raw[name])
    chat_fields = [n for n in ("system", "messages", "chat_template_kwargs", "reasoning") if n in raw]
    if chat_fields and raw.get("chat") is False:
        raise _fail(path, cid, "chat", f"is false, but {', '.join(chat_fields)} only apply to chat-template prompts")
    case.chat = raw.get("chat", bool(chat_fields))
    case.max_new_tokens = raw.get("max_new_tokens")
    case.limit = raw.get("limit")
    if "answer" in raw:
        case.answer = str(raw["answer"])
    for name in ("stop", "tests", "keywords"):
        if name in raw:
            setattr(case, name, _string_list(path, cid, name, raw[name]))
    # required fields
    if not case.domain:
        raise _fail(path, cid, "domain", "is required (e.g. translation, reasoning, code, knowledge)")
    if kind == "generate":
        if not case.prompt.strip() and not case.messages:
            raise _fail(path, cid, "prompt", "is required and must not be empty (or give the turns as `messages`)")
        problem = conversation_problem(case) if case.chat else None
        if problem:
            raise _fail(path, cid, "messages", problem)
        if not case.language:
            raise _fail(path, cid, "language", "is required: the language the response should be in")
        if case.entry_point and not case.tests:
            raise _fail(path, cid, "entry_point", "needs `tests` (assert lines) to run against")
    elif kind == "lm_eval":
        if not case.task:
            raise _fail(path, cid, "task", "an lm_eval case needs `task`: a registered lm-eval task or a task YAML")
        from evalsuite.gate.lm_eval_tasks import task_config

        try:
            task_config(case.task, path.parent)
        except EvalsuiteError as exc:
            raise _fail(path, cid, "task", str(exc)) from None
    elif not case.data:
        raise _fail(path, cid, "data", f"a {kind} case needs `data`: a JSONL file (or heldout:NAME.jsonl)")
    case.checks = _case_checks(path, case, raw.get("checks") or {}, tolerances)
    if case.data:
        resolve_data_path(case)
    return case


def _case_checks(
    path: Path, case: Case, overrides: dict[str, Any], tolerances: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The checks this case runs (from the check registry), each tolerance merged once: the project's
    values (defaults < pyproject) overridden by the case's own `checks:` entry."""
    for check, value in overrides.items():
        spec = REGISTRY.get(check)
        if spec is None:
            raise _fail(path, case.id, f"checks.{check}", f"unknown check; known: {', '.join(REGISTRY)}")
        if not spec.applies(case) and value is not False:
            why = spec.requires if case.generative and spec.kind == "generative" else (
                "is a discriminative check (use kind: perplexity / multiple_choice)"
                if case.generative else f"does not apply to a case of kind {case.kind!r}"
            )
            raise _fail(path, case.id, f"checks.{check}", why)
    checks: dict[str, dict[str, Any]] = {}
    for check, spec in REGISTRY.items():
        value = overrides.get(check)
        if not spec.applies(case) or value is False:
            continue
        try:
            checks[check] = merge_tolerance(tolerances, check, value, where=f"checks.{check}")
        except SettingError as exc:
            raise _fail(path, case.id, exc.where, exc.problem) from None
    return checks


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # SafeLoader reports unhashable keys itself
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping (YAML would keep only the last)",
                    key_node.start_mark,
                )
            seen[key] = True
        return super().construct_mapping(node, deep=deep)


def load_case_file(
    path: str | Path, *, suite: str | None = None, tolerances: dict[str, dict[str, Any]] | None = None
) -> list[Case]:
    """Parse one YAML suite file into cases; raises CaseFileError naming file, case and field.

    ``tolerances`` are the project's defaults (pyproject); a case's `checks:` overrides them.
    """
    path = Path(path)
    suite = suite or path.parent.name
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 - safe subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise _fail(path, None, None, f"is not valid YAML{at}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise _fail(path, None, None, f"is not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise _fail(path, None, None, f"is not UTF-8 text: {exc}") from None
    if doc is None:
        return []
    if isinstance(doc, list):
        doc = {"cases": doc}
    if not isinstance(doc, dict):
        raise _fail(path, None, None, "must be a mapping with a `cases:` list (or a list of cases)")
    unknown = set(doc) - {"suite", "defaults", "cases"}
    if unknown:
        raise _fail(path, None, ", ".join(sorted(unknown)), "unknown top-level key; use suite, defaults, cases")
    if "suite" in doc:
        problem = name_problem(doc["suite"])
        if problem:
            raise _fail(path, None, "suite", problem)
        suite = doc["suite"]
    elif name_problem(suite):
        raise _fail(
            path, None, "suite", f"the suite name {suite!r} comes from the file or folder name and "
            f"{name_problem(suite)}; rename it or set `suite:` in the file"
        )
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise _fail(path, None, "defaults", "must be a mapping of case fields")
    if "id" in defaults:
        raise _fail(path, None, "defaults.id", "ids must be given per case")
    raw_cases = doc.get("cases")
    if not isinstance(raw_cases, list):
        raise _fail(path, None, "cases", "must be a list of cases")
    cases: list[Case] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_cases):
        if not isinstance(raw, dict):
            raise _fail(path, f"#{index + 1}", None, f"must be a mapping of fields, got {raw!r}")
        merged = {**defaults, **raw}
        if isinstance(defaults.get("checks"), dict) and isinstance(raw.get("checks"), dict):
            merged["checks"] = {**defaults["checks"], **raw["checks"]}
        case = _build_case(path, suite, merged, index, tolerances or DEFAULT_TOLERANCES)
        if case.id.lower() in seen:
            raise _fail(path, case.id, "id", "duplicate id in this file (ids are compared ignoring case: "
                        "they name baseline files, and macOS and Windows file names ignore case)")
        seen.add(case.id.lower())
        cases.append(case)
    return cases
