"""Errors a user can cause. Each message names the file, field or value and what would fix it."""


class EvalsuiteError(Exception):
    """Base class for every error evalsuite reports to a user."""


class ModelLoadError(EvalsuiteError):
    """A checkpoint could not be loaded (missing files, non-safetensors weights, ...)."""


class UnsupportedModelError(EvalsuiteError):
    """The model is not an MoE, or its MoE layout is not understood."""


class InvalidRecipeError(EvalsuiteError):
    """A compression recipe is malformed or cannot be applied to this model."""


class CaseFileError(EvalsuiteError):
    """A prompt-case YAML file is malformed."""


class BaselineError(EvalsuiteError):
    """A stored baseline is missing, stale or unreadable."""


class StorageError(EvalsuiteError):
    """A file could not be written (read-only folder, disk full, a folder where a file should be)."""


class SettingError(EvalsuiteError):
    """A setting or tolerance is out of range; ``where`` names it (file/table/field), ``problem`` says why."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem
