"""pytest plugin: prompt-case YAML files become test items that gate a model against stored baselines.

Why a plugin and not a script: CI already runs pytest; a red item names the case and the check, `-k`
and `-m` select cases, JUnit XML carries the verdicts, and adding a case is adding a test.

Layout of the collected tree::

    prompts/embedded/translation.yaml          CaseFile
      en-es-weather                            CaseNode (one per case)
        chrf[freq:0.5]                         GateItem (one per check x model variant)

Every gate item is marked `evalsuite`; items of generation-based checks also `generative`,
perplexity / multiple-choice items `discriminative`. `pytest -m evalsuite` (or any marker expression
that picks gate items, or an --evalsuite-* option that asks for the gate) with no path adds the
configured suites to the paths pytest collects, so the gate runs without naming them.

A gate run finds the project's `[tool.evalsuite]` even when pytest picked another rootdir (a model
path outside the project given as `--evalsuite-model PATH` makes pytest root there), and a gate run
that selects no gate item exits non-zero, so a CI script that tolerates pytest's exit 5 cannot skip
the gate silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalsuite.config import DTYPE_NAMES, GateSettings, load_pyproject_table, parse_option
from evalsuite.errors import EvalsuiteError, SetupError
from evalsuite.sandbox._levels import LEVELS as SANDBOX_LEVELS

GATE_KEY = pytest.StashKey["Any"]()
OUTCOME_PROPERTY = "evalsuite_outcome"
RECORD_PROPERTY = "evalsuite_compression"
MARKERS = {
    "evalsuite": "every evalsuite gate item: generative and discriminative checks (`pytest -m evalsuite`)",
    "generative": "a check on generated text against the stored baseline (evalsuite)",
    "discriminative": "a perplexity / multiple-choice check against the stored baseline (evalsuite)",
}


# -- options ----------------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalsuite", "evalsuite quality gate for compressed MoE models")
    group.addoption("--evalsuite-model", metavar="PATH", help="base model checkpoint (default: the embedded model)")
    group.addoption(
        "--evalsuite-compressed", metavar="PATH", action="append", default=None,
        help="a compressed checkpoint on disk to gate against the base model's baselines (repeatable)",
    )
    group.addoption(
        "--evalsuite-recipe", metavar="RECIPE", action="append", default=None,
        help="compress the base model with RECIPE (e.g. freq:0.5) and gate it; repeatable: one variant each",
    )
    group.addoption(
        "--evalsuite-update-baselines", action="store_true", default=False,
        help="record or refresh the base model's baselines (never done without this flag)",
    )
    group.addoption("--evalsuite-baselines", metavar="DIR", help="baselines folder (default: baselines)")
    group.addoption("--evalsuite-prompts", metavar="DIR", help="prompt suites folder (default: prompts)")
    group.addoption(
        "--evalsuite-suite", metavar="NAME", action="append", default=None,
        help="suite folder under the prompts folder to run when no path is given (repeatable; default: "
        "`suites` of [tool.evalsuite], else all)",
    )
    group.addoption("--evalsuite-html", metavar="PATH", help="write an HTML report of every check here")
    group.addoption(
        "--evalsuite-dtype", choices=("auto", *DTYPE_NAMES), default=None,
        help="dtype the models are loaded in (default: `dtype` of [tool.evalsuite], else auto: the checkpoint's)",
    )
    group.addoption(
        "--evalsuite-trust-remote-code", action="store_true", default=False,
        help="let checkpoints run their own Python code (off by default; only for checkpoints you trust)",
    )
    group.addoption(
        "--evalsuite-sandbox", metavar="LEVEL", choices=list(SANDBOX_LEVELS),
        help="isolation of code checks: strong (default: namespaces, else bubblewrap, else refused), "
        "namespaces, bwrap, or weak (no namespaces; Landlock + seccomp; an explicit opt-in)",
    )
    group.addoption(
        "--evalsuite-sweep", metavar="METHOD", action="append", default=None,
        help="sweep METHOD (e.g. freq, reap, merge-cka-uniform, freq@english) over --evalsuite-ratios: one recipe "
        "variant per ratio, and the largest ratio that passes (repeatable)",
    )
    group.addoption("--evalsuite-ratios", metavar="R,R,...", default=None,
                    help="the ratios (fractions of experts to remove) a sweep runs, e.g. 0.125,0.25,0.5")
    group.addoption(
        "--evalsuite-noise-replicates", metavar="K", type=int, default=None,
        help="with --evalsuite-update-baselines: also record a noise floor from K benign replicates "
        "(setting noise_replicates; one extra gate pass each)",
    )
    group.addoption(
        "--evalsuite-verdict", choices=("auto", "suite", "items"), default=None,
        help="what decides the exit status: the suite verdict's exact test against the noise floor (suite), "
        "any failing item (items), or suite when a floor exists (auto, the default)",
    )
    for name, (metavar, helptext) in ENGINE_OPTIONS.items():
        group.addoption(f"--evalsuite-{name.replace('_', '-')}", metavar=metavar, help=helptext)
    parser.addini("evalsuite_model", "base model checkpoint for the evalsuite gate", default="")
    parser.addini("evalsuite_prompts", "prompt suites folder for the evalsuite gate", default="")
    parser.addini("evalsuite_baselines", "baselines folder for the evalsuite gate", default="")
    parser.addini("evalsuite_recipes", "compression recipes to gate, one per line", type="linelist", default=[])


#: how the model is run: `[tool.evalsuite]` key -> (metavar, help); docs/backends.md explains each
ENGINE_OPTIONS = {
    "backend": ("NAME", "hf (transformers in-process, default), vllm (a vLLM server evalsuite starts) or openai "
                "(an OpenAI-compatible server at --evalsuite-server-url)"),
    "device": ("DEVICE", "hf: cpu, cuda, cuda:N, mps"),
    "device_map": ("MAP", "hf: auto / balanced / sequential, or a JSON table {module: device} (accelerate)"),
    "max_memory": ("JSON", "hf: per-device memory caps for the device map, e.g. '{\"0\": \"70GiB\"}'"),
    "offload_folder": ("DIR", "hf: where weights that fit on no device are offloaded (disk)"),
    "threads": ("N", "torch CPU threads"),
    "batch_size": ("N", "prompts per batch (results do not depend on it)"),
    "server_url": ("URL", "vllm/openai: an already running server, e.g. http://127.0.0.1:8000"),
    "server_model": ("NAME", "the model name the server knows (default: the first it lists)"),
    "vllm_command": ("CMD", "how to start vLLM (default: .venv-vllm/bin/python -m vllm.entrypoints.openai.api_server)"),
    "vllm_args": ("ARGS", "extra vLLM server arguments, e.g. '--max-model-len 8192 --gpu-memory-utilization 0.9'"),
    "tensor_parallel": ("N", "vllm --tensor-parallel-size"),
    "pipeline_parallel": ("N", "vllm --pipeline-parallel-size"),
    "baseline_backend": ("NAME", "cross-backend comparison: judge against baselines another backend recorded"),
    "baseline_dtype": ("DTYPE", "cross-backend comparison: the dtype those baselines were recorded in"),
}


def project_root(config: pytest.Config) -> Path:
    """The folder whose pyproject.toml configures the gate.

    pytest's rootdir when pytest found its configuration there (and was invoked inside it); otherwise
    the nearest folder above the invocation folder whose pyproject.toml has `[tool.evalsuite]`. Why:
    with `--evalsuite-model /models/x` (value after a space) pytest's rootdir search, which runs before
    plugins register their options, takes `/models/x` for a test path and roots the session there.
    """
    root = Path(config.rootpath)
    invoked = Path(config.invocation_params.dir)
    if config.inipath is not None and invoked.is_relative_to(root):
        return root
    for folder in (invoked, *invoked.parents):
        if load_pyproject_table(folder)[0]:
            return folder
    return root


def _settings(config: pytest.Config) -> GateSettings:
    """Defaults < [tool.evalsuite] in pyproject.toml < pytest ini keys < command-line options."""
    root = project_root(config)
    table, source = load_pyproject_table(root)
    settings = GateSettings.from_table(table, root, source=f"{source} [tool.evalsuite]" if source else "")
    for ini, attr in (("evalsuite_model", "model"), ("evalsuite_prompts", "prompts"),
                      ("evalsuite_baselines", "baselines")):
        value = config.getini(ini)
        if value:
            setattr(settings, attr, value)
    if config.getini("evalsuite_recipes"):
        settings.recipes = list(config.getini("evalsuite_recipes"))
    opt = config.option
    if opt.evalsuite_model:
        settings.model = opt.evalsuite_model
    if opt.evalsuite_compressed:
        settings.compressed = list(opt.evalsuite_compressed)
    if opt.evalsuite_recipe:
        settings.recipes = list(opt.evalsuite_recipe)
    if opt.evalsuite_baselines:
        settings.baselines = opt.evalsuite_baselines
    if opt.evalsuite_prompts:
        settings.prompts = opt.evalsuite_prompts
    if opt.evalsuite_suite:
        settings.suites = list(opt.evalsuite_suite)
    if opt.evalsuite_html:
        settings.html = opt.evalsuite_html
    if opt.evalsuite_dtype:
        settings.dtype = opt.evalsuite_dtype
    if opt.evalsuite_trust_remote_code:
        settings.trust_remote_code = True
    if opt.evalsuite_sandbox:
        settings.sandbox = opt.evalsuite_sandbox
    settings.update_baselines = bool(opt.evalsuite_update_baselines)
    if opt.evalsuite_noise_replicates is not None:
        from evalsuite.config import SETTING_BOUNDS, check_value

        check_value(opt.evalsuite_noise_replicates, SETTING_BOUNDS["noise_replicates"],
                    where="--evalsuite-noise-replicates")
        settings.noise_replicates = opt.evalsuite_noise_replicates
    if opt.evalsuite_verdict:
        settings.verdict = opt.evalsuite_verdict
    given = {name: parse_option(name, getattr(opt, f"evalsuite_{name}")) for name in ENGINE_OPTIONS
             if getattr(opt, f"evalsuite_{name}", None) is not None}
    settings.update(given, "command line --evalsuite-*")
    if opt.evalsuite_sweep:
        settings.sweep = list(opt.evalsuite_sweep)
    if opt.evalsuite_ratios:
        try:
            settings.sweep_ratios = [float(r) for r in opt.evalsuite_ratios.split(",") if r.strip()]
        except ValueError:
            raise EvalsuiteError(f"--evalsuite-ratios: got {opt.evalsuite_ratios!r}; give numbers separated by "
                                 "commas, e.g. 0.125,0.25,0.5") from None
    # paths given on the command line are relative to where pytest was invoked
    invoked = Path(config.invocation_params.dir)
    for attr in ("model", "baselines", "prompts", "html"):
        value = getattr(settings, attr)
        if value and getattr(opt, f"evalsuite_{attr}", None):
            setattr(settings, attr, str((invoked / value).resolve()))
    if opt.evalsuite_compressed:
        settings.compressed = [str((invoked / p).resolve()) for p in settings.compressed]
    return settings


# the marker sets gate items carry
_ITEM_MARKS = ({"evalsuite", "generative"}, {"evalsuite", "discriminative"})


def _selects_gate(config: pytest.Config) -> bool:
    """Does `-m` select gate items, or did the user ask for the gate with an --evalsuite-* option?"""
    opt = config.option
    if opt.evalsuite_recipe or opt.evalsuite_compressed or opt.evalsuite_update_baselines or opt.evalsuite_sweep:
        return True
    markexpr = getattr(opt, "markexpr", "") or ""
    if not markexpr:
        return False
    try:
        from _pytest.mark.expression import Expression

        expr = Expression.compile(markexpr)
        # the expression must pick gate items specifically: `-m "not slow"` selects unmarked tests
        # too and must not pull the gate into an ordinary test run
        if expr.evaluate(lambda name, **_kw: False):
            return False
        return any(expr.evaluate(lambda name, marks=marks, **_kw: name in marks) for marks in _ITEM_MARKS)
    except Exception:  # an unusual expression: fall back to a plain mention
        return any(mark in markexpr and "not" not in markexpr for mark in MARKERS)


def suite_roots(settings: GateSettings) -> list[Path]:
    """Folders whose sub-folders are suites: the project's prompts folder, then the built-in suites."""
    from evalsuite.suites import builtin_root

    return [settings.resolve(settings.prompts).resolve(), builtin_root().resolve()]


def _names_prompts(config: pytest.Config, settings: GateSettings) -> bool:
    """Was a path inside a suite folder given on the command line?"""
    roots = suite_roots(settings)
    return config.args_source == pytest.Config.ArgsSource.ARGS and any(
        Path(a.split("::")[0]).resolve().is_relative_to(root) for a in config.args for root in roots
    )


def _uses_evalsuite(config: pytest.Config, settings: GateSettings) -> bool:
    """Is this an evalsuite project or run: `[tool.evalsuite]` found, an --evalsuite-* option or the
    `evalsuite` marker? Why: another project may have a `generative` marker of its own; the plugin
    (installed for every pytest run) must leave such runs alone."""
    opt = config.option
    options = [getattr(opt, name) for name in vars(opt) if name.startswith("evalsuite_")]
    marked = "evalsuite" in (getattr(opt, "markexpr", "") or "")
    return bool(load_pyproject_table(settings.rootdir)[0]) or any(options) or marked


def is_gate_run(config: pytest.Config) -> bool:
    """The user asked for the gate: a marker expression / option that picks it, or a prompts path."""
    gate = config.stash.get(GATE_KEY, None)
    if gate is None or not _uses_evalsuite(config, gate.settings):
        return False
    return _selects_gate(config) or _names_prompts(config, gate.settings)


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    from evalsuite.gate.runner import Gate

    try:
        settings = _settings(config)
        gate = Gate(settings)
    except EvalsuiteError as exc:
        raise pytest.UsageError(f"evalsuite: {exc}") from None
    config.stash[GATE_KEY] = gate
    if settings.update_baselines and getattr(config.option, "numprocesses", None):
        raise pytest.UsageError(
            "evalsuite: --evalsuite-update-baselines records one baseline set in one process; run it without "
            "pytest-xdist (-n), then gate with -n as you like"
        )
    config.stash[_COLLECTOR] = ReportCollector()
    config.pluginmanager.register(config.stash[_COLLECTOR], "evalsuite-report-collector")
    prompts = settings.resolve(settings.prompts)
    if config.args_source != pytest.Config.ArgsSource.ARGS and _selects_gate(config):
        if not prompts.is_dir() and not _uses_evalsuite(config, settings):
            return  # another project's own `generative` marker
        if not prompts.is_dir() and not settings.suites:
            raise pytest.UsageError(
                f"evalsuite: the gate was asked for (-m / --evalsuite-*) but the prompts folder {prompts} "
                f"does not exist (project root {settings.rootdir}); run pytest from the project that holds "
                "[tool.evalsuite] in its pyproject.toml, pass --evalsuite-prompts=DIR, or name a built-in suite "
                "with --evalsuite-suite NAME"
            )
        from evalsuite.suites import find_suite

        try:
            wanted = [find_suite(name, prompts) for name in settings.suites] or [prompts]
        except EvalsuiteError as exc:
            raise pytest.UsageError(f"evalsuite: {exc}") from None
        for folder in wanted:
            covered = any(folder.is_relative_to(Path(a).resolve()) for a in config.args if Path(a).exists())
            if not covered:
                config.args.append(str(folder))


def pytest_report_header(config: pytest.Config) -> list[str]:
    gate = config.stash.get(GATE_KEY, None)
    if gate is None:
        return []
    s = gate.settings
    if not (_names_prompts(config, s) or _selects_gate(config)):
        return []
    mode = "RECORD baselines of the base model" if s.update_baselines else "gate"
    lines = [
        f"evalsuite: {mode}; model {s.model or '(embedded default)'}; baselines {s.resolve(s.baselines)}; "
        f"variants {', '.join(v.label for v in gate.variants)}"
    ]
    if Path(config.rootpath) != s.rootdir:
        lines.append(
            f"evalsuite: settings from {s.rootdir / 'pyproject.toml'}; pytest chose rootdir {config.rootpath}, so "
            f"pytest's own settings there ([tool.pytest.ini_options]) are not applied; write options as "
            f"--evalsuite-model=PATH (with '=') or pass --rootdir={s.rootdir}"
        )
    if s.update_baselines and (s.recipes or s.compressed):
        lines.append("evalsuite: --evalsuite-update-baselines records the base model only; recipes and "
                     "compressed checkpoints are not run in this session")
    return lines


def gate_of(config: pytest.Config):
    """The session's Gate (settings, variants, caches, outcomes)."""
    return config.stash[GATE_KEY]


# -- collection -------------------------------------------------------------------------------------
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in {".yaml", ".yml"}:
        return None
    gate = gate_of(parent.config)
    if not any(file_path.resolve().is_relative_to(root) for root in suite_roots(gate.settings)):
        return None
    from evalsuite.gate.lm_eval_tasks import is_task_yaml

    if is_task_yaml(file_path):
        return None  # an lm-eval task YAML that an `lm_eval` case names, not a prompt-case file
    return CaseFile.from_parent(parent, path=file_path)


class CaseFile(pytest.File):
    """A YAML suite file: one child per case."""

    def collect(self):
        from evalsuite.gate.cases import load_case_file
        from evalsuite.gate.chat import apply_project_chat_settings

        gate = gate_of(self.config)
        path = self.path.resolve()
        root = next(r for r in suite_roots(gate.settings) if path.is_relative_to(r))
        rel = path.relative_to(root)
        suite = rel.parts[0] if len(rel.parts) > 1 else self.path.stem
        try:
            cases = load_case_file(self.path, suite=suite, tolerances=gate.settings.tolerances)
        except EvalsuiteError as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases:
            apply_project_chat_settings(case, gate.settings)
            # compared ignoring case: the key names a baseline file, and macOS/Windows file names ignore case
            first = gate.case_files.setdefault(case.key.lower(), self.path)
            if first != self.path:
                raise self.CollectError(
                    f"{self.path}: case {case.id!r}: field 'id': suite {case.suite!r} already has a case "
                    f"{case.id!r} (ignoring case) in {first}; ids must be unique within a suite (they name its "
                    "baselines)"
                )
            yield CaseNode.from_parent(self, name=case.id, case=case)


class CaseNode(pytest.Collector):
    """One prompt case: one item per check and model variant."""

    def __init__(self, *, case, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def collect(self):
        gate = gate_of(self.config)
        for variant in gate.variants:
            for check in self.case.checks:
                yield GateItem.from_parent(self, name=f"{check}[{variant.label}]", check=check, variant=variant)


class GateFailure(Exception):
    """A check failed: carries the outcome so the report can show both responses."""

    def __init__(self, outcome) -> None:
        super().__init__(outcome.detail)
        self.outcome = outcome


class GateItem(pytest.Item):
    """One check of one case under one model variant, judged against the stored baseline."""

    def __init__(self, *, check: str, variant, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.variant = variant
        self.case = self.parent.case
        self.add_marker("evalsuite")
        self.add_marker("generative" if self.case.generative else "discriminative")

    def runtest(self) -> None:
        gate = gate_of(self.config)
        self.user_properties += [
            ("suite", self.case.suite), ("case", self.case.id), ("check", self.check),
            ("recipe", self.variant.label), ("domain", self.case.domain), ("language", self.case.language),
        ]
        try:
            outcome = gate.check(self.variant, self.case, self.check)
        except SetupError as exc:
            # reported once, by the first item that meets it; the others of its scope point to it
            if exc.scope in gate.reported_setup:
                pytest.skip(f"not run: evalsuite setup failed for the {exc.scope} (reported once, above)")
            gate.reported_setup.add(exc.scope)
            raise
        self.user_properties += [
            ("passed", str(outcome.passed)), ("baseline_value", repr(outcome.baseline_value)),
            ("new_value", repr(outcome.new_value)), ("tolerance", str(outcome.tolerance)),
            ("detail", outcome.detail),
            *([("sandbox", outcome.extra["sandbox"])] if "sandbox" in outcome.extra else []),
            # the whole verdict, so the summary and HTML report can be built wherever the reports arrive
            # (the xdist controller, which runs no item itself)
            (OUTCOME_PROPERTY, json.loads(json.dumps(outcome.to_dict(), default=repr))),
        ]
        record = gate.records.get(self.variant.label)
        if record is not None:
            from evalsuite.gate.outcome import describe_record

            self.user_properties.append((RECORD_PROPERTY, describe_record(record)))
        if not outcome.passed:
            raise GateFailure(outcome)

    def repr_failure(self, excinfo, style=None):
        from evalsuite.reporting.terminal import format_failure

        if isinstance(excinfo.value, GateFailure):
            return format_failure(excinfo.value.outcome)
        if isinstance(excinfo.value, SetupError):
            return (
                f"evalsuite setup error ({excinfo.value.scope}), reported once; the other items it affects are "
                f"skipped:\n{excinfo.value}"
            )
        if isinstance(excinfo.value, EvalsuiteError):
            return f"{self.case.key} [{self.check}, {self.variant.label}]: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"{self.case.key}::{self.check}[{self.variant.label}]"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group gate items by variant (each compression applied once), keeping file order inside."""
    gate = gate_of(config)
    order = {v.label: i for i, v in enumerate(gate.variants)}
    gate_items = [it for it in items if isinstance(it, GateItem)]
    if not gate_items:
        return
    others = [it for it in items if not isinstance(it, GateItem)]
    gate_items.sort(key=lambda it: order.get(it.variant.label, 0))
    items[:] = others + gate_items


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With no path given, only the configured suites run (`suites` / --evalsuite-suite)."""
    gate = config.stash.get(GATE_KEY, None)
    if gate is None or not gate.settings.suites or config.args_source == pytest.Config.ArgsSource.ARGS:
        return None
    prompts = gate.settings.resolve(gate.settings.prompts).resolve()
    path = collection_path.resolve()
    if path.parent == prompts and path.is_dir() and path.name not in gate.settings.suites:
        return True
    return None


_NO_GATE_ITEMS = pytest.StashKey[str]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Register the selected cases (after -k / -m) so one generation pass covers exactly them."""
    gate = gate_of(session.config)
    selected = [item for item in session.items if isinstance(item, GateItem)]
    for item in selected:
        gate.register(item.case, item.variant)
    if not selected and is_gate_run(session.config):
        s = gate.settings
        opt = session.config.option
        session.config.stash[_NO_GATE_ITEMS] = (
            f"evalsuite: this gate run selected no gate items (prompts {s.resolve(s.prompts)}, suites "
            f"{s.suites or 'all'}, -m {opt.markexpr!r}, -k {opt.keyword!r}, project root {s.rootdir}); "
            "check the marker expression (`-m evalsuite` runs every check kind), -k, the suite names and that "
            "pytest runs from the project whose pyproject.toml has [tool.evalsuite]"
        )


# -- fixtures for hand-written tests ------------------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "evalsuite_variant" in metafunc.fixturenames:
        variants = gate_of(metafunc.config).variants
        metafunc.parametrize(
            "evalsuite_variant", variants, ids=[v.label for v in variants], indirect=True, scope="session"
        )


@pytest.fixture(scope="session")
def evalsuite_gate(request: pytest.FixtureRequest):
    """The session's Gate: settings, variants, baseline store, caches, collected outcomes."""
    return gate_of(request.config)


@pytest.fixture(scope="session")
def evalsuite_base_model(evalsuite_gate):
    """The original model (LoadedModel), loaded once per session; compressed variants modify it in place."""
    return evalsuite_gate.base()


@pytest.fixture(scope="session")
def evalsuite_variant(request: pytest.FixtureRequest, evalsuite_gate):
    """The model variant under test (parametrized over --evalsuite-recipe / --evalsuite-compressed)."""
    return getattr(request, "param", evalsuite_gate.variants[0])


@pytest.fixture
def evalsuite_model(evalsuite_gate, evalsuite_variant):
    """The variant under test as an ActiveModel (.model, .tokenizer, .variant, .record).

    Function-scoped on purpose: activating is a no-op when the variant is already applied, and it keeps
    a test from seeing another variant's in-place compression.
    """
    return evalsuite_gate.activate(evalsuite_variant)


@pytest.fixture(scope="session")
def evalsuite_baseline(evalsuite_gate):
    """The BaselineStore of the base model's fingerprint (`.load(suite, case_id, ...)`, `.folder`)."""
    return evalsuite_gate.store()


# -- reporting ----------------------------------------------------------------------------------------
class ReportCollector:
    """Outcomes read back from the test reports' `user_properties`, in the process that reports.

    Why not the gate's own list: under pytest-xdist the items run in workers, and only their reports
    reach the controller, which prints the summary and writes the one HTML report."""

    def __init__(self) -> None:
        self.outcomes: list[Any] = []
        self.compression: dict[str, str] = {}
        self.other_failures: list[str] = []  # failures that are not a judged check (errors, other tests)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        judged = report.when == "call" and isinstance(props.get(OUTCOME_PROPERTY), dict)
        if report.failed and not judged:
            self.other_failures.append(report.nodeid)
        if report.when != "call":
            return
        from evalsuite.gate.outcome import CheckOutcome

        if isinstance(props.get(OUTCOME_PROPERTY), dict):
            self.outcomes.append(CheckOutcome(**props[OUTCOME_PROPERTY]))
        if RECORD_PROPERTY in props:
            self.compression[str(props.get("recipe"))] = str(props[RECORD_PROPERTY])


_COLLECTOR = pytest.StashKey[ReportCollector]()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    empty = config.stash.get(_NO_GATE_ITEMS, None)
    if empty:
        terminalreporter.write_sep("=", "evalsuite: no gate items", red=True)
        terminalreporter.write_line(empty)
    gate = config.stash.get(GATE_KEY, None)
    collected = config.stash.get(_COLLECTOR, None)
    if gate is None or collected is None or not collected.outcomes:
        return
    from evalsuite.reporting.terminal import summary_lines

    terminalreporter.write_sep("=", "evalsuite gate summary")
    for line in summary_lines(collected.outcomes, gate, compression=collected.compression):
        terminalreporter.write_line(line)
    from evalsuite.gate.verdict import verdict_lines

    for line in verdict_lines(config.stash.get(_VERDICTS, [])):
        terminalreporter.write_line(line)
    from evalsuite.gate.sweep import sweep_lines

    for line in sweep_lines(config.stash.get(_SWEEP, [])):
        terminalreporter.write_line(line)
    html = getattr(gate, "html_written", None)
    if html:
        terminalreporter.write_line(f"HTML report: {html}")
    failed = getattr(gate, "html_error", None)
    if failed:
        terminalreporter.write_line(f"HTML report not written: {failed}", red=True)


_VERDICTS = pytest.StashKey[list]()
_SWEEP = pytest.StashKey[list]()


def _apply_verdicts(session: pytest.Session, gate: Any) -> None:
    """Compute the suite verdicts; put them into JUnit's global properties; in suite mode let them decide
    the exit status (judged item failures stay visible in the report either way)."""
    collected = session.config.stash.get(_COLLECTOR, None)
    if collected is None or _is_xdist_worker(session.config):
        return
    from evalsuite.gate.verdict import suite_verdicts

    s = gate.settings
    verdicts = suite_verdicts(collected.outcomes, alpha=s.verdict_alpha, mode=s.verdict,
                              severity=s.verdict_severity)
    if s.update_baselines and s.noise_replicates:
        for v in verdicts:  # judged before this run wrote its floor
            if v.mode == "items":
                v.note = "baselines and noise floor recorded in this run; gate runs judge against the floor from now on"
    session.config.stash[_VERDICTS] = verdicts
    from _pytest.junitxml import xml_key

    xml = session.config.stash.get(xml_key, None)
    for v in verdicts:
        if xml is not None:
            xml.add_global_property(f"evalsuite_verdict[{v.variant}]", "PASS" if v.passed else "FAIL")
            xml.add_global_property(f"evalsuite_verdict_mode[{v.variant}]", f"{v.mode}: {v.note}")
            for f in v.families:
                if f.failures:
                    xml.add_global_property(f"evalsuite_family[{v.variant}][{f.check}]", f.describe())
    sweep = _sweep_summary(gate, verdicts, collected.outcomes, xml)
    session.config.stash[_SWEEP] = sweep
    only_sweep = bool(sweep) and all(v.variant in {p.label for m in sweep for p in m.points} for v in verdicts)
    decided = only_sweep or (verdicts and all(v.mode == "suite" for v in verdicts) and all(v.passed for v in verdicts))
    if decided and not collected.other_failures and session.exitstatus == pytest.ExitCode.TESTS_FAILED:
        # a sweep reports the largest passing ratio (failing ratios are its point); a suite verdict that
        # passes overrules judged item failures it has weighed against the noise floor
        session.exitstatus = pytest.ExitCode.OK


def _sweep_summary(gate: Any, verdicts: list, outcomes: list, xml: Any) -> list:
    from evalsuite.compression.recipe import parse_recipe
    from evalsuite.gate.sweep import sweep_summary

    if not gate.sweep:
        return []
    labels = {text: parse_recipe(text).short for text in gate.sweep}
    methods = sweep_summary(gate.sweep, labels, verdicts, outcomes)
    for m in methods:
        if xml is not None:
            best = m.largest_passing
            xml.add_global_property(f"evalsuite_sweep[{m.method}]", "none" if best is None else f"{best:g}")
    return methods


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash.get(_NO_GATE_ITEMS, None) and exitstatus in (0, pytest.ExitCode.NO_TESTS_COLLECTED):
        # not exit 5: CI scripts often tolerate "no tests collected", and a gate must not pass by default
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    gate = session.config.stash.get(GATE_KEY, None)
    if gate is None:
        return
    _apply_verdicts(session, gate)
    gate.close()
    collected = session.config.stash.get(_COLLECTOR, None)
    if gate.settings.html and collected is not None and collected.outcomes and not _is_xdist_worker(session.config):
        from evalsuite.reporting import html

        path = Path(gate.settings.html)
        path = path if path.is_absolute() else gate.settings.rootdir / path
        from evalsuite.reporting.verdicts import sweep_section, verdict_section

        sections = [sweep_section(session.config.stash.get(_SWEEP, [])),
                    verdict_section(session.config.stash.get(_VERDICTS, []))]
        if path.is_dir():  # --evalsuite-html=reports/ : the report goes inside the folder
            path = path / "evalsuite-report.html"
        try:
            html.write_html_report(collected.outcomes, path, title="evalsuite gate report", run_info=gate.run_info(),
                                   sections=sections)
            gate.html_written = path
        except EvalsuiteError as exc:  # the terminal summary (printed after this hook) must still appear
            gate.html_error = str(exc)
