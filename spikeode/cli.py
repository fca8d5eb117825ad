"""The `spikeode` command."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys


def _check(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from ._verify import CHECKS, format_table, run_checks

    names = args.only or list(CHECKS)
    progress = None if args.json else (
        lambda line: print(line, file=sys.stderr, flush=True)
    )
    try:
        results = run_checks(names, progress=progress, workers=args.workers)
    except ValueError as e:
        print(f"spikeode check: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        print(format_table(results))
        for r in results:
            print(
                f"  {r.network}: spike times vs {r.spike_time_reference} (tol "
                f"{r.spike_time_tol:g}), gradients vs finite differences (tol "
                f"{r.grad_tol:g})"
                + ("" if r.adjoint_error is None
                   else f", EventPropAdjoint's gradient (tol {r.adjoint_tol:g})")
                + f"; {r.details}; {r.seconds:.1f} s"
            )
    return 0 if all(r.passed for r in results) else 1


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


_FIXED = ("task", "dtype", "seed", "out", "epochs", "batch_size", "lr", "hidden", "closed_form")


def _settings(items: list[str]) -> dict:
    """`FIELD=VALUE` strings as `TrainConfig` fields, each VALUE parsed as JSON (so
    numbers, strings in quotes and lists for pairs such as `w_out=[0.9,0.1]`)."""
    from .train import TrainConfig

    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        if name not in fields or name in _FIXED:
            allowed = sorted(set(fields) - set(_FIXED))
            raise ValueError(f"--set: unknown or dedicated field {name!r}; one of {allowed}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"--set {name}: {text!r} is not a number, list or quoted string")
        default = fields[name].default
        if isinstance(default, tuple):
            if not (isinstance(value, list) and len(value) == len(default)):
                raise ValueError(f"--set {name}: expected a list of {len(default)} numbers")
            value = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ValueError(
                f"--set {name}: expected a {type(default).__name__}, got {text!r}"
            )
        out[name] = value
    return out


def _train(args) -> int:
    from .train import fit, TrainConfig

    config = TrainConfig.for_task(args.task, closed_form=args.closed_form)
    given = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, hidden=args.hidden)
    try:
        config = dataclasses.replace(
            config,
            **_settings(args.set or []),
            **{k: v for k, v in given.items() if v is not None},
            dtype=args.dtype,
            seed=args.seed,
            out=args.out or f"runs/{args.task}",
        )
        config.validate()
    except ValueError as e:
        print(f"spikeode train: {e}", file=sys.stderr)
        return 2
    results = fit(config, resume=args.resume, progress=not args.no_progress)
    print(
        f"{config.task}: test accuracy {100 * results['test_acc']:.2f} % after "
        f"{results['epochs']} epochs ({results['wall_seconds']:.0f} s); results, "
        f"metrics, checkpoint and plots in {results['out']}"
    )
    return 0


def _eval(args) -> int:
    from .train import evaluate_checkpoint

    try:
        res = evaluate_checkpoint(args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        print(f"spikeode eval: {e}", file=sys.stderr)
        return 2
    print(json.dumps(res, indent=1))
    return 0


def cpu_cores() -> int:
    """The number of CPU cores this process may run on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores or 1


# The settings the `spikeode` command gives XLA (each unless XLA_FLAGS already makes
# it), before JAX's backend starts:
# - every command: XLA's legacy CPU fusion emitters. The event loops make large
#   programs, whose compilation is much of a short job: these emitters compile them in
#   about 60-65 % of the CPU time of the default (MLIR) ones, and the Yin-Yang training
#   steps run as fast (docs/measurements.md);
# - `train`, `eval`: one CPU device per core, so that training splits each batch over
#   them (JAX shows one CPU device however many cores there are);
# - `check`: XLA's backend optimisation level 0. The checks' networks are small, so
#   compilation is most of their time; the same programs (the same HLO) compile in
#   about half the CPU time into slower machine code, with the same spike counts,
#   spike-time errors equal to round-off and gradient errors within their bounds
#   (docs/measurements.md).
def xla_flags(command: str, flags: str = "") -> str:
    """The XLA_FLAGS of `spikeode <command>`: `flags` (the caller's own, which win)
    followed by each of the command's settings that `flags` does not make."""
    wanted = {"xla_cpu_use_fusion_emitters": "false"}
    if command in ("train", "eval"):
        wanted["xla_force_host_platform_device_count"] = str(cpu_cores())
    if command == "check":
        wanted["xla_backend_optimization_level"] = "0"
    extra = [f"--{name}={value}" for name, value in wanted.items() if name not in flags]
    return " ".join([flags, *extra]).strip()


def _configure_xla(command: str):
    """Set XLA_FLAGS for `command` (`xla_flags`). Effective only before JAX's backend
    starts, i.e. before the first computation."""
    os.environ["XLA_FLAGS"] = xla_flags(command, os.environ.get("XLA_FLAGS", ""))


def main(argv=None) -> int:
    """Entry point of the `spikeode` console script."""
    parser = argparse.ArgumentParser(
        prog="spikeode", description="Spiking networks as ODEs with events, with exact gradients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "check",
        help="verify spike times (closed forms, independent integrator) and gradients "
        "(finite differences) on built-in networks, in float64",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--only", nargs="+", metavar="NAME", help="run only these checks (default: all)"
    )
    p.add_argument(
        "--workers", type=_positive_int, default=os.cpu_count() or 1, metavar="N",
        help="processes running checks at once (default: one per core)",
    )
    p.set_defaults(func=_check)

    from .data import TASKS

    t = sub.add_parser("train", help="train a spiking classifier with exact gradients")
    t.add_argument("task", choices=sorted(TASKS))
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--hidden", type=_positive_int, help="hidden neurons")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="output folder (default runs/TASK)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--closed-form", action="store_true",
        help="closed-form first-spike layers (each neuron fires at most once, tau_syn = "
        "tau_mem/2, no event loop; much faster) instead of the event loop's",
    )
    t.add_argument(
        "--set", action="append", metavar="FIELD=VALUE",
        help="any other field of spikeode.train.TrainConfig, e.g. --set silent_weight=0.1 "
        "--set w_out=[0.9,0.1] (repeatable)",
    )  # fmt: skip
    t.set_defaults(func=_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint on its task's test split")
    e.add_argument("checkpoint", help="path of a checkpoint (OUT/checkpoint)")
    e.set_defaults(func=_eval)
    args = parser.parse_args(argv)
    _configure_xla(args.command)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
