"""Export a compression record straight from a checkpoint's safetensors files, one tensor at a time.

Why from files and not from a loaded model: the machine that compresses a model is rarely twice its
size. Exporting a loaded model needed a deep copy (2x the model), wrote whatever dtype it was loaded in
(bf16 became fp32), re-serialised the tokenizer and dropped every weight the text model did not load
(a vision tower). Here the record's keep-sets and merge groups are applied to the files themselves:

- expert tensors (per-expert ``<block>.experts.<j>.<name>`` as transformers writes them, fused
  ``<block>.experts.<name>`` with the expert axis first, or 3-D tensors with a leading expert axis next to
  a ``<block>.gate|router`` weight, as GraniteMoE stores them), router rows and selection biases
  (``<block>.gate.*`` / ``<block>.router.*`` / block-level tensors with an expert axis) are sliced,
  merged (weighted average in float64, cast back) or scaled, in the file's own dtype;
- every other tensor is copied byte for byte, and so is every other file (tokenizer, chat template,
  generation config, processor files of other modalities); ``config.json`` changes only its expert counts;
- output shards keep the input shards' names, and the index is rewritten to match.

Peak memory is the plan plus about two copies of the largest *expert* tensor being rewritten (untouched
tensors are copied in 64 MiB chunks), independent of the model's and the shards' size. What cannot be
carried is refused, naming the file or tensor: pickled weights, safetensors files the index does not list,
expert layers the record has no plan for (e.g. a multi-token-prediction layer transformers does not load),
arithmetic on quantized dtypes.

Why not ``safetensors.torch.save_file``: it serialises a whole dict of tensors at once (a shard in memory)
and its reader maps files, whose touched pages count as resident memory. The format is an 8-byte header
length, a JSON header and raw little-endian data, so tensors are read with ``pread`` and written in order;
the tests read every export back with the safetensors library and transformers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from evalsuite.compression.recipe import parse_recipe
from evalsuite.errors import InvalidRecipeError
from evalsuite.io import atomic_folder, atomic_write_text
from evalsuite.model.moe import COUNT_ATTRS, TOPK_ATTRS
from evalsuite.progress import progress

__all__ = [
    "COUNT_FIELDS",
    "FileBlock",
    "checkpoint_layout",
    "checkpoint_tensors",
    "config_top_k",
    "describe_layout",
    "export_checkpoint",
    "file_layout",
    "patch_config",
    "text_config",
]

INDEX_NAME = "model.safetensors.index.json"
RECORD_NAME = "evalsuite_compression.json"
COUNT_FIELDS = COUNT_ATTRS
_TEXT_CONFIGS = ("text_config", "language_config", "llm_config")
_PICKLED = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".gguf", ".h5", ".msgpack"}
_TORCH_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_PER_EXPERT = re.compile(r"^(?P<block>.+?)\.experts\.(?P<j>\d+)\.(?P<rest>.+)$")
_FUSED = re.compile(r"^(?P<block>.+?)\.experts\.(?P<rest>[^.]+)$")
_ROUTER_WEIGHT = re.compile(r"^(?P<block>.+?)\.(?:gate|router)(?:\.layer)?\.weight$")
_SELECTION_BIAS = re.compile(r"(correction_bias|expert_bias|selection_bias)$")
_CHUNK = 64 << 20


# ----------------------------------------------------------------------------------------------------
# reading safetensors headers and tensors
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    """One tensor in a source file: where its bytes are."""

    file: Path
    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.start


def _read_header(path: Path) -> tuple[dict[str, _Entry], dict[str, str] | None]:
    with open(path, "rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise InvalidRecipeError(f"{path} is not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(handle.read(length))
        except ValueError as exc:
            raise InvalidRecipeError(f"{path}: unreadable safetensors header ({exc})") from None
    base = 8 + length
    metadata = header.pop("__metadata__", None)
    entries = {
        name: _Entry(path, name, spec["dtype"], tuple(spec["shape"]), base + spec["data_offsets"][0],
                     base + spec["data_offsets"][1])
        for name, spec in header.items()
    }  # fmt: skip
    return entries, metadata


def _read(entry: _Entry) -> bytes:
    fd = os.open(entry.file, os.O_RDONLY)
    try:
        data = os.pread(fd, entry.nbytes, entry.start)
    finally:
        os.close(fd)
    if len(data) != entry.nbytes:
        raise InvalidRecipeError(f"{entry.file}: tensor {entry.name} is truncated; the file is incomplete")
    return data


def _chunks(entry: _Entry) -> Iterator[bytes]:
    fd = os.open(entry.file, os.O_RDONLY)
    try:
        for offset in range(entry.start, entry.end, _CHUNK):
            yield os.pread(fd, min(_CHUNK, entry.end - offset), offset)
    finally:
        os.close(fd)


def _as_tensor(entry: _Entry, data: bytes, why: str) -> torch.Tensor:
    dtype = _TORCH_DTYPES.get(entry.dtype)
    if dtype is None:
        raise InvalidRecipeError(
            f"{entry.file.name}: tensor {entry.name} is {entry.dtype}; {why} needs arithmetic on it, which evalsuite "
            f"does only for {'/'.join(_TORCH_DTYPES)} (dequantize the checkpoint, or prune instead of merging)"
        )
    return torch.frombuffer(bytearray(data), dtype=dtype).reshape(entry.shape)


# ----------------------------------------------------------------------------------------------------
# which tensors belong to which MoE block
# ----------------------------------------------------------------------------------------------------
@dataclass
class FileBlock:
    """The tensors of one MoE block as named in the files."""

    prefix: str
    layer: int
    experts: int = 0
    per_expert: dict[str, dict[int, _Entry]] = field(default_factory=dict)  # rest -> expert -> entry
    fused: list[_Entry] = field(default_factory=list)
    routed: list[tuple[_Entry, int]] = field(default_factory=list)  # router rows / selection bias, expert axis
    router_weight: _Entry | None = None


def _layer_of(prefix: str) -> int | None:
    match = re.search(r"(?:^|\.)(\d+)(?:\.|$)", prefix)
    return int(match.group(1)) if match else None


def file_layout(entries: Mapping[str, _Entry]) -> dict[int, FileBlock]:
    """Decoder layer -> its MoE block's tensors, found by name and expert axis (no per-architecture table)."""
    blocks: dict[str, FileBlock] = {}

    def block(prefix: str) -> FileBlock:
        if prefix not in blocks:
            layer = _layer_of(prefix)
            if layer is None:
                raise InvalidRecipeError(f"expert tensors under {prefix!r} name no decoder layer index; cannot export")
            blocks[prefix] = FileBlock(prefix, layer)
        return blocks[prefix]

    for name, entry in entries.items():
        if m := _PER_EXPERT.match(name):
            fb = block(m["block"])
            fb.per_expert.setdefault(m["rest"], {})[int(m["j"])] = entry
        elif m := _FUSED.match(name):
            block(m["block"]).fused.append(entry)
    for name, entry in entries.items():  # fused experts not under `experts` (GraniteMoE's input_linear)
        m = _ROUTER_WEIGHT.match(name)
        if m is None or m["block"] in blocks or len(entry.shape) != 2:
            continue
        head = f"{m['block']}."
        fused = [e for n, e in entries.items() if n.startswith(head) and len(e.shape) == 3
                 and e.shape[0] == entry.shape[0] and n.split(".")[len(head.split(".")) - 1] not in ("gate", "router")]
        if fused:
            block(m["block"]).fused.extend(fused)
    for fb in blocks.values():
        counts = {len(v) for v in fb.per_expert.values()} | {e.shape[0] for e in fb.fused if e.shape}
        if len(counts) != 1:
            raise InvalidRecipeError(f"{fb.prefix}: expert tensors disagree on the expert count ({sorted(counts)})")
        fb.experts = counts.pop()
        for rest, by_expert in fb.per_expert.items():
            if sorted(by_expert) != list(range(fb.experts)):
                raise InvalidRecipeError(f"{fb.prefix}.experts.*.{rest}: expert indices are not 0..{fb.experts - 1}")
    for name, entry in entries.items():
        for fb in blocks.values():
            head = f"{fb.prefix}."
            if not name.startswith(head) or name.startswith(f"{head}experts."):
                continue
            rest = name[len(head) :]
            if not (rest.split(".")[0] in ("gate", "router") or "." not in rest or _SELECTION_BIAS.search(rest)):
                continue  # shared experts and other children pass through
            axes = [i for i, s in enumerate(entry.shape) if s == fb.experts]
            if axes:
                fb.routed.append((entry, axes[0]))
                router_child = rest.split(".")[0] in ("gate", "router")
                if router_child and len(entry.shape) == 2 and axes[0] == 0 and (
                    fb.router_weight is None or rest.endswith(".weight")
                ):
                    fb.router_weight = entry
    by_layer: dict[int, FileBlock] = {}
    for fb in blocks.values():
        if fb.layer in by_layer:
            raise InvalidRecipeError(
                f"two expert blocks in decoder layer {fb.layer} ({by_layer[fb.layer].prefix}, {fb.prefix}); "
                "cannot tell which one the compression record describes"
            )
        by_layer[fb.layer] = fb
    # a selection bias stored outside the block (Kolibri: `layers.N.moe.router.expert_bias`) follows its layer
    seen = {e.name for fb in blocks.values() for e, _ in fb.routed}
    for name, entry in entries.items():
        fb = by_layer.get(_layer_of(name) if _SELECTION_BIAS.search(name) and name not in seen else -1)
        axes = [i for i, size in enumerate(entry.shape) if fb is not None and size == fb.experts]
        if fb is not None and axes and not name.startswith(f"{fb.prefix}.experts."):
            fb.routed.append((entry, axes[0]))
    return by_layer


# ----------------------------------------------------------------------------------------------------
# the plan per layer
# ----------------------------------------------------------------------------------------------------
@dataclass
class _LayerPlan:
    experts: int  # before compression
    keep: list[int]
    merge: dict[int, list[tuple[int, float]]]  # survivor -> (member, normalised weight), groups of >= 2
    merge_router: bool
    scale: dict[int, float]  # router weight rows to multiply (apply=soft)
    zero: set[int]  # experts whose tensors become zero (apply=zero)


def _plans(record: Mapping[str, Any]) -> dict[int, _LayerPlan]:
    recipe = parse_recipe(str(record["recipe"]))
    mode, factor = recipe.option("apply"), float(recipe.option("factor"))
    merge_router = recipe.kind == "merge" and recipe.option("router") == "merge"
    plans: dict[int, _LayerPlan] = {}
    for row in record["layers"]:
        n, removed = int(row["experts"]), set(row["removed"])
        merge: dict[int, list[tuple[int, float]]] = {}
        for group, weights in zip(row.get("groups") or [], row.get("weights") or [], strict=True):
            if len(group) > 1:
                total = sum(weights)
                merge[group[0]] = [(e, w / total) for e, w in zip(group, weights, strict=True)]
        soft = mode in ("soft", "zero")
        plans[int(row["layer"])] = _LayerPlan(
            experts=n,
            keep=list(range(n)) if soft else [e for e in range(n) if e not in removed],
            merge=merge,
            merge_router=merge_router,
            scale={e: factor for e in removed} if mode == "soft" else {},
            zero=removed if mode == "zero" else set(),
        )
    if len({p.experts for p in plans.values()}) > 1:
        raise InvalidRecipeError(
            f"{record.get('recipe')}: the source's MoE layers have different expert counts; evalsuite exports "
            "checkpoints whose config states one expert count"
        )
    kept = {len(p.keep) for p in plans.values()}
    if len(kept) > 1:
        raise InvalidRecipeError(
            f"{record.get('recipe')} keeps {sorted(kept)} experts in different layers; a checkpoint config holds one "
            "expert count, so this global (non-uniform) variant can be evaluated masked but not exported"
        )
    return plans


# ----------------------------------------------------------------------------------------------------
# producing output tensors
# ----------------------------------------------------------------------------------------------------
@dataclass
class _Out:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    produce: Callable[[], Iterator[bytes]]


def _passthrough(entry: _Entry, name: str | None = None) -> _Out:
    return _Out(name or entry.name, entry.dtype, entry.shape, entry.nbytes, lambda: _chunks(entry))


def _merged(members: list[tuple[_Entry, float]], like: _Entry) -> torch.Tensor:
    """Weighted average of one tensor over a merge group, in float64, cast back to the file's dtype."""
    acc = None
    for entry, weight in members:
        part = _as_tensor(entry, _read(entry), "merging").to(torch.float64) * weight
        acc = part if acc is None else acc + part
    return acc.to(_TORCH_DTYPES[like.dtype])


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    return tensor.contiguous().view(torch.uint8).numpy().tobytes()


def _per_expert_outputs(fb: FileBlock, plan: _LayerPlan) -> dict[str, _Out | None]:
    """Source tensor name -> its output (renamed, merged, zeroed) or None (dropped)."""
    out: dict[str, _Out | None] = {}
    position = {e: i for i, e in enumerate(plan.keep)}
    for rest, by_expert in fb.per_expert.items():
        for j, entry in by_expert.items():
            if j not in position:
                out[entry.name] = None
                continue
            name = f"{fb.prefix}.experts.{position[j]}.{rest}"
            if j in plan.merge:
                members = [(by_expert[e], w) for e, w in plan.merge[j]]
                _as_tensor(entry, bytes(entry.nbytes), "merging")  # refuse quantized dtypes before writing anything
                out[entry.name] = _Out(name, entry.dtype, entry.shape, entry.nbytes,
                                       lambda m=members, e=entry: iter([_tensor_bytes(_merged(m, e))]))  # fmt: skip
            elif j in plan.zero:
                _as_tensor(entry, bytes(entry.nbytes), "zeroing")  # all-zero bytes are 0.0 only for float dtypes
                out[entry.name] = _Out(name, entry.dtype, entry.shape, entry.nbytes,
                                       lambda n=entry.nbytes: iter([bytes(n)]))  # fmt: skip
            else:
                out[entry.name] = _passthrough(entry, name)
    return out


def _rows_output(entry: _Entry, axis: int, plan: _LayerPlan, *, is_expert: bool, is_router_weight: bool) -> _Out:
    """A tensor with an expert axis, rows kept / merged / scaled / zeroed along it."""
    arithmetic = bool(plan.merge and (is_expert or plan.merge_router)) or (is_expert and plan.zero) or (
        is_router_weight and plan.scale
    )
    shape = list(entry.shape)
    shape[axis] = len(plan.keep)
    nbytes = entry.nbytes // entry.shape[axis] * len(plan.keep)

    def produce() -> Iterator[bytes]:
        data = _read(entry)
        if not arithmetic and axis == 0:  # pure row slicing works on the bytes of any dtype (fp8, mxfp4 blocks)
            row = entry.nbytes // entry.shape[0]
            yield b"".join(data[e * row : (e + 1) * row] for e in plan.keep)
            return
        t = _as_tensor(entry, data, "merging, scaling or zeroing" if arithmetic else "slicing along axis > 0")
        rows = []
        for e in plan.keep:
            if e in plan.merge and (is_expert or plan.merge_router):
                members = [(t.select(axis, m).to(torch.float64), w) for m, w in plan.merge[e]]
                row = sum(w * r for r, w in members).to(t.dtype)
            else:
                row = t.select(axis, e)
            if is_expert and e in plan.zero:
                row = torch.zeros_like(row)
            if is_router_weight and e in plan.scale:
                row = row * plan.scale[e]
            rows.append(row)
        yield _tensor_bytes(torch.stack(rows, dim=axis))

    return _Out(entry.name, entry.dtype, tuple(shape), nbytes, produce)


def _outputs(layout: dict[int, FileBlock], plans: dict[int, _LayerPlan]) -> dict[str, _Out | None]:
    """Source tensor name -> output for every tensor the plan touches (the rest pass through)."""
    missing = sorted(set(plans) - set(layout))
    if missing:
        raise InvalidRecipeError(
            f"the compression record has layers {missing} but the files hold no expert tensors for them; "
            "export from the checkpoint the record was made on"
        )
    extra = sorted(set(layout) - set(plans))
    if extra:
        prefixes = ", ".join(f"{layout[i].prefix}.experts.*" for i in extra)
        raise InvalidRecipeError(
            f"the files hold expert layers {extra} ({prefixes}) that the compression record has no plan for (e.g. a "
            "multi-token-prediction layer transformers does not load); pruning the other layers would leave them "
            "with the old expert count in a config that states the new one, so the export cannot carry them"
        )
    out: dict[str, _Out | None] = {}
    for layer, fb in layout.items():
        plan = plans[layer]
        if fb.experts != plan.experts:
            raise InvalidRecipeError(
                f"{fb.prefix}: the files hold {fb.experts} experts but the compression record was made for "
                f"{plan.experts}; export from the checkpoint the record was made on"
            )
        out.update(_per_expert_outputs(fb, plan))
        for entry in fb.fused:
            out[entry.name] = _rows_output(entry, 0, plan, is_expert=True, is_router_weight=False)
        for entry, axis in fb.routed:
            is_bias = bool(_SELECTION_BIAS.search(entry.name))
            out[entry.name] = _rows_output(entry, axis, plan, is_expert=False,
                                           is_router_weight=entry is fb.router_weight and not is_bias)  # fmt: skip
    return out



# ----------------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------------
def _write_shard(path: Path, outs: list[_Out], metadata: dict[str, str] | None) -> int:
    """Write one safetensors file tensor by tensor (header first: every size is known from the plan)."""
    header: dict[str, Any] = {}
    offset = 0
    for o in outs:
        header[o.name] = {"dtype": o.dtype, "shape": list(o.shape), "data_offsets": [offset, offset + o.nbytes]}
        offset += o.nbytes
    if metadata is not None:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # tensor data starts 8-byte aligned, as the safetensors library writes it
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)))
        handle.write(raw)
        for o in outs:
            written = 0
            for chunk in o.produce():
                handle.write(chunk)
                written += len(chunk)
            if written != o.nbytes:  # an internal inconsistency must never produce a silently corrupt file
                raise InvalidRecipeError(f"export of {o.name}: wrote {written} bytes, the header says {o.nbytes}")
    return offset


def patch_config(text: str, old: int, new: int) -> str:
    """config.json with its expert counts (top level and text config) changed from ``old`` to ``new``.

    Only the count values change in the text, so the rest of the file stays byte-identical; if the edit
    cannot be made textually (an unusual layout), the config is re-serialised."""
    if old == new:
        return text
    config = json.loads(text)
    scopes = [config] + ([text_config(config)] if text_config(config) is not config else [])
    fields = [(scope, f) for scope in scopes for f in COUNT_FIELDS if type(scope.get(f)) is int and scope[f] == old]
    if not fields:
        raise InvalidRecipeError(
            f"config.json states no expert count of {old} (looked for {', '.join(COUNT_FIELDS)} at the top level "
            f"and in {', '.join(_TEXT_CONFIGS)}); cannot write the new count"
        )
    for scope, name in fields:
        scope[name] = new
    patched = text
    for name in {name for _, name in fields}:
        patched = re.sub(rf'("{name}"\s*:\s*){old}(?=\s*[,}}\n])', rf"\g<1>{new}", patched)
    return patched if json.loads(patched) == config else json.dumps(config, indent=2, sort_keys=True) + "\n"


def _shards(source: Path) -> tuple[list[Path], dict[str, Any] | None]:
    """The safetensors files to rewrite, and the index that lists them (None for a single file)."""
    present = sorted(source.glob("*.safetensors"))
    index_path = source / INDEX_NAME
    if not index_path.is_file():
        if not present:
            raise InvalidRecipeError(f"{source} holds no *.safetensors weights; evalsuite exports safetensors only")
        return present, None
    index = json.loads(index_path.read_text(encoding="utf-8"))
    listed = sorted({source / name for name in index.get("weight_map", {}).values()})
    missing = [p.name for p in listed if not p.is_file()]
    if missing:
        raise InvalidRecipeError(f"{index_path} lists {', '.join(missing)}, which are not in {source}")
    unlisted = [p.name for p in present if p not in listed]
    if unlisted:
        raise InvalidRecipeError(
            f"{source} holds {', '.join(unlisted)}, which {INDEX_NAME} does not list; they may hold expert tensors "
            "in another naming (e.g. a consolidated native-format copy), so the export cannot carry them: move them "
            "out of the folder and export again"
        )
    return listed, index


def _carry(source: Path, target: Path, handled: set[str]) -> None:
    """Copy every other file byte for byte (tokenizer, chat template, generation config, processors)."""
    for path in sorted(source.iterdir()):
        if path.name in handled or path.name.startswith("."):
            continue
        if path.suffix in _PICKLED:
            raise InvalidRecipeError(
                f"{path} holds weights in a format evalsuite does not rewrite ({path.suffix}); it may hold expert "
                "tensors, so copying it unchanged would ship a mismatched checkpoint. Convert it to safetensors "
                "(or remove it if it duplicates the safetensors weights) and export again"
            )
        if path.is_dir():
            shutil.copytree(path, target / path.name)
        else:
            shutil.copy2(path, target / path.name)


def _all_entries(headers: Mapping[Path, tuple[dict[str, _Entry], Any]]) -> dict[str, _Entry]:
    entries: dict[str, _Entry] = {}
    for path, (found, _) in headers.items():
        clash = sorted(set(found) & set(entries))
        if clash:
            raise InvalidRecipeError(f"tensor {clash[0]} is stored twice ({entries[clash[0]].file.name}, {path.name})")
        entries.update(found)
    return entries


def checkpoint_tensors(folder: str | Path) -> dict[str, _Entry]:
    """Every tensor of a checkpoint folder (name, dtype, shape, where), from the safetensors headers only."""
    shard_paths, _ = _shards(Path(folder))
    return _all_entries({path: _read_header(path) for path in shard_paths})


def checkpoint_layout(folder: str | Path) -> dict[int, FileBlock]:
    """Decoder layer -> MoE block tensors of a checkpoint folder, from the safetensors headers only."""
    return file_layout(checkpoint_tensors(folder))


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The part of a config.json that describes the language model (multimodal configs nest it)."""
    return next((config[k] for k in _TEXT_CONFIGS if isinstance(config.get(k), dict)), config)


def config_top_k(config: Mapping[str, Any]) -> int:
    text = text_config(config)
    return next((int(text[k]) for k in TOPK_ATTRS if isinstance(text.get(k), int)), 0)


def describe_layout(tensors: Mapping[str, _Entry], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """MoE layers grouped by identical description (one line per group, not ~30 per layer)."""
    text = text_config(config)
    groups: dict[str, list[int]] = {}
    for layer, fb in sorted(file_layout(tensors).items()):
        parts = [f"{fb.experts} experts", f"top-{config_top_k(config)}"]
        if int(text.get("n_group") or 1) > 1:
            parts.append(f"{text['n_group']} expert groups (top-{text.get('topk_group', 1)})")
        if any(_SELECTION_BIAS.search(entry.name) for entry, _ in fb.routed):
            parts.append("selection bias")
        parts.append("fused expert tensors" if fb.fused else "per-expert tensors")
        groups.setdefault(", ".join(parts), []).append(layer)
    return [{"layers": layers, "summary": summary} for summary, layers in groups.items()]


def _check_target(source: Path, target: Path) -> None:
    """Refuse an output folder whose replacement would delete what the user keeps.

    Why: the export replaces ``out`` as a whole (atomic folder swap), so ``--out`` naming the source, a
    folder that contains the source, or any other existing folder that is not an earlier export would
    delete it (``--out ./models`` next to ``--model ./models/qwen``, or a typo like ``--out ~``)."""
    src, dst = source.resolve(), target.resolve()
    if dst == src:
        raise InvalidRecipeError(f"--out {target} is the source checkpoint; write the compressed model elsewhere")
    if dst in src.parents:
        raise InvalidRecipeError(
            f"--out {target} contains the source checkpoint {source}; replacing it would delete the source. "
            "Write the compressed model to a new folder"
        )
    if dst.is_dir() and any(dst.iterdir()) and not (dst / RECORD_NAME).is_file():
        raise InvalidRecipeError(
            f"--out {target} is an existing folder that is not an evalsuite export (no {RECORD_NAME}); "
            "the export replaces its folder as a whole, so choose a new folder or empty this one yourself"
        )


def export_checkpoint(source: str | Path, record: Mapping[str, Any], out: str | Path) -> Path:
    """Apply a compression record to the checkpoint folder ``source`` and write the result to ``out``.

    Streams tensor by tensor (see the module docstring); the output keeps the source's shard names,
    dtypes and every file the plan does not touch byte for byte, plus ``evalsuite_compression.json``."""
    source, target = Path(source), Path(out)
    _check_target(source, target)
    shard_paths, index = _shards(source)
    headers = {path: _read_header(path) for path in shard_paths}
    entries = _all_entries(headers)
    plans = _plans(record)
    outputs = _outputs(file_layout(entries), plans)
    (old_count,) = {p.experts for p in plans.values()} or {0}
    (new_count,) = {len(p.keep) for p in plans.values()} or {0}  # one value: _plans refuses non-uniform counts
    with atomic_folder(target) as tmp:
        weight_map: dict[str, str] = {}
        total = 0
        for path, (found, metadata) in progress(list(headers.items()), f"exporting to {target}", unit="shard"):
            ordered = sorted(found.values(), key=lambda e: e.start)
            outs = [o for o in (outputs.get(e.name, _passthrough(e)) for e in ordered) if o is not None]
            total += _write_shard(tmp / path.name, outs, metadata)
            weight_map.update({o.name: path.name for o in outs})
        handled = {p.name for p in shard_paths} | {INDEX_NAME, "config.json", RECORD_NAME}
        if index is not None:
            index = {**index, "metadata": {**index.get("metadata", {}), "total_size": total},
                     "weight_map": dict(sorted(weight_map.items()))}  # fmt: skip
            atomic_write_text(tmp / INDEX_NAME, json.dumps(index, indent=2, sort_keys=True) + "\n")
        config = (source / "config.json").read_text(encoding="utf-8")
        atomic_write_text(tmp / "config.json", patch_config(config, old_count, new_count))
        _carry(source, tmp, handled)
        atomic_write_text(tmp / RECORD_NAME, json.dumps(dict(record), indent=1, sort_keys=True))
    return target
