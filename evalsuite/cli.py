"""The `evalsuite` command line.

`gate` and `record` are thin wrappers around pytest (the gate *is* a pytest run, so CI can equally call
pytest directly); `info`, `profile` and `compress` inspect and export models without pytest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_SUITE = "prompts/embedded"


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="base model checkpoint folder (default: the embedded model)")
    parser.add_argument("--dtype", default="float32", help="float32 (default), bfloat16 or float16")
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="run the checkpoint's own Python code (off by default)"
    )


def _pytest_args(args: argparse.Namespace, *, update: bool) -> list[str]:
    from evalsuite.suites import builtin_names, builtin_root

    # a bare built-in suite name (`instruct`) that is not a folder here means the suite shipped in the package
    suites = [str(builtin_root() / s) if s in builtin_names() and not Path(s).exists() else s for s in args.suites]
    argv = suites or [DEFAULT_SUITE]
    if args.model:
        argv.append(f"--evalsuite-model={args.model}")
    if getattr(args, "compressed", None):
        argv.append(f"--evalsuite-compressed={args.compressed}")
    for recipe in getattr(args, "recipe", None) or []:
        argv.append(f"--evalsuite-recipe={recipe}")
    if args.baselines:
        argv.append(f"--evalsuite-baselines={args.baselines}")
    if getattr(args, "html", None):
        argv.append(f"--evalsuite-html={args.html}")
    if update:
        argv.append("--evalsuite-update-baselines")
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
    from evalsuite.model.loading import configure_torch, load_model

    configure_torch(1)
    return load_model(args.model, dtype=args.dtype, trust_remote_code=args.trust_remote_code)


def _cmd_info(args: argparse.Namespace) -> int:
    from evalsuite.model.moe import MoEModel

    loaded = _load(args)
    layers = MoEModel(loaded.model).describe()
    info = {
        "path": str(loaded.path),
        "model_type": loaded.model.config.model_type,
        "fingerprint": loaded.fingerprint,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "moe_layers": layers,
    }
    print(json.dumps(info, indent=2, default=str))
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
    parser = argparse.ArgumentParser(
        prog="evalsuite", description="Quality gate for compressed Mixture-of-Experts language models."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    for name, helptext, func in (
        ("gate", "test a compressed model against the stored baselines (a pytest run)", _cmd_gate),
        ("record", "record or refresh the baselines of the base model (explicit, never implicit)", _cmd_record),
    ):
        sub = commands.add_parser(name, help=helptext)
        _model_args(sub)
        sub.add_argument(
            "suites", nargs="*", help=f"suite folders or built-in suite names, e.g. instruct (default: {DEFAULT_SUITE})"
        )
        sub.add_argument("--baselines", help="baseline folder (default: baselines/)")
        sub.add_argument("-m", dest="marker", help="pytest marker expression, e.g. generative")
        if name == "gate":
            sub.add_argument("--recipe", action="append", help="compression recipe, e.g. reap:0.25 (repeatable)")
            sub.add_argument("--compressed", help="a compressed checkpoint folder to gate instead of a recipe")
            sub.add_argument("--html", help="write an HTML report here")
        sub.add_argument("--pytest-args", nargs=argparse.REMAINDER, default=[], help="passed on to pytest")
        sub.set_defaults(func=func)

    info = commands.add_parser("info", help="MoE layout (experts, top-k, routing rule per layer) and fingerprint")
    _model_args(info)
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
