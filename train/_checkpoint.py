"""Checkpoints of a training run with orbax, safe against a kill, a truncated file or a full disk.

Orbax writes each checkpoint into a temporary folder and renames it into place
only when every file is on disk, so a kill during a save leaves at most an
unfinished temporary folder, which :meth:`Checkpointer.steps` ignores. What
else can go wrong is handled here:

* a checkpoint that cannot be read back (a truncated file): :meth:`restore_latest`
  falls back to the newest intact step and moves the broken ones to
  ``<run>/broken_checkpoints/`` (kept, not deleted);
* a save that fails (a full disk, a folder made unwritable):
  :meth:`Checkpointer.save` removes the partial temporary folder and raises
  :class:`CheckpointError` with one line; the earlier checkpoints stay.

A checkpoint holds the state (step, parameters, spectral-norm statistics,
optimizer states) and a small JSON record (the training time so far), in one
atomic orbax step; the PRNG key is not stored because every key is
``fold_in(key(seed), step)``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import serialization

__all__ = ["Checkpointer", "CheckpointError"]


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or read (the message is one line)."""


class Checkpointer:
    """A thin wrapper over :class:`orbax.checkpoint.CheckpointManager`.

    Args:
      directory: where the numbered checkpoints live.
      max_to_keep: how many recent checkpoints to keep.
      create: create ``directory`` if missing (a resume opens an existing one only).
    """

    def __init__(self, directory: str, *, max_to_keep: int = 2, create: bool = True):
        import orbax.checkpoint as ocp  # lazy: orbax is in the `train` extra and slow to import

        self._ocp = ocp
        self.directory = os.path.abspath(directory)
        self._options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                                     enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=self._options)

    def reopen(self) -> None:
        """Reread the folder (after another process changed it)."""
        self._manager.close()
        self._manager = self._ocp.CheckpointManager(self.directory, options=self._options)

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict | None = None) -> None:
        """Write ``state`` (and the JSON ``meta``) as checkpoint ``step``.

        Raises:
          CheckpointError: the write failed; the partial checkpoint is removed.
        """
        tree = _mark_empty(serialization.to_state_dict(jax.device_get(state)))
        try:
            self._write(int(step), tree, dict(meta or {}))
        except Exception as e:  # noqa: BLE001 - OSError, or orbax/tensorstore wrapping one
            self._clean_partial(int(step))
            raise CheckpointError(f"checkpoint of step {step} could not be written in {self.directory} "
                                  f"({_reason(e)})") from None

    def _write(self, step: int, tree: Any, meta: dict) -> None:
        args = self._ocp.args.Composite(state=self._ocp.args.StandardSave(tree),
                                        meta=self._ocp.args.JsonSave(meta))
        self._manager.save(step, args=args)
        self._manager.wait_until_finished()

    def _clean_partial(self, step: int) -> None:
        """Remove the temporary folders of unfinished saves (and a step folder without its commit)."""
        if not os.path.isdir(self.directory):
            return
        for name in os.listdir(self.directory):
            if "tmp" in name and name.split(".")[0] == str(step) or ".orbax-checkpoint-tmp" in name:
                shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        try:
            self.reopen()
        except Exception:  # noqa: BLE001 - the folder may be gone; nothing more to clean
            pass

    def restore(self, template: Any, step: int) -> tuple[Any, dict]:
        """Restore checkpoint ``step`` into the structure of ``template``; return ``(state, meta)``."""
        target = _mark_empty(serialization.to_state_dict(jax.device_get(template)))
        target = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), target)
        args = self._ocp.args.Composite(state=self._ocp.args.StandardRestore(target),
                                        meta=self._ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        return serialization.from_state_dict(template, _unmark_empty(restored["state"])), dict(restored["meta"] or {})

    def restore_latest(self, template: Any, *, log: Callable[[str], None] = print) -> tuple[Any, dict, int, list[int]]:
        """The newest checkpoint that reads back: ``(state, meta, step, broken)``, ``broken``
        the newer steps that did not (see :meth:`quarantine`). Nothing is written.

        Raises:
          CheckpointError: no checkpoint, or none of them reads back.
        """
        steps = self.steps()
        if not steps:
            raise CheckpointError(f"no complete checkpoint in {self.directory}")
        broken = []
        for step in reversed(steps):
            try:
                state, meta = self.restore(template, step)
            except Exception as e:  # noqa: BLE001 - a truncated or corrupt file, whatever layer notices
                broken.append(step)
                log(f"checkpoint {step} in {self.directory} cannot be read ({_reason(e)}); trying an older one")
                continue
            return state, meta, step, broken
        raise CheckpointError(f"none of the checkpoints {steps} in {self.directory} can be read")

    def quarantine(self, steps: list[int], folder: str, *, log: Callable[[str], None] = print) -> None:
        """Move the unreadable checkpoints ``steps`` out of the way, into ``folder`` (kept, not deleted)."""
        os.makedirs(folder, exist_ok=True)
        for step in steps:
            dest = os.path.join(folder, f"{step}-{int(time.time())}")
            shutil.move(os.path.join(self.directory, str(step)), dest)
        log(f"moved the unreadable checkpoint(s) {steps} to {folder}")
        self.reopen()

    def close(self) -> None:
        self._manager.close()


def _reason(e: BaseException) -> str:
    """The first line of an exception, the innermost OSError's where there is one."""
    cause = e
    while cause is not None:
        if isinstance(cause, OSError) and cause.strerror:
            return f"{type(cause).__name__}: {cause.strerror}"
        cause = cause.__cause__ or cause.__context__
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


# Orbax drops empty containers and None; keep them with a placeholder so the tree round-trips.
_EMPTY = "__empty__"
_NONE = "__none__"


def _mark_empty(tree: Any) -> Any:
    if tree is None:
        return {_NONE: np.zeros((), np.int8)}
    if isinstance(tree, dict):
        if not tree:
            return {_EMPTY: np.zeros((), np.int8)}
        return {k: _mark_empty(v) for k, v in tree.items()}
    return tree


def _unmark_empty(tree: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_EMPTY}:
            return {}
        if set(tree) == {_NONE}:
            return None
        return {k: _unmark_empty(v) for k, v in tree.items()}
    return tree
