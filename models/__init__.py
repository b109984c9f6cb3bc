"""Flax modules (generators, critics, discriminators) used by `divergences` and `train`.

This package imports nothing else of the project.
"""
