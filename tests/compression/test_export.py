"""Streaming export from the files: the exported checkpoint computes what the masked model computes, in the
source's dtype, with every untouched file and tensor byte-identical; what cannot be carried is refused."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from evalsuite.compression import compress
from evalsuite.compression.export import COUNT_FIELDS, export_checkpoint, patch_config
from evalsuite.errors import InvalidRecipeError
from evalsuite.model.loading import load_model

RECIPES = ["reap:0.25", "merge-cka-freq:6", "merge-weights-uniform:4,router=keep", "reap:0.25,apply=soft,factor=0.2",
           "reap:0.25,apply=zero"]  # fmt: skip


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@torch.no_grad()
def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids).logits.float()


def _dtypes(folder: Path) -> set[str]:
    found = set()
    for shard in folder.glob("*.safetensors"):
        with safe_open(shard, "pt") as handle:
            found |= {str(handle.get_slice(k).get_dtype()) for k in handle.keys()}  # noqa: SIM118 - safe_open is not iterable
    return found


@pytest.fixture(scope="module")
def bf16_sharded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bf16 tiny Qwen3-MoE in several shards with an index, a chat template and an extra processor file."""
    from transformers import AutoModelForCausalLM

    from evalsuite.model.tiny import build_tiny_moe

    folder = tmp_path_factory.mktemp("bf16") / "src"
    build_tiny_moe(folder, hidden_size=32, layers=2)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    (folder / "model.safetensors").unlink()
    model.save_pretrained(folder, max_shard_size="40KB")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    (folder / "tokenizer_config.json").write_text(json.dumps(config))  # not what save_pretrained would write
    (folder / "preprocessor_config.json").write_text('{"image_size": 7}\n')
    assert len(list(folder.glob("*.safetensors"))) >= 3
    return folder


@pytest.mark.parametrize("recipe", RECIPES)
def test_exported_checkpoint_equals_the_masked_model(tiny_moe_path: Path, tmp_path: Path, recipe: str) -> None:
    loaded = load_model(tiny_moe_path)
    ids = loaded.tokenizer(["hello world, the fox. привет 我"], return_tensors="pt")["input_ids"]
    original = _logits(loaded.model, ids)
    with compress(loaded.model, loaded.tokenizer, recipe) as result:
        expected = _logits(loaded.model, ids)
        out = export_checkpoint(tiny_moe_path, result.record, tmp_path / "out")
    assert not torch.equal(expected, original)  # the recipe changed the model, so equality below means something
    exported = load_model(out)
    kept = len(result.record["layers"][0]["kept"]) if "apply" not in recipe else 8
    assert exported.model.config.num_experts == kept
    torch.testing.assert_close(_logits(exported.model, ids), expected, atol=1e-5, rtol=1e-5)


def test_bf16_shards_keep_their_dtype_and_every_other_byte(bf16_sharded: Path, tmp_path: Path) -> None:
    loaded = load_model(bf16_sharded, dtype="bfloat16")
    ids = loaded.tokenizer(["the quick brown fox"], return_tensors="pt")["input_ids"]
    with compress(loaded.model, loaded.tokenizer, "merge-cka-uniform:6") as result:
        expected = _logits(loaded.model, ids)
        out = export_checkpoint(bf16_sharded, result.record, tmp_path / "out")
    assert _dtypes(out) == {"BF16"} == _dtypes(bf16_sharded)
    before, after = _digests(bf16_sharded), _digests(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "preprocessor_config.json"):
        assert after[name] == before[name], name
    in_size = sum(p.stat().st_size for p in bf16_sharded.glob("*.safetensors"))
    out_size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    names = sorted(p.name for p in bf16_sharded.glob("*.safetensors"))
    assert sorted(p.name for p in out.glob("*.safetensors")) == names
    assert out_size < in_size
    src_config = json.loads((bf16_sharded / "config.json").read_text())
    out_config = json.loads((out / "config.json").read_text())
    changed = {k: (src_config[k], out_config.get(k)) for k in src_config if src_config[k] != out_config.get(k)}
    assert list(changed.values()) == [(8, 6)] and set(changed) <= set(COUNT_FIELDS)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    for name, shard in index["weight_map"].items():  # every listed tensor is where the index says
        assert name in load_file(out / shard)
    non_expert = [k for k in index["weight_map"] if ".experts." not in k and ".mlp.gate." not in k]
    src_index = json.loads((bf16_sharded / "model.safetensors.index.json").read_text())["weight_map"]
    for name in non_expert:  # untouched tensors carry their exact bytes
        a = load_file(bf16_sharded / src_index[name])[name]
        b = load_file(out / index["weight_map"][name])[name]
        assert torch.equal(a.view(torch.int16), b.view(torch.int16)), name
    exported = load_model(out, dtype="bfloat16")
    torch.testing.assert_close(_logits(exported.model, ids), expected, atol=2e-2, rtol=2e-2)


def test_multimodal_checkpoint_keeps_its_vision_tower(tmp_path: Path) -> None:
    import transformers
    from transformers import AutoModelForCausalLM

    text = dict(vocab_size=64, hidden_size=32, moe_intermediate_size=16, shared_expert_intermediate_size=16,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8, num_experts=8,
                num_experts_per_tok=2, linear_num_value_heads=2, linear_num_key_heads=2, linear_key_head_dim=8,
                linear_value_head_dim=8, layer_types=["linear_attention", "full_attention"])  # fmt: skip
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32)
    config = transformers.Qwen3_5MoeConfig(text_config=text, vision_config=vision)
    torch.manual_seed(0)
    src = tmp_path / "vl"
    transformers.Qwen3_5MoeForConditionalGeneration(config).save_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src).eval()  # the text model the gate evaluates
    ids = torch.randint(0, 64, (1, 12), generator=torch.Generator().manual_seed(0))
    with compress(model, None, "random:0.25") as result:
        expected = _logits(model, ids)
        out = export_checkpoint(src, result.record, tmp_path / "out")
    before, after = load_file(src / "model.safetensors"), load_file(out / "model.safetensors")
    vision_names = [k for k in before if ".visual." in k]
    assert vision_names and all(torch.equal(before[k], after[k]) for k in vision_names)
    reloaded = transformers.Qwen3_5MoeForConditionalGeneration.from_pretrained(out)  # still the multimodal model
    assert reloaded.config.text_config.num_experts == 6
    text_model = AutoModelForCausalLM.from_pretrained(out).eval()
    torch.testing.assert_close(_logits(text_model, ids), expected, atol=1e-5, rtol=1e-5)


def test_group_limited_bias_router_and_dense_first_layer(deepseek_v3: torch.nn.Module, tmp_path: Path) -> None:
    """DeepSeek-V3: selection bias rows follow the experts, the dense first layer passes through."""
    from transformers import AutoModelForCausalLM

    model = deepseek_v3
    model.save_pretrained(tmp_path / "src")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "src").eval()
    ids = torch.randint(0, 64, (1, 20), generator=torch.Generator().manual_seed(0))
    for recipe in ("random:0.5", "merge-weights-uniform:4"):
        with compress(model, None, recipe) as result:
            expected = _logits(model, ids)
            out = export_checkpoint(tmp_path / "src", result.record, tmp_path / recipe.replace(":", "_"))
        exported = AutoModelForCausalLM.from_pretrained(out).eval()
        assert exported.config.n_routed_experts == 4
        torch.testing.assert_close(_logits(exported, ids), expected, atol=1e-5, rtol=1e-5)


def test_what_cannot_be_carried_is_refused_by_name(tiny_moe_path: Path, tmp_path: Path) -> None:
    loaded = load_model(tiny_moe_path)
    with compress(loaded.model, loaded.tokenizer, "random:0.25") as result:
        record = result.record
    src = tmp_path / "src"
    shutil.copytree(tiny_moe_path, src)
    (src / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(InvalidRecipeError, match=r"pytorch_model\.bin.*Convert it to safetensors"):
        export_checkpoint(src, record, tmp_path / "out")
    (src / "pytorch_model.bin").unlink()
    partial = {**record, "layers": record["layers"][:1]}  # e.g. an expert layer transformers does not load
    with pytest.raises(InvalidRecipeError, match=r"expert layers \[1\] \(model\.layers\.1\.mlp\.experts\.\*\)"):
        export_checkpoint(src, partial, tmp_path / "out")
    with pytest.raises(InvalidRecipeError, match="is the source checkpoint"):
        export_checkpoint(src, record, src)
    with pytest.raises(InvalidRecipeError, match="contains the source checkpoint"):
        export_checkpoint(src, record, tmp_path)  # replacing the parent folder would delete the source
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "todo.txt").write_text("mine")
    with pytest.raises(InvalidRecipeError, match="not an evalsuite export"):
        export_checkpoint(src, record, keep)
    assert (keep / "todo.txt").read_text() == "mine" and (src / "config.json").is_file()
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert export_checkpoint(src, record, tmp_path / "out").is_dir()  # the benign look-alike exports
    assert export_checkpoint(src, record, tmp_path / "out").is_dir()  # an earlier export is replaced


def test_config_edit_changes_only_the_counts() -> None:
    text = '{\n  "num_experts": 8,\n  "num_experts_per_tok": 2,\n  "text_config": {"num_experts": 8, "x": 8}\n}\n'
    patched = patch_config(text, 8, 6)
    assert patched == text.replace('"num_experts": 8', '"num_experts": 6')
    with pytest.raises(InvalidRecipeError, match="states no expert count of 5"):
        patch_config(text, 5, 4)


@pytest.mark.parametrize("recipe", ["reap:0.25", "random:0.25"])
def test_cli_compress_keeps_dtype_and_tokenizer_bytes(
    bf16_sharded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipe: str
) -> None:
    from evalsuite.cli import main
    from evalsuite.model import loading

    if recipe.startswith("random"):  # data-free: planned from the files, the model is never loaded
        monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("loaded the model"))
    out = tmp_path / "out"
    assert main(["compress", "--model", str(bf16_sharded), "--recipe", recipe, "--out", str(out)]) == 0
    before, after = _digests(bf16_sharded), _digests(out)
    assert {k: before[k] for k in before if k.startswith("tokenizer")} == {k: after[k] for k in after
                                                                          if k.startswith("tokenizer")}  # fmt: skip
    assert _dtypes(out) == {"BF16"}
    assert json.loads((out / "evalsuite_compression.json").read_text())["recipe"] == recipe
    assert load_model(out, dtype="bfloat16").model.config.num_experts == 6


def test_save_exports_from_the_files_the_model_came_from(tiny_moe_path: Path, tmp_path: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM

    loaded = load_model(tiny_moe_path)
    with compress(loaded.model, loaded.tokenizer, "random:0.25") as result:
        folder = result.save(tmp_path / "out")
    assert _digests(folder)["tokenizer.json"] == _digests(tiny_moe_path)["tokenizer.json"]
    config = AutoConfig.from_pretrained(tiny_moe_path)
    config._name_or_path = ""  # built in memory, never saved
    in_memory = AutoModelForCausalLM.from_config(config)
    with (
        compress(in_memory, None, "random:0.25") as result,
        pytest.raises(InvalidRecipeError, match="not loaded from a local folder.*source=FOLDER"),
    ):
        result.save(tmp_path / "nowhere")
