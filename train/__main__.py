"""``python -m divergences.train``: train a generator with any objective of the table on any data set.

With no arguments it runs the demo: the defaults (a WGAN-GP run on 8
Gaussians) writing its plots, metrics and summary to ``runs/demo``.

The flags are generated from :class:`~divergences.train.TrainConfig`'s fields
(help text, type and default from each field), so ``--help`` cannot drift
from the defaults. Exit status: 0 done, 2 bad input (nothing written), 3 a NaN
or infinite loss, 4 a checkpoint that could not be written, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from divergences.train._config import PER_OBJECTIVE, TrainConfig, config_fields, field_kind, flag
from divergences.train._data import DATASETS
from divergences.train._objectives import BASE_DEFAULTS, describe_objectives

# The demo: the defaults, with fewer evaluations, plots and checkpoints than a
# default run (about 2 minutes on 2 idle CPU cores with compilation).
DEMO = dict(eval_every=2500, plot_every=10000, checkpoint_every=5000, out="runs/demo")

EXIT_ERROR = 2
EXIT_DIVERGED = 3
EXIT_STOPPED = 4
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage block
        self.exit(EXIT_ERROR, f"error: {message} (see --help)\n")


def _default_text(name: str, field: dataclasses.Field) -> str | None:
    if name in BASE_DEFAULTS:
        return PER_OBJECTIVE
    if field.default is None:
        return None  # the help text says how the default is derived
    value = field.default
    if isinstance(value, tuple):
        return " ".join(f"{v:g}" for v in value)
    return str(value)


def parser() -> argparse.ArgumentParser:
    """The command line, one flag per configuration field plus the run options."""
    datasets = "\n".join(f"  {k:<22} {v}" for k, v in DATASETS.items())
    datasets += "\n  PATH.npy/.npz          your own [n, d] array (or [n, H, W(, C)] images)"
    p = _Parser(
        prog="python -m divergences.train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a generator with an objective of the divergences library. With no arguments: "
                    "a ~2 minute WGAN-GP demo on 8 Gaussians into runs/demo.",
        epilog=f"objectives (--objective):\n{describe_objectives()}\n\ndatasets (--dataset):\n{datasets}\n\n"
               f"Options marked '{PER_OBJECTIVE}' take the objective's default from the objective table "
               "(divergences.train.OBJECTIVES).\nExit status: 0 done, 2 bad input (nothing written), 3 NaN loss, "
               "4 checkpoint not written, 130 Ctrl-C.",
    )
    run = p.add_argument_group("run")
    run.add_argument("--config", metavar="FILE", help="a JSON object of configuration fields (flags override it)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out from its newest intact "
                                                           "checkpoint")
    run.add_argument("--init-from", metavar="RUN_DIR", help="start a new run from the parameters of another "
                                                            "run's newest checkpoint (new learning rates, steps)")
    run.add_argument("--devices", type=int, help="data-parallel over this many local devices (default: all)")
    run.add_argument("--coordinator", help="multi-host: coordinator address host:port (empty: auto-detect)")
    run.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    run.add_argument("--process-id", type=int, help="multi-host: this process's index")
    cfg = p.add_argument_group("configuration (TrainConfig fields)")
    for name, field in config_fields().items():
        kind, _ = field_kind(field)
        default = _default_text(name, field)
        help_text = field.metadata["help"] + ("" if default is None else f" (default: {default})")
        if field.metadata.get("resumable"):
            help_text += "; may change on --resume"
        kw: dict = dict(dest=name, default=None, help=help_text.replace("%", "%%"))
        if kind == "bool":
            cfg.add_argument(flag(name), action=argparse.BooleanOptionalAction, **kw)
        elif kind == "floats":
            cfg.add_argument(flag(name), type=float, nargs="+", metavar="X", **kw)
        else:
            cfg.add_argument(flag(name), type={"int": int, "float": float, "str": str}[kind],
                             metavar=kind.upper() if kind != "str" else "NAME", **kw)
    return p


def _config(args: argparse.Namespace, demo: bool) -> tuple[TrainConfig, bool]:
    """The configuration from the demo, the --config file and the flags; and whether --out was given."""
    values: dict = dict(DEMO) if demo else {}
    if args.config:
        source = f"`config` (--config) file {args.config!r}"
        try:
            with open(args.config) as f:
                loaded = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{source} could not be read ({e}); give a JSON object of TrainConfig fields") from None
        TrainConfig.from_dict(loaded, source=source)  # checks keys and types, naming the file
        values.update(loaded)
    for name in config_fields():
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    out_given = "out" in values
    cfg = TrainConfig.from_dict(values, source="the options")
    if not out_given:
        cfg = dataclasses.replace(cfg, out=os.path.join("runs", f"{cfg.objective}-{os.path.basename(cfg.dataset)}"))
    return cfg, out_given


def _free_folder(base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... : the first that holds no run."""
    from divergences.train._run import _holds_run

    if not _holds_run(base):
        return base
    i = 2
    while _holds_run(f"{base}-{i}"):
        i += 1
    return f"{base}-{i}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # --help (0), or a flag argparse refused (2, one line)
        return int(e.code or 0)
    try:
        cfg, out_given = _config(args, demo=not argv)
        from divergences.train._config import resolve_config

        resolve_config(cfg)  # every option checked before JAX starts
        if not out_given and not args.resume:
            # The default folder of a repeated command: a clean numbered one, never the old run's.
            free = _free_folder(cfg.out)
            if free != cfg.out:
                print(f"{cfg.out} holds an earlier run; writing to {free} (--resume continues the earlier one)")
                cfg = dataclasses.replace(cfg, out=free)
        from divergences.train._parallel import initialize_distributed, make_mesh

        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        import jax

        n_dev = args.devices if args.devices is not None else len(jax.devices())
        mesh = make_mesh(n_dev) if n_dev > 1 or jax.process_count() > 1 else None
        from divergences.train._run import fit

        if not argv:
            print("demo: python -m divergences.train --objective wgan-gp --dataset 8gaussians (--help for more)")
        fit(cfg, resume=args.resume, init_from=args.init_from, mesh=mesh, catch_sigint=True,
            log=lambda s: print(s, flush=True))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted before training started; nothing to resume from this session", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:  # the run's own stops: one line, the right status
        from divergences.train._run import RunStopped, TrainingDiverged

        if isinstance(e, TrainingDiverged):
            print(f"error: {e}", file=sys.stderr)
            return EXIT_DIVERGED
        if isinstance(e, RunStopped):
            print(f"{'' if e.interrupted else 'error: '}{e}", file=sys.stderr)
            return EXIT_INTERRUPTED if e.interrupted else EXIT_STOPPED
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
