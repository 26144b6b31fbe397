"""The `evalsuite` command line.

`gate`, `record` and `sweep` are thin wrappers around pytest (the gate *is* a pytest run, so CI can equally call
pytest directly); `info`, `profile` and `compress` inspect and export models without pytest.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

#: placement flags of `info --probe`, `profile` and `compress` (the model is loaded in-process)
_LOAD_FLAGS = ("device", "device_map", "max_memory", "offload_folder", "threads")


def _model_args(parser: argparse.ArgumentParser, names: tuple[str, ...] = _LOAD_FLAGS) -> None:
    """--model, --dtype, --trust-remote-code and the engine settings ``names`` (see evalsuite.plugin)."""
    from evalsuite.plugin import ENGINE_OPTIONS

    parser.add_argument("--model", help="base model checkpoint folder (default: the embedded model)")
    for name in names:
        metavar, helptext = ENGINE_OPTIONS[name]
        parser.add_argument(f"--{name.replace('_', '-')}", metavar=metavar, help=helptext)
    parser.add_argument(
        "--dtype", choices=("auto", "float32", "bfloat16", "float16"), default=None,
        help="dtype to load the model in (default: the project's setting, else the checkpoint's own)",
    )
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run the checkpoint's own Python code (off by default)"
    )


def _default_suites() -> list[str]:
    """No suite named: the project's `suites` ([tool.evalsuite]), else its prompts folder."""
    from evalsuite.config import GateSettings, load_pyproject_table
    from evalsuite.errors import EvalsuiteError
    from evalsuite.suites import builtin_names, find_suite

    here = Path.cwd()
    root = next((f for f in (here, *here.parents) if load_pyproject_table(f)[0]), here)
    table, source = load_pyproject_table(root)
    settings = GateSettings.from_table(table, root, source=f"{source} [tool.evalsuite]" if source else "")
    prompts = settings.resolve(settings.prompts)
    if settings.suites:
        return [str(find_suite(name, prompts)) for name in settings.suites]
    if prompts.is_dir():
        return [str(prompts)]
    raise EvalsuiteError(
        f"no suite given and no prompts folder {prompts} (project root {root}); name a suite folder or a built-in "
        f"suite ({', '.join(builtin_names())}), or set `suites` in [tool.evalsuite]"
    )


def _pytest_args(args: argparse.Namespace, *, update: bool) -> list[str]:
    """The pytest command line of `gate` / `record`: every flag becomes a plugin option (a test walks them)."""
    from evalsuite.plugin import ENGINE_OPTIONS
    from evalsuite.suites import builtin_names, builtin_root

    # a bare built-in suite name (`instruct`) that is not a folder here means the suite shipped in the package
    suites = [str(builtin_root() / s) if s in builtin_names() and not Path(s).exists() else s for s in args.suites]
    argv = suites or _default_suites()
    if args.model:
        argv.append(f"--evalsuite-model={args.model}")
    if args.dtype:
        argv.append(f"--evalsuite-dtype={args.dtype}")
    if args.trust_remote_code:
        argv.append("--evalsuite-trust-remote-code")
    for name in ENGINE_OPTIONS:
        if getattr(args, name, None) is not None:
            argv.append(f"--evalsuite-{name.replace('_', '-')}={getattr(args, name)}")
    argv += [f"--evalsuite-compressed={path}" for path in getattr(args, "compressed", None) or []]
    argv += [f"--evalsuite-recipe={recipe}" for recipe in getattr(args, "recipe", None) or []]
    if args.baselines:
        argv.append(f"--evalsuite-baselines={args.baselines}")
    if getattr(args, "html", None):
        argv.append(f"--evalsuite-html={args.html}")
    if update:
        argv.append("--evalsuite-update-baselines")
    if getattr(args, "noise_replicates", None) is not None:
        argv.append(f"--evalsuite-noise-replicates={args.noise_replicates}")
    argv += [f"--evalsuite-sweep={method}" for method in getattr(args, "method", None) or []]
    if getattr(args, "ratios", None):
        argv.append("--evalsuite-ratios=" + ",".join(f"{r:g}" for r in args.ratios))
    if args.marker:
        argv += ["-m", args.marker]
    return argv + list(args.pytest_args)


def _run_pytest(argv: list[str]) -> int:
    import pytest

    print("evalsuite: pytest " + " ".join(argv), flush=True)
    return int(pytest.main(argv))


def _cmd_gate(args: argparse.Namespace) -> int:
    return _run_pytest(_pytest_args(args, update=False))


def _cmd_record(args: argparse.Namespace) -> int:
    return _run_pytest(_pytest_args(args, update=True))


def _load(args: argparse.Namespace):
    """The model in the dtype asked for, else the checkpoint's own (never silently widened to fp32), placed
    as the flags say (validated like the gate's settings)."""
    from evalsuite.config import GateSettings, parse_option
    from evalsuite.model.loading import configure_torch, load_model

    given = {n: parse_option(n, getattr(args, n)) for n in _LOAD_FLAGS if getattr(args, n, None) is not None}
    s = GateSettings(rootdir=Path.cwd()).update(given, "command line")
    configure_torch(s.threads)
    return load_model(args.model, dtype=args.dtype or "auto", trust_remote_code=args.trust_remote_code,
                      device=s.device, device_map=s.device_map, max_memory=s.max_memory,
                      offload_folder=s.offload_folder)


def _cmd_info(args: argparse.Namespace) -> int:
    """Layout from the safetensors headers and config (no weights read); --probe adds the routing rules."""
    from evalsuite.compression.export import checkpoint_tensors, describe_layout
    from evalsuite.model.fingerprint import fingerprint_checkpoint
    from evalsuite.model.loading import default_model_path

    folder = Path(args.model) if args.model else default_model_path()
    tensors = checkpoint_tensors(folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    info: dict[str, Any] = {
        "path": str(folder),
        "model_type": config.get("model_type"),
        "fingerprint": fingerprint_checkpoint(folder),
        "parameters": sum(math.prod(t.shape) for t in tensors.values()),
        "dtypes": sorted({t.dtype for t in tensors.values()}),
        "moe_layers": describe_layout(tensors, config),
    }
    if args.probe:
        from evalsuite.model.moe import MoEModel

        rules = {row["layer"]: row["routing_rule"] for row in MoEModel(_load(args).model).describe()}
        for group in info["moe_layers"]:
            group["routing_rule"] = sorted({rules.get(layer, "?") for layer in group["layers"]})
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{info['path']}: {info['model_type']}, {info['parameters'] / 1e6:.1f}M parameters "
          f"({'/'.join(info['dtypes'])}), fingerprint {info['fingerprint'][:16]}")
    for group in info["moe_layers"]:
        layers = group["layers"]
        span = f"{layers[0]}-{layers[-1]}" if layers == list(range(layers[0], layers[-1] + 1)) else str(layers)
        rule = f"; {', '.join(group['routing_rule'])}" if "routing_rule" in group else ""
        print(f"  MoE layers {span} ({len(layers)}): {group['summary']}{rule}")
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    """Plan (on the loaded model when the recipe needs statistics), free the model, then export from the files.

    Why in that order: the export streams tensor by tensor from the checkpoint's shards, so the model and
    its statistics are gone before it starts and the peak is the planning pass, never model + copy."""
    import gc

    from evalsuite.compression import compress, data_free, default_stats_cache, parse_recipe, plan_from_files
    from evalsuite.compression.export import export_checkpoint
    from evalsuite.model.loading import default_model_path

    recipe = parse_recipe(args.recipe)
    source = Path(args.model) if args.model else default_model_path()
    if data_free(recipe):
        record = plan_from_files(source, recipe)
    else:  # statistics or expert weights: plan on the loaded model
        loaded = _load(args)
        with compress(loaded.model, loaded.tokenizer, recipe) as result:
            record = result.record
        del loaded, result
        default_stats_cache.clear()
        gc.collect()
    folder = export_checkpoint(source, record, args.out)
    print(f"wrote {recipe.short} of {source} to {folder} (record: {folder / 'evalsuite_compression.json'})")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from evalsuite.compression import dead_curve_model, profile_model

    loaded = _load(args)
    profile = profile_model(loaded.model, loaded.tokenizer, args.calibration)
    curve = dead_curve_model(loaded.model, loaded.tokenizer, args.calibration)
    if args.json:
        print(json.dumps({"profile": profile.to_dict(), "dead_vs_prompts": curve}, indent=2))
        return 0
    print(profile.format())
    print("dead experts vs number of calibration prompts (seed 001: 30% dead at 5 prompts, 0.6% at 100):")
    for row in curve:
        print(f"  {row['prompts']:>4} prompts: {row['dead']:>3}/{row['experts']} dead ({row['dead_fraction']:.1%})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from evalsuite.plugin import ENGINE_OPTIONS

    parser = argparse.ArgumentParser(
        prog="evalsuite", description="Quality gate for compressed Mixture-of-Experts language models."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    for name, helptext, func in (
        ("gate", "test a compressed model against the stored baselines (a pytest run)", _cmd_gate),
        ("record", "record or refresh the baselines of the base model (explicit, never implicit)", _cmd_record),
        ("sweep", "run compression methods over a list of ratios and report the largest ratio that passes",
         _cmd_gate),
    ):
        sub = commands.add_parser(name, help=helptext)
        _model_args(sub, tuple(ENGINE_OPTIONS))
        sub.add_argument(
            "suites", nargs="*",
            help="suite folders or built-in suite names, e.g. instruct (default: `suites` of [tool.evalsuite], "
            "else the prompts folder)",
        )
        sub.add_argument("--baselines", help="baseline folder (default: baselines/)")
        sub.add_argument("-m", dest="marker", help="pytest marker expression, e.g. generative")
        if name == "record":
            sub.add_argument("--noise-replicates", type=int, metavar="K",
                             help="also record a noise floor from K benign replicates (docs/VERDICTS.md)")
        if name == "sweep":
            sub.add_argument("--method", action="append", required=True,
                             help="method to sweep, e.g. freq, reap, merge-cka-uniform, freq@english (repeatable)")
            sub.add_argument("--ratios", type=float, nargs="+", required=True, metavar="R",
                             help="fractions of experts to remove, e.g. 0.125 0.25 0.5")
            sub.add_argument("--html", help="write the HTML report (with the sweep plot) here")
        if name == "gate":
            sub.add_argument("--recipe", action="append", help="compression recipe, e.g. reap:0.25 (repeatable)")
            sub.add_argument(
                "--compressed", action="append", help="a compressed checkpoint folder to gate (repeatable)"
            )
            sub.add_argument("--html", help="write an HTML report here")
        sub.add_argument("--pytest-args", nargs=argparse.REMAINDER, default=[], help="passed on to pytest")
        sub.set_defaults(func=func)

    info = commands.add_parser("info", help="MoE layout per layer group, parameters and fingerprint (from files)")
    _model_args(info)
    info.add_argument("--probe", action="store_true", help="also load the model and infer each layer's routing rule")
    info.add_argument("--json", action="store_true", help="print JSON instead of lines")
    info.set_defaults(func=_cmd_info)

    profile = commands.add_parser("profile", help="routing profile: usage, Gini, entropy ratio, dead experts")
    _model_args(profile)
    profile.add_argument("--calibration", default="diverse", help="calibration set name or a local file")
    profile.add_argument("--json", action="store_true", help="print JSON instead of a table")
    profile.set_defaults(func=_cmd_profile)

    comp = commands.add_parser("compress", help="apply a recipe and save a standard checkpoint")
    _model_args(comp)
    comp.add_argument("--recipe", required=True, help="e.g. reap:0.25 or merge-cka-uniform:6")
    comp.add_argument("--out", required=True, help="output folder")
    comp.set_defaults(func=_cmd_compress)
    return parser


def main(argv: list[str] | None = None) -> int:
    from evalsuite.errors import EvalsuiteError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EvalsuiteError as exc:
        print(f"evalsuite: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
