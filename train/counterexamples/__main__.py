"""``python -m divergences.train.counterexamples``: reproduce the counterexamples behind WGAN (tables, JSON, plots)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m divergences.train.counterexamples", description=__doc__)
    parser.add_argument("--out", default="runs/counterexamples", help="output folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="a much smaller run with the same outputs (tests)")
    parser.add_argument("--seed", type=int, default=0, help="master PRNG seed (default: %(default)s)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures (no matplotlib needed)")
    args = parser.parse_args(argv)

    from divergences.train.counterexamples import Config, markdown, run, write_outputs, write_plots

    cfg = Config(seed=args.seed)
    if args.quick:
        cfg = cfg.quick()
    print("config:", json.dumps(dataclasses.asdict(cfg)))
    start = time.perf_counter()
    results = run(cfg)
    paths = write_outputs(results, args.out)
    if not args.no_plots:
        paths += write_plots(results, args.out)
    total = time.perf_counter() - start
    print()
    print(markdown(results))
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in results["timings_s"].items())
    print(f"wall time {total:.1f}s ({timings}); wrote {', '.join(paths)}")


if __name__ == "__main__":
    main()
