"""Hostile but honest inputs (issue 12, issue 9 "one error, early"), each through a real pytest run.

Every bad input must end in one clear message naming the file/field/value and the fix - never a
traceback, never one failure per item - and must leave the project tree as it was: nothing under
baselines/ written, changed or escaped to another folder. Each input has a benign look-alike that runs.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

SUITE = """
defaults:
  domain: chat
  language: en
cases:
  - id: greet
    prompt: "hello world"
  - id: cat
    prompt: "translate: the cat"
    reference: "el gato"
"""
ITEMS = 13  # 6 generative checks x 2 cases + chrf for `cat`


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of the project (content and mode), caches left out."""
    skip = {".pytest_cache", "__pycache__", ".cache"}  # .cache: pytester's HOME holds the fingerprint cache
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not skip & set(p.relative_to(root).parts)
    }


def _output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


def _assert_clear(result: pytest.RunResult, *messages: str) -> str:
    text = _output(result)
    assert "Traceback" not in text and "most recent call last" not in text, text[-3000:]
    for message in messages:
        assert message in text, f"{message!r} not in:\n{text[-3000:]}"
    return text


@pytest.fixture
def project(pytester: pytest.Pytester, varied_moe_path: Path) -> pytest.Pytester:
    pytester.makefile(".toml", pyproject=_pyproject(varied_moe_path))
    (pytester.path / "prompts" / "demo").mkdir(parents=True)
    (pytester.path / "prompts" / "demo" / "basic.yaml").write_text(SUITE, encoding="utf-8")
    return pytester


def _pyproject(model: Path, extra: str = "") -> str:
    budget = "" if extra.startswith("max_new_tokens") else "max_new_tokens = 8\n"
    return f'[tool.evalsuite]\nmodel = "{model}"\n{budget}{extra}'


def _record(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest("--evalsuite-update-baselines", "-p", "no:cacheprovider", *args)


def _gate(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return project.runpytest("-m", "evalsuite", "-p", "no:cacheprovider", *args)


# -- settings: one usage error at start-up --------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ("max_new_tokens = 0\n", "max_new_tokens: got 0; must be a finite number >= 1"),
        ("threads = 0\n", "threads: got 0"),
        ("top_k_logprobs = 0\n", "top_k_logprobs: got 0"),
        ('device = "cuda"\n', "device: 'cuda', but this machine has no cuda device"),
        ('device = "cuda:banana"\n', "device: 'cuda:banana' is not a device"),
        ("[tool.evalsuite.tolerances.collapse]\nmax_degenerate_fraction = nan\n", "max_degenerate_fraction: got nan"),
        ("[tool.evalsuite.tolerances.code]\ntimeout_s = 0\n", "code.timeout_s: got 0"),
        ("[tool.evalsuite.tolerances.content]\nmin_retention = -1\n", "min_retention: got -1"),
        ("[tool.evalsuite.tolerances.mc]\nalpha = nan\n", "alpha: got nan"),
    ],
)
def test_bad_settings_are_one_usage_error(project, varied_moe_path, extra, says):
    if 'device = "cuda"' in extra:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    project.makefile(".toml", pyproject=_pyproject(varied_moe_path, extra))
    before = _tree(project.path)
    result = _record(project)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    _assert_clear(result, "pyproject.toml [tool.evalsuite].", says)
    assert _tree(project.path) == before


# -- case files: one collection error naming file, case and field ------------------------------------------
def _case_file(project: pytest.Pytester, name: str, text: str, folder: str = "demo") -> None:
    (project.path / "prompts" / folder).mkdir(parents=True, exist_ok=True)
    (project.path / "prompts" / folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("bad.yaml", "- {id: a, prompt: p, domain: x, answer: ''}\n", "field 'answer': must not be empty"),
        ("bad.yaml", "- {id: a, prompt: p, domain: x, tests: [assert f()], checks: {code: {timeout_s: .nan}}}\n",
         "field 'checks.code.timeout_s': got nan"),
        ("bad.yaml", "- {id: a, prompt: p, domain: x, checks: {content: {min_retention: -1}}}\n",
         "field 'checks.content.min_retention': got -1"),
        ("bad.yaml", "- {id: a, prompt: p, domain: x, max_new_tokens: 1000000000}\n",
         "field 'max_new_tokens': must be between 1 and 32768"),
        ("bad.yaml", '- {id: "model\\n", prompt: p, domain: x}\n', "got 'model\\n'"),
        ("bad.yaml", "- {id: a, prompt: p, prompt: q, domain: x}\n", "key 'prompt' given twice"),
        ("bad.yaml", "- {id: GREET, prompt: p, domain: x}\n", "(ignoring case) in"),
        ("bad.yaml", "suite: '..'\ncases:\n  - {id: model, prompt: p, domain: x}\n", "field 'suite'"),
    ],
)
def test_bad_case_files_are_one_collection_error(project, name, text, says):
    _case_file(project, name, text)
    before = _tree(project.path)
    result = _record(project)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    _assert_clear(result, str(project.path / "prompts" / "demo" / name), says)
    assert _tree(project.path) == before


@pytest.mark.parametrize("stem", ["...", ".."])
def test_file_names_that_would_name_a_dot_suite_are_refused(project, stem):
    """`prompts/...yaml` got suite '..' and wrote outside the fingerprint folder; `..yaml` overwrote model.json."""
    (project.path / "prompts" / f"{stem}.yaml").write_text("- {id: model, prompt: p, domain: x}\n", encoding="utf-8")
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(errors=1)
    _assert_clear(result, "field 'suite': the suite name", "rename it or set `suite:`")
    assert _tree(project.path) == before


def test_same_suite_and_id_recorded_from_two_folders_is_refused(project):
    shared = "suite: shared\ncases:\n  - {id: c, prompt: 'hello world', domain: x}\n"
    _case_file(project, "one.yaml", shared, folder="a")
    _case_file(project, "two.yaml", shared.replace("hello world", "translate: the cat"), folder="b")
    # one run sees both: a collection error
    result = _record(project)
    _assert_clear(result, "suite 'shared' already has a case 'c'")
    # separate runs: the second must not overwrite the first one's baseline
    result = _record(project, "prompts/a")
    result.assert_outcomes(passed=6)
    before = _tree(project.path)
    result = _record(project, "prompts/b")
    result.assert_outcomes(failed=1, skipped=5)
    _assert_clear(result, "defined by two case files", "shared/c in", "rename one of the cases")
    assert _tree(project.path) == before
    # benign look-alike: the case moved to another file (the old one no longer defines it)
    (project.path / "prompts" / "a" / "one.yaml").unlink()
    _record(project, "prompts/b").assert_outcomes(passed=6)


# -- the model: one setup error, never one per item, nothing recorded ----------------------------------------
def test_chat_cases_on_a_model_without_chat_template(project):
    chat = "defaults: {domain: chat, language: en, chat: true}\ncases:\n" + "".join(
        f"  - {{id: q{i}, prompt: 'question {i}'}}\n" for i in range(5)
    )
    _case_file(project, "instruct.yaml", chat)
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS + 30 - 1)
    text = _assert_clear(result, "5 case(s) ask for `chat: true` but the tokenizer", "has no chat template")
    assert "record it" not in text and "stale baseline" not in text  # not the advice mid-record
    assert _tree(project.path) == before


def _copy_model(source: Path, target: Path, *, keep=lambda _name: True) -> Path:
    target.mkdir()
    for f in source.iterdir():
        if keep(f.name):
            shutil.copy(f, target / f.name)
    return target


def test_nan_weights_are_refused_at_record(project, varied_moe_path, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = _copy_model(varied_moe_path, tmp_path / "nan-model")
    weights = load_file(broken / "model.safetensors")
    name = next(n for n in weights if n.endswith("embed_tokens.weight"))
    weights[name][3:] = float("nan")
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    project.makefile(".toml", pyproject=_pyproject(broken))
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, "gives non-finite log-probs (NaN or inf logits) for 2 of 2 prompts",
                  "before recording baselines from it")
    assert _tree(project.path) == before


def test_all_empty_responses_are_refused_at_record(project, varied_moe_path, tmp_path):
    """Zeroed final norm: every logit 0, argmax is the pad token, every response decodes to ''."""
    from safetensors.torch import load_file, save_file

    mute = _copy_model(varied_moe_path, tmp_path / "mute-model")
    weights = load_file(mute / "model.safetensors")
    weights["model.norm.weight"].zero_()
    save_file(weights, mute / "model.safetensors", metadata={"format": "pt"})
    project.makefile(".toml", pyproject=_pyproject(mute))
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, "every response of the base model", "empty baselines would let every later check pass")
    assert _tree(project.path) == before


def test_checkpoint_without_tokenizer_files_is_refused(project, varied_moe_path, tmp_path):
    bare = _copy_model(varied_moe_path, tmp_path / "no-tok", keep=lambda n: not n.startswith(("tokenizer", "special")))
    project.makefile(".toml", pyproject=_pyproject(bare))
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, "has 1 token(s): the checkpoint folder has no usable tokenizer files")
    assert _tree(project.path) == before


def test_prompt_longer_than_the_context_is_refused(project):
    _case_file(project, "long.yaml", f"- {{id: long, prompt: '{'word ' * 200}', domain: x, max_new_tokens: 400}}\n")
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS + 6 - 1)
    _assert_clear(result, "1 prompt(s) do not fit the 512-token context", "case 'long' (1000 tokens)")
    assert _tree(project.path) == before


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_safetensors_is_one_error_and_one_load(project, varied_moe_path, tmp_path, monkeypatch, damage):
    from evalsuite.gate import models

    broken = _copy_model(varied_moe_path, tmp_path / "corrupt")
    weights = broken / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00" * 64)
    project.makefile(".toml", pyproject=_pyproject(broken))
    models._LOADED.clear()
    calls = []
    real = models.load_cached
    monkeypatch.setattr(models, "load_cached", lambda *a, **k: calls.append(a) or real(*a, **k))
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, f"could not load the checkpoint in {broken}", "copy the checkpoint again")
    assert len(calls) == 1  # not reloaded per item
    assert len(result.outlines) < 80
    assert _tree(project.path) == before


def test_corrupt_compressed_checkpoint_fails_its_variant_once(project, varied_moe_path, tmp_path):
    _record(project).assert_outcomes(passed=ITEMS)
    broken = _copy_model(varied_moe_path, tmp_path / "final")
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    before = _tree(project.path)
    result = _gate(project, f"--evalsuite-compressed={broken}")
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, "evalsuite setup error (variant ckpt:final)", "could not load the checkpoint")
    assert _tree(project.path) == before


# -- the baselines folder and files ----------------------------------------------------------------------
def test_unwritable_baselines_folder_is_one_clear_error(project):
    (project.path / "baselines").write_text("a file where the folder should be")
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, "cannot write", "baselines")
    assert _tree(project.path) == before


@pytest.mark.parametrize(("code", "says"), [(errno.ENOSPC, "free disk space"), (errno.EROFS, "writable")])
def test_disk_full_or_read_only_is_one_clear_error(project, monkeypatch, code, says):
    real_fsync = os.fsync

    def failing(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(code, os.strerror(code))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing)
    before = _tree(project.path)
    result = _record(project)
    result.assert_outcomes(failed=1, skipped=ITEMS - 1)
    _assert_clear(result, os.strerror(code), says)
    assert _tree(project.path) == before  # no temp file left either


def test_recorded_files_are_group_readable_and_no_temp_files_remain(project):
    old = os.umask(0o022)
    try:
        _record(project).assert_outcomes(passed=ITEMS)
    finally:
        os.umask(old)
    files = list((project.path / "baselines").rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in files if f.is_file())


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: [d], "expected a JSON object, got list"),
        (lambda d: {**d, "response_ids": ["x"]}, "'response_ids' must be a list of token ids"),
        (lambda d: {**d, "logprobs": {**d["logprobs"], "top_ids": d["logprobs"]["top_ids"][:-1]}}, "top_ids"),
        (lambda d: {**d, "response_ids": [99999] * len(d["response_ids"])}, "token id 99999 is outside the"),
        (lambda d: {**d, "logprobs": {**d["logprobs"], "top_ids": [[10**6] * 8 for _ in d["response_ids"]]}},
         "token id 1000000 is outside the"),
    ],
)
def test_corrupt_baseline_fails_its_case_only(project, edit, says):
    _record(project).assert_outcomes(passed=ITEMS)
    path = next((project.path / "baselines").rglob("greet.json"))
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    result = _gate(project)
    result.assert_outcomes(failed=6, passed=ITEMS - 6)  # greet's 6 checks; cat's (divergence too) still pass
    _assert_clear(result, f"corrupt baseline {path}", says)


def test_whole_suite_without_baselines_is_one_error(project):
    _record(project).assert_outcomes(passed=ITEMS)
    _case_file(project, "more.yaml", "- {id: other, prompt: 'hello', domain: x}\n", folder="fresh")
    result = _gate(project)
    result.assert_outcomes(passed=ITEMS, failed=1, skipped=5)
    _assert_clear(result, "missing baselines for suite 'fresh'", "--evalsuite-update-baselines")


def test_record_after_a_settings_change_is_not_unchanged(project, varied_moe_path):
    _record(project).stdout.fnmatch_lines(["*2 new, 0 changed, 0 unchanged*"])
    _record(project).stdout.fnmatch_lines(["*0 new, 0 changed, 2 unchanged*"])  # the look-alike
    project.makefile(".toml", pyproject=_pyproject(varied_moe_path, "top_k_logprobs = 4\n"))
    _record(project).stdout.fnmatch_lines(["*0 new, 2 changed, 0 unchanged*"])


def test_html_report_pointing_at_a_folder_is_written_inside(project):
    (project.path / "reports").mkdir()
    _record(project).assert_outcomes(passed=ITEMS)
    result = _gate(project, "--evalsuite-html=reports")
    result.assert_outcomes(passed=ITEMS)
    report = project.path / "reports" / "evalsuite-report.html"
    _assert_clear(result, "evalsuite gate summary", f"HTML report: {report}")
    assert (project.path / "reports" / "evalsuite-report.html").read_text().startswith("<!DOCTYPE html>")
