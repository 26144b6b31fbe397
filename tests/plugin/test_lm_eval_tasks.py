"""lm-eval task cases end to end: a local task YAML over local JSONL, next to the prompt cases, gated
per item (recorded, passed unmodified, failed by a damaged model through the paired McNemar test)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from evalsuite.errors import CaseFileError, EvalsuiteError
from evalsuite.gate.cases import load_case_file
from evalsuite.gate.lm_eval_tasks import task_config, task_hash
from evalsuite.model.loading import default_model_path

TASK_YAML = """
task: evalsuite_code_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: code_mc.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: gold
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""

CASES = """
cases:
  - id: code-mc
    kind: lm_eval
    domain: code
    task: tasks/code_mc.yaml
    limit: 30
"""


def _task_folder(folder: Path) -> Path:
    tasks = folder / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "code_mc.yaml").write_text(TASK_YAML, encoding="utf-8")
    rows = (Path(str(default_model_path().parent)) / "data" / "heldout" / "mc-code.jsonl").read_text(encoding="utf-8")
    (tasks / "code_mc.jsonl").write_text(rows, encoding="utf-8")
    return tasks / "code_mc.yaml"


@pytest.fixture(scope="module")
def damaged_embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalsuite.gate.testing import damage_experts

    return damage_experts(default_model_path(), tmp_path_factory.mktemp("damaged-embedded"), keep=1)


def test_local_task_case_is_recorded_passed_and_fails_a_damaged_model(
    pytester: pytest.Pytester, damaged_embedded: Path
):
    pytester.makefile(".toml", pyproject='[tool.evalsuite]\nsuites = ["bench"]\n')
    bench = pytester.path / "prompts" / "bench"
    _task_folder(bench)  # the task YAML sits under the prompts folder: it is not a prompt-case file
    (bench / "tasks.yaml").write_text(CASES, encoding="utf-8")
    pytester.runpytest("--evalsuite-update-baselines").assert_outcomes(passed=1)
    stored = json.loads(next((pytester.path / "baselines").rglob("code-mc.json")).read_text())
    values = stored["metrics"]
    assert values["task"] == "evalsuite_code_mc" and values["metric"] == "acc" and values["items"] == 30
    assert values["ids"] == [str(i) for i in range(30)] and len(values["correct"]) == 30
    assert values["accuracy"] >= 0.8, values  # the embedded model knows these completions
    # the original passes against itself, as a discriminative item
    result = pytester.runpytest("-m", "discriminative", "-v")
    result.stdout.fnmatch_lines(["*prompts/bench/tasks.yaml::code-mc::task[[]base[]] PASSED*"])
    # a model with 7 of 8 experts zeroed loses items: the paired McNemar test fails it
    result = pytester.runpytest("-m", "evalsuite", f"--evalsuite-compressed={damaged_embedded}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*evalsuite check failed: task*", "*McNemar*"])


def _case(tmp_path: Path, extra: str = "") -> Path:
    _task_folder(tmp_path)
    path = tmp_path / "cases.yaml"
    path.write_text(CASES + textwrap.indent(extra, "    "), encoding="utf-8")
    return path


def test_task_data_files_resolve_next_to_the_yaml_and_key_the_case_hash(tmp_path: Path):
    (case,) = load_case_file(_case(tmp_path))
    config = task_config(case.task, case.file.parent)
    assert config["dataset_kwargs"]["data_files"]["test"] == str(tmp_path / "tasks" / "code_mc.jsonl")
    before = case.content_hash(64)
    with (tmp_path / "tasks" / "code_mc.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"id": "x", "context": "a", "choices": [" b", " c"], "gold": 0}\n')
    assert case.content_hash(64) != before, "changed task data must make the baseline stale"
    assert task_hash("arc_easy")["task"] == "arc_easy"  # a registered name is keyed by name and lm-eval version


def test_bad_task_cases_name_the_field(tmp_path: Path):
    _task_folder(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - {id: t, kind: lm_eval, domain: x, task: tasks/missing.yaml}\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match="case 't': field 'task': lm-eval task YAML .*missing.yaml does not exist"):
        load_case_file(bad)
    bad.write_text("cases:\n  - {id: t, kind: lm_eval, domain: x}\n", encoding="utf-8")
    with pytest.raises(CaseFileError, match="field 'task': an lm_eval case needs `task`"):
        load_case_file(bad)
    bad.write_text("cases:\n  - {id: t, kind: lm_eval, domain: x, task: tasks/code_mc.yaml, data: a.jsonl}\n")
    with pytest.raises(CaseFileError, match="field 'data': not allowed in a case of kind 'lm_eval'"):
        load_case_file(bad)


def test_a_task_without_a_per_item_binary_metric_is_refused(tmp_path: Path, varied_moe):
    from evalsuite.gate.lm_eval_tasks import task_items

    (case,) = load_case_file(_case(tmp_path))
    config = task_config(case.task, case.file.parent)
    items = task_items(varied_moe.model, varied_moe.tokenizer, config, limit=4)
    assert items.metric == "acc" and len(items.ids) == 4 and set(items.correct) <= {0, 1}
    with pytest.raises(EvalsuiteError, match="metric 'bleu' has no per-item 0/1 outcome"):
        task_items(varied_moe.model, varied_moe.tokenizer, config, limit=4, metric="bleu")


def test_a_registered_task_whose_dataset_is_not_cached_fails_offline_with_the_fix(varied_moe):
    """A registered name is looked up among lm-eval's built-in tasks (indexing them takes ~15-35 s here);
    its dataset is never downloaded: without a local copy the case fails saying what to do."""
    from evalsuite.gate.lm_eval_tasks import task_items

    with pytest.raises(EvalsuiteError, match=r"lm-eval task 'arc_easy' could not be loaded offline: .*never downloads"):
        task_items(varied_moe.model, varied_moe.tokenizer, "arc_easy", limit=2)
