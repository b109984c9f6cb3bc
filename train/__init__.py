"""Compiled training steps, data and the training command; composes `divergences` and `models`."""
