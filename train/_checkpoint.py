"""Checkpoints of a training run with orbax, safe against a kill at any moment.

Orbax writes each checkpoint into a temporary folder and renames it into place
only when every file is on disk, so a kill during a save leaves at most an
unfinished temporary folder, which :meth:`CheckpointManager.latest_step`
ignores: the last *complete* checkpoint is what ``--resume`` reads. The state
is saved whole (step, parameters, spectral-norm statistics, optimizer
states); the PRNG key is not stored because every key is
``fold_in(key(seed), step)``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from flax import serialization

__all__ = ["Checkpointer"]


class Checkpointer:
    """A thin wrapper over :class:`orbax.checkpoint.CheckpointManager`.

    Args:
      directory: where the numbered checkpoints live.
      max_to_keep: how many recent checkpoints to keep.
    """

    def __init__(self, directory: str, *, max_to_keep: int = 2):
        import orbax.checkpoint as ocp  # lazy: orbax is in the `train` extra and slow to import

        self._ocp = ocp
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                               enable_async_checkpointing=False)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any) -> None:
        tree = serialization.to_state_dict(jax.device_get(state))
        self._manager.save(int(step), args=self._ocp.args.StandardSave(_mark_empty(tree)))
        self._manager.wait_until_finished()

    def restore(self, template: Any, step: int | None = None) -> Any:
        """Restore into the structure of ``template`` (a state of the same run)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no complete checkpoint in {self.directory}")
        target = _mark_empty(serialization.to_state_dict(jax.device_get(template)))
        target = jax.tree.map(lambda x: np.zeros(np.shape(x), np.asarray(x).dtype), target)
        restored = self._manager.restore(step, args=self._ocp.args.StandardRestore(target))
        return serialization.from_state_dict(template, _unmark_empty(restored))

    def close(self) -> None:
        self._manager.close()


# Orbax drops empty containers; keep them with a placeholder so the tree round-trips.
_EMPTY = "__empty__"


def _mark_empty(tree: Any) -> Any:
    if isinstance(tree, dict):
        if not tree:
            return {_EMPTY: np.zeros((), np.int8)}
        return {k: _mark_empty(v) for k, v in tree.items()}
    return tree


def _unmark_empty(tree: Any) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_EMPTY}:
            return {}
        return {k: _unmark_empty(v) for k, v in tree.items()}
    return tree
