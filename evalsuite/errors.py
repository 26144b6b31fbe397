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


class SetupError(EvalsuiteError):
    """A problem every item of ``scope`` shares: the model, the settings, the environment, a whole suite.

    Why a class of its own: such a problem (no chat template, an unreadable checkpoint, a failed record,
    no baselines at all) is found once and reported once, by the first item that meets it; the other
    items of the same scope are skipped with a pointer to it instead of repeating it hundreds of times
    (or retrying a failing model load per item).
    """

    def __init__(self, message: str, *, scope: str = "run") -> None:
        super().__init__(message)
        self.scope = scope


class MissingBaselinesError(BaselineError, SetupError):
    """No baselines at all for the model, or none for a whole suite: one error, with the command to record."""
