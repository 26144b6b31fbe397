"""Prompt suites that ship inside the package (`--evalsuite-suite instruct` works from any project).

Why in the package: a user gating their own checkpoint installs evalsuite from PyPI and has no copy
of this repository's `prompts/` folder. A suite name is looked up in the project's prompts folder
first (a project can shadow a built-in suite with its own copy), then here.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from evalsuite.errors import EvalsuiteError

__all__ = ["builtin_root", "builtin_names", "find_suite"]


def builtin_root() -> Path:
    """The folder holding the built-in suites (one sub-folder per suite)."""
    return Path(str(resources.files("evalsuite") / "suites"))


def builtin_names() -> list[str]:
    return sorted(p.name for p in builtin_root().iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def find_suite(name: str, prompts: Path) -> Path:
    """The folder of suite ``name``: ``prompts/name`` when the project has it, else the built-in one."""
    for folder in (prompts / name, builtin_root() / name):
        if folder.is_dir():
            return folder
    raise EvalsuiteError(
        f"suite {name!r} not found: no folder {prompts / name} and no built-in suite of that name "
        f"(built-in: {', '.join(builtin_names()) or 'none'}); check `suites` in [tool.evalsuite] / --evalsuite-suite"
    )
