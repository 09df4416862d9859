"""Samplers: the protocol, the registry and the built-in strategies."""

from .base import Sampler, SelectionContext

__all__ = ["Sampler", "SelectionContext"]
