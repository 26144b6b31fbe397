"""lm-eval tasks as gate cases: a registered task name or a local task YAML, judged per item.

Why: the standard benchmarks users already trust (and their own lm-eval task YAMLs) join the gate
without being rewritten as prompt cases. The gate needs per-item outcomes, not an aggregate: the
compressed model is compared with the original by the same exact paired McNemar test as the gate's
multiple-choice check, on the items both answered (one outcome per document, from lm-eval's sample log).

Nothing is downloaded: lm-eval and datasets run offline (see lm_eval_checks). A local task YAML's
`dataset_kwargs.data_files` may be relative to the YAML (lm-eval itself would read them relative to the
working directory); a registered task whose dataset is not in the local Hugging Face cache fails with
a message saying so. A local YAML is loaded on its own (its folder is not indexed, so it may sit next
to prompt cases); a registered name makes lm-eval index its built-in tasks once (~15-25 s here).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.errors import EvalsuiteError

__all__ = ["TaskItems", "is_task_yaml", "task_config", "task_hash", "task_items", "task_values"]


@dataclass(frozen=True)
class TaskItems:
    """Per-item outcomes of one task: ``correct[i]`` (0/1) of the document ``ids[i]`` under ``metric``."""

    task: str
    metric: str
    ids: list[str]
    correct: list[int]

    def values(self) -> dict[str, Any]:
        """What a baseline stores and the paired check reads (same shape as a multiple-choice case)."""
        return {"task": self.task, "metric": self.metric, "items": len(self.ids),
                "accuracy": round(sum(self.correct) / len(self.correct), 6) if self.correct else 0.0,
                "correct": list(self.correct), "ids": list(self.ids)}


def is_task_yaml(path: Path) -> bool:
    """An lm-eval task YAML (top-level `task:`), not a prompt-case file: the plugin does not collect it."""
    try:
        head = path.read_text(encoding="utf-8")
    except OSError:
        return False
    return any(line.startswith(("task:", "group:")) for line in head.splitlines())


def _local_yaml(spec: str, base: Path) -> Path | None:
    if not spec.endswith((".yaml", ".yml")):
        return None
    path = Path(spec).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def task_config(spec: str, base: Path) -> str | dict[str, Any]:
    """The task to load: a registered name as is, or a local YAML (relative to ``base``) as its config
    with includes resolved and relative `data_files` made absolute (relative to the YAML's folder)."""
    path = _local_yaml(spec, base)
    if path is None:
        return spec
    if not path.is_file():
        raise EvalsuiteError(f"lm-eval task YAML {path} does not exist (field 'task': {spec!r}, relative to {base})")
    from lm_eval.tasks._yaml_loader import load_yaml

    try:
        config = load_yaml(path, resolve_func=True)
    except Exception as exc:  # yaml errors, missing includes, unimportable !function
        raise EvalsuiteError(f"lm-eval task YAML {path} cannot be read: {exc}") from exc
    if "task" not in config:
        raise EvalsuiteError(f"{path} is not an lm-eval task YAML: it has no top-level `task:` name")
    kwargs = dict(config.get("dataset_kwargs") or {})
    files = kwargs.get("data_files")
    if files is not None:
        kwargs["data_files"] = _absolute_files(files, path.parent)
        config["dataset_kwargs"] = kwargs
    return config


def _absolute_files(files: Any, folder: Path) -> Any:
    if isinstance(files, str):
        return files if "://" in files else str((folder / files).resolve())
    if isinstance(files, list):
        return [_absolute_files(f, folder) for f in files]
    if isinstance(files, dict):
        return {split: _absolute_files(f, folder) for split, f in files.items()}
    return files


def _local_files(files: Any) -> list[Path]:
    if isinstance(files, str):
        return [Path(files)] if Path(files).is_file() else []
    items = files.values() if isinstance(files, dict) else files if isinstance(files, list) else []
    return [p for f in items for p in _local_files(f)]


def task_hash(config: str | dict[str, Any]) -> dict[str, Any]:
    """What decides the task's outcomes, for the case hash: a registered name and lm-eval's version, or
    a local config and the bytes of its local data files."""
    import lm_eval

    if isinstance(config, str):
        return {"task": config, "lm_eval": getattr(lm_eval, "__version__", "")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    for path in _local_files((config.get("dataset_kwargs") or {}).get("data_files")):
        digest.update(path.read_bytes())
    return {"task_config_sha256": digest.hexdigest()}


def _binary_metric(samples: list[dict[str, Any]], metrics: list[str], wanted: str | None, task: str) -> str:
    def binary(name: str) -> bool:
        return all(name in s and float(s[name]) in (0.0, 1.0) for s in samples)

    if wanted:
        if not binary(wanted):
            raise EvalsuiteError(
                f"lm-eval task {task!r}: metric {wanted!r} has no per-item 0/1 outcome in lm-eval's sample log "
                f"(metrics: {', '.join(metrics) or 'none'}); the paired McNemar comparison needs one (acc, exact_match)"
            )
        return wanted
    for name in metrics:
        if binary(name):
            return name
    raise EvalsuiteError(
        f"lm-eval task {task!r}: none of its metrics ({', '.join(metrics) or 'none'}) is a per-item 0/1 outcome; "
        "the gate compares tasks item by item (McNemar), so use a task scored by acc / exact_match, or set `metric`"
    )


def task_items(
    model: Any,
    tokenizer: Any,
    config: str | dict[str, Any],
    *,
    limit: int | None = None,
    metric: str | None = None,
    batch_size: int = 8,
) -> TaskItems:
    """Run one lm-eval task on the in-memory model and return its per-item 0/1 outcomes, by document."""
    from evalsuite.gate.lm_eval_checks import run_lm_eval

    name = config if isinstance(config, str) else str(config["task"])

    def load(manager: Any) -> dict[str, Any]:
        try:
            if isinstance(config, str):
                return manager().load([config])
            return manager(include_defaults=False).load([config])
        except Exception as exc:  # unknown name, a dataset missing offline, a bad config
            raise EvalsuiteError(
                f"lm-eval task {name!r} could not be loaded offline: {type(exc).__name__}: {exc}. evalsuite never "
                "downloads: use a registered task whose dataset is in the local Hugging Face datasets cache, or a "
                "local task YAML over local files (dataset_path: json, dataset_kwargs.data_files)"
            ) from exc

    out, _ = run_lm_eval(model, tokenizer, load, batch_size=batch_size, limit=limit)
    logs = out.get("samples", {})
    if name not in logs or len(logs) != 1:
        raise EvalsuiteError(
            f"lm-eval task {name!r} ran as {sorted(logs)}; a case names one task (not a group or tag) so its items "
            "can be paired with the baseline's"
        )
    samples = sorted(logs[name], key=lambda s: s["doc_id"])
    metrics = [m for m in out.get("configs", {}).get(name, {}).get("metric_list", []) if isinstance(m, dict)]
    chosen = _binary_metric(samples, [str(m.get("metric")) for m in metrics], metric, name)
    return TaskItems(name, chosen, [str(s["doc_id"]) for s in samples], [int(float(s[chosen])) for s in samples])


def task_values(backend: Any, case: Any) -> dict[str, Any]:
    """An `lm_eval` case's per-item values on the backend's model (what its baseline stores)."""
    model = getattr(backend, "model", None)
    if model is None:
        raise EvalsuiteError(
            f"{case.file}: case {case.id!r}: lm-eval task cases run lm-eval on the model in this process, so they "
            f"need backend = \"hf\" (this run uses {backend.info.backend!r}); deselect them with -k or run them "
            "in a separate hf session"
        )
    config = task_config(case.task or "", case.file.parent)
    return task_items(model, backend.tokenizer, config, limit=case.limit, metric=case.metric,
                      batch_size=getattr(backend, "batch_size", 8)).values()
