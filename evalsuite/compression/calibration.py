"""Calibration sets: the token streams every pruning criterion and data-centric similarity is measured on.

Why named sets: the seeds show the calibration domain decides which experts look unimportant (C4 vs code
calibration flips REAP from near-lossless to 0% on code; MATH vs C4 moves the selection in 28 of 32
layers), so a recipe names its calibration set and the record keeps it.

Named sets come from the held-out data shipped in `evalsuite/data/heldout/`. To keep calibration apart
from evaluation, a named set only uses the records whose id hashes into the *calibration half*
(`is_calibration_record`); evaluation code can take the other half with `heldout_split(..., "eval")`.
Any local data file or folder can be used instead, used whole and read lazily up to the token budget:
`.jsonl` / `.json` / `.csv` / `.parquet` files or a `datasets` `save_to_disk` folder (field `text`, or
`prompt` + `continuation`/`worked`/`target`, ...; read through `evalsuite.datafiles`), or a `.txt` file
(paragraphs separated by blank lines).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch

from evalsuite.datafiles import DATA_SUFFIXES, is_dataset_folder, iter_records
from evalsuite.errors import InvalidRecipeError
from evalsuite.heldout import heldout_dir, heldout_split, is_calibration_record  # noqa: F401 (public here too)
from evalsuite.io import read_jsonl

LANGUAGES = ("en", "es", "fr", "de", "ru", "zh", "ja")

# name -> (description, glob patterns under data/heldout/)
NAMED_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{lang: (f"{lang} prose (text-{lang}.jsonl)", (f"text-{lang}.jsonl",)) for lang in LANGUAGES},
    "code": ("Python source (text-code.jsonl)", ("text-code.jsonl",)),
    "arithmetic": ("arithmetic prompts with worked answers", ("arithmetic.jsonl",)),
    "translation": ("translation prompts with references", ("translation-en-*.jsonl",)),
    "english": ("English only: English prose + English prompts", ("text-en.jsonl", "prompts-en.jsonl")),
    "diverse": (
        "all languages, code, arithmetic and translation, interleaved",
        tuple(f"text-{x}.jsonl" for x in (*LANGUAGES, "code")) + ("arithmetic.jsonl", "translation-en-*.jsonl"),
    ),
}
DEFAULT_SEQ_LEN = 256
_FORMATS = ".jsonl / .json / .csv / .parquet / .txt file or a datasets save_to_disk folder"
DEFAULT_BATCH_SIZE = 8


def _has_data(name: str) -> bool:
    folder = heldout_dir()
    return any(any(folder.glob(pattern)) for pattern in NAMED_SETS[name][1])


def available_calibration_sets() -> list[str]:
    """Named sets whose held-out files are present in this installation."""
    return [name for name in NAMED_SETS if _has_data(name)]


def _looks_like_path(name: str) -> bool:
    return "/" in name or "\\" in name or name.endswith((".txt", *DATA_SUFFIXES))


def check_calibration_name(name: str) -> None:
    """Raise InvalidRecipeError unless `name` is a named set, an existing local file or a datasets folder."""
    if name in NAMED_SETS:
        if not _has_data(name):
            raise InvalidRecipeError(
                f"calibration set {name!r} has no data in {heldout_dir()} ({', '.join(NAMED_SETS[name][1])} "
                f"missing); available sets: {', '.join(available_calibration_sets()) or 'none'}; "
                f"or give a path to a local {_FORMATS}"
            )
        return
    if Path(name).is_file() or is_dataset_folder(name):
        return
    if _looks_like_path(name):
        raise InvalidRecipeError(f"calibration data {name!r} does not exist; give an existing {_FORMATS}")
    raise InvalidRecipeError(
        f"calibration set {name!r} is unknown; named sets: {', '.join(available_calibration_sets())}; "
        f"or give a path to a local {_FORMATS}"
    )


def record_text(record: dict[str, Any]) -> str:
    """The text of one JSONL record in any of the shipped schemas (or a user's `text` field)."""
    if isinstance(record.get("text"), str):
        return record["text"]
    if isinstance(record.get("prompt"), str):
        for extra in ("continuation", "worked", "target", "answer"):
            if isinstance(record.get(extra), str):
                return record["prompt"] + record[extra]
        return record["prompt"]
    if isinstance(record.get("context"), str):
        return record["context"]
    for value in record.values():
        if isinstance(value, str) and value.strip():
            return value
    return ""


def _texts_of_file(path: Path) -> Iterator[str]:
    if path.suffix == ".txt":
        raw = path.read_text(encoding="utf-8", errors="replace")
        yield from (p.strip() for p in raw.split("\n\n") if p.strip())
        return
    for record in iter_records(path, error=InvalidRecipeError):
        text = record_text(record)
        if text.strip():
            yield text


def load_calibration_texts(name: str, *, seed: int = 0, part: str = "calibration") -> Iterable[str]:
    """The texts of a named set (its `part` half, interleaved across its files), or of a local file or
    datasets folder (lazily: a large file is read only as far as the token budget needs).

    part="eval" gives the other half of the same files: evaluation text disjoint from calibration."""
    check_calibration_name(name)
    if name not in NAMED_SETS:
        return _texts_of_file(Path(name))
    folder = heldout_dir()
    sources: list[list[str]] = []
    missing = []
    for pattern in NAMED_SETS[name][1]:
        files = sorted(folder.glob(pattern))
        if not files:
            missing.append(pattern)
        for file in files:
            records = heldout_split(read_jsonl(file, error=InvalidRecipeError), part)
            texts = [t for t in map(record_text, records) if t.strip()]
            random.Random(f"{seed}:{file.name}").shuffle(texts)
            if texts:
                sources.append(texts)
    if not sources:
        raise InvalidRecipeError(
            f"calibration set {name!r} has no data: {', '.join(missing)} not found in {folder}; "
            "build the held-out data (training/build_corpus.py) or give a local .jsonl/.txt file"
        )
    # Round-robin so that any prefix (a small prompt count) is as diverse as the whole set.
    out: list[str] = []
    for i in range(max(map(len, sources))):
        out.extend(src[i] for src in sources if i < len(src))
    return out


@dataclass
class CalibrationSet:
    """Tokenised calibration sequences; iterating yields `(input_ids, attention_mask)` batches."""

    name: str
    sequences: list[list[int]]
    pad_id: int
    batch_size: int = DEFAULT_BATCH_SIZE
    num_texts: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return sum(map(len, self.sequences))

    @property
    def fingerprint(self) -> str:
        """sha256 of the token ids: the statistics cache key, independent of how the set was named."""
        digest = hashlib.sha256()
        for seq in self.sequences:
            digest.update(torch.tensor(seq, dtype=torch.int64).numpy().tobytes())
            digest.update(b"|")
        return digest.hexdigest()[:16]

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Right-padded batches; the attention mask marks real tokens (statistics are padding-aware)."""
        for start in range(0, len(self.sequences), self.batch_size):
            chunk = self.sequences[start : start + self.batch_size]
            width = max(map(len, chunk))
            ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, seq in enumerate(chunk):
                ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            yield ids, mask

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches()

    def __len__(self) -> int:
        return (len(self.sequences) + self.batch_size - 1) // self.batch_size

    def split_by_texts(self, counts: Sequence[int]) -> list[CalibrationSet]:
        """Nested prefixes holding the sequences of the first n texts, for each n in `counts`."""
        owners = self.meta.get("text_of_sequence", list(range(len(self.sequences))))
        out = []
        for n in counts:
            seqs = [s for s, owner in zip(self.sequences, owners, strict=True) if owner < n]
            out.append(CalibrationSet(f"{self.name}[:{n}]", seqs, self.pad_id, self.batch_size, min(n, self.num_texts)))
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "texts": self.num_texts,
            "sequences": len(self.sequences),
            "tokens": self.tokens,
            "fingerprint": self.fingerprint,
        }


def calibration_batches(
    name_or_path: str,
    tokenizer: Any,
    *,
    token_budget: int = 8192,
    seq_len: int = DEFAULT_SEQ_LEN,
    batch_size: int = DEFAULT_BATCH_SIZE,
    num_prompts: int | None = None,
    windows_per_text: int | None = None,
    seed: int = 0,
    part: str = "calibration",
) -> CalibrationSet:
    """Tokenise a calibration set up to `token_budget` tokens (long texts are cut into `seq_len`
    windows; `num_prompts` caps the number of texts, for the 5-vs-100-prompt effect; `windows_per_text`
    caps how many windows one text contributes, e.g. 1 = one prompt, one sequence; part="eval" takes
    the evaluation half of a named set instead, for held-out measurements)."""
    if token_budget < 1 or seq_len < 2 or batch_size < 1:
        raise InvalidRecipeError("token_budget, seq_len and batch_size must be positive (seq_len >= 2)")
    texts = iter(load_calibration_texts(name_or_path, seed=seed, part=part))
    if num_prompts is not None:
        if num_prompts < 1:
            raise InvalidRecipeError(f"num_prompts must be >= 1, got {num_prompts}")
        texts = islice(texts, num_prompts)
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if pad_id is None:
        pad_id = getattr(tokenizer, "eos_token_id", None) or 0
    sequences: list[list[int]] = []
    owners: list[int] = []
    used = 0
    total = 0
    for index, text in enumerate(texts):
        if total >= token_budget:
            break
        ids = list(tokenizer(text, verbose=False)["input_ids"])
        if len(ids) < 2:
            continue
        used = index + 1
        starts = range(0, len(ids), seq_len)
        for start in starts if windows_per_text is None else starts[:windows_per_text]:
            window = ids[start : start + seq_len][: token_budget - total]
            if len(window) < 2:
                break
            sequences.append(window)
            owners.append(index)
            total += len(window)
            if total >= token_budget:
                break
    if not sequences:
        raise InvalidRecipeError(f"calibration set {name_or_path!r} produced no tokens; is it empty?")
    return CalibrationSet(
        name=name_or_path,
        sequences=sequences,
        pad_id=int(pad_id),
        batch_size=batch_size,
        num_texts=used,
        meta={"text_of_sequence": owners, "seq_len": seq_len, "token_budget": token_budget, "seed": seed},
    )
