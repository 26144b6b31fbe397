"""[tool.evalsuite]: the documented table matches the code's defaults; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalsuite.config import DEFAULT_TOLERANCES, GateSettings, load_pyproject_table
from evalsuite.errors import EvalsuiteError

ROOT = Path(__file__).resolve().parents[2]


def test_project_table_documents_the_defaults():
    table, path = load_pyproject_table(ROOT)
    assert path == ROOT / "pyproject.toml"
    settings = GateSettings.from_table(table, ROOT)
    assert settings.tolerances == DEFAULT_TOLERANCES
    assert set(table["tolerances"]) == set(DEFAULT_TOLERANCES) - {"answer"}  # answer has no settings
    assert settings.model is None and settings.max_new_tokens == 64


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"modle": "x"}, "unknown key 'modle'"),
        ({"max_new_tokens": "many"}, "max_new_tokens: must be int"),
        ({"tolerances": {"chrf": {"max_dorp": 1}}}, "unknown setting 'max_dorp' for check 'chrf'"),
        ({"tolerances": {"speed": {}}}, "unknown check 'speed'"),
        ({"tolerances": {"mc": {"alpha": "low"}}}, "alpha: must be float"),
    ],
)
def test_bad_table_names_the_key(table, says):
    with pytest.raises(EvalsuiteError, match=says):
        GateSettings.from_table(table, ROOT)


def test_generation_hash_ignores_batch_size():
    a = GateSettings(batch_size=1)
    b = GateSettings(batch_size=16)
    assert a.generation_hash() == b.generation_hash()
    assert a.generation_hash() != GateSettings(top_k_logprobs=4).generation_hash()


@pytest.mark.parametrize(
    ("table", "says"),
    [
        # each of these passed type checks and then crashed a run or silently changed a verdict
        ({"max_new_tokens": 0}, r"\.max_new_tokens: got 0; must be a finite number >= 1 and <= 32768"),
        ({"max_new_tokens": 1_000_000_000}, r"\.max_new_tokens: got 1000000000"),
        ({"threads": 0}, r"\.threads: got 0; .*at least one thread"),
        ({"threads": True}, r"\.threads: must be int, got bool"),
        ({"batch_size": -1}, r"\.batch_size: got -1"),
        ({"top_k_logprobs": 0}, r"\.top_k_logprobs: got 0; .*divergence check always passes"),
        ({"dtype": "float8"}, r"\.dtype: got 'float8'; choose one of auto, float32, bfloat16, float16"),
        ({"device": "gpu0"}, r"\.device: 'gpu0' is not a device; use \"cpu\""),
        ({"device": "meta"}, r"\.device: models cannot run on a 'meta' device"),
        ({"tolerances": {"collapse": {"max_degenerate_fraction": float("nan")}}},
         r"tolerances\.collapse\.max_degenerate_fraction: got nan"),
        ({"tolerances": {"length_ratio": {"min_ratio": float("nan")}}}, r"length_ratio\.min_ratio: got nan"),
        ({"tolerances": {"mc": {"alpha": float("nan")}}}, r"tolerances\.mc\.alpha: got nan"),
        ({"tolerances": {"mc": {"alpha": 1.0}}}, r"mc\.alpha: got 1\.0; must be a finite number > 0 and < 1"),
        ({"tolerances": {"content": {"min_retention": -1}}}, r"tolerances\.content\.min_retention: got -1"),
        ({"tolerances": {"code": {"timeout_s": 0}}}, r"code\.timeout_s: got 0; must be a finite number > 0"),
        ({"tolerances": {"code": {"memory_mb": 0}}}, r"tolerances\.code\.memory_mb: got 0"),
        ({"tolerances": {"perplexity": {"max_ratio": 0.9}}}, r"max_ratio: got 0\.9; .*unchanged model fails"),
        ({"tolerances": {"divergence": {"max_mean_kl": -0.1}}}, r"max_mean_kl: got -0\.1"),
        ({"tolerances": {"chrf": {"max_drop": 101}}}, r"chrf\.max_drop: got 101"),
        ({"tolerances": {"length_ratio": {"min_ratio": 1.0, "max_ratio": 1.0}}}, None),  # benign edge: allowed
    ],
)
def test_out_of_range_settings_name_file_field_and_value(table, says):
    source = "/p/pyproject.toml [tool.evalsuite]"
    if says is None:
        GateSettings.from_table(table, ROOT, source=source)
        return
    with pytest.raises(EvalsuiteError, match=says) as info:
        GateSettings.from_table(table, ROOT, source=source)
    assert str(info.value).startswith(source)


def test_device_without_the_accelerator_is_refused_before_loading(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(EvalsuiteError, match=r"\.device: 'cuda', but this machine has no cuda device .*use device = "):
        GateSettings.from_table({"device": "cuda"}, ROOT, source="t")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    GateSettings.from_table({"device": "cuda:0"}, ROOT, source="t")  # benign: the device exists
    with pytest.raises(EvalsuiteError, match=r"'cuda:3', but this machine has 1 cuda device\(s\)"):
        GateSettings.from_table({"device": "cuda:3"}, ROOT, source="t")


def test_every_bound_names_a_real_setting_and_defaults_are_in_range():
    from evalsuite.config import SETTING_BOUNDS, TOLERANCE_BOUNDS

    for check, bounds in TOLERANCE_BOUNDS.items():
        assert set(bounds) <= set(DEFAULT_TOLERANCES[check]), check
        for key, b in bounds.items():
            assert b.accepts(DEFAULT_TOLERANCES[check][key]), (check, key)
    defaults = GateSettings()
    for name, b in SETTING_BOUNDS.items():
        assert b.accepts(getattr(defaults, name)), name


def test_dtype_names_match_the_loader():
    from evalsuite.config import DTYPE_NAMES
    from evalsuite.model.loading import DTYPES

    assert set(DTYPE_NAMES) == set(DTYPES)
