"""Shared fixtures for evalsuite's own tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

from evalsuite.model.loading import configure_torch
from evalsuite.model.tiny import build_tiny_moe

configure_torch(1)

# CI must be reproducible: the same examples every run. Local runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def tiny_moe_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer, 8-expert Qwen3-MoE checkpoint with a character tokenizer."""
    return build_tiny_moe(tmp_path_factory.mktemp("tiny-moe"))


@pytest.fixture(scope="session")
def write_all_formats():
    """A writer of the same rows as JSONL, JSON, CSV, Parquet and a datasets save_to_disk folder."""

    def write_all_formats(folder: Path, rows: list[dict]) -> dict[str, Path]:
        """The same rows as JSONL, JSON, CSV, Parquet and a save_to_disk folder."""
        import datasets

        data = datasets.Dataset.from_list(rows)
        paths = {fmt: folder / f"data.{fmt}" for fmt in ("jsonl", "csv", "parquet", "json")}
        paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths["json"].write_text(json.dumps(rows))
        data.to_csv(paths["csv"], index=False)
        data.to_parquet(paths["parquet"])
        paths["saved"] = folder / "saved"
        data.save_to_disk(paths["saved"])
        return paths

    return write_all_formats
