"""The `spikeode` command."""

from __future__ import annotations

import argparse
import json
import sys


def _check(args) -> int:
    import jax

    jax.config.update("jax_enable_x64", True)
    from ._verify import CHECKS, format_table, run_checks

    names = args.only or list(CHECKS)
    progress = None if args.json else (lambda name: print(f"running {name} ...", file=sys.stderr, flush=True))
    try:
        results = run_checks(names, progress=progress)
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
                f"{r.grad_tol:g}); {r.details}; {r.seconds:.1f} s"
            )
    return 0 if all(r.passed for r in results) else 1


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
    p.set_defaults(func=_check)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
