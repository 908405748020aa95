"""Adapters: one class per implementation under test, behind the `Adapter` contract."""

from __future__ import annotations

from harness.adapters.base import (
    Adapter,
    AdapterError,
    Availability,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
)
from harness.adapters.registry import BUILTIN, UnknownAdapter, load_adapter, names

__all__ = [
    "BUILTIN",
    "Adapter",
    "AdapterError",
    "CannotExpress",
    "Availability",
    "CallResult",
    "Capability",
    "ContextOptions",
    "ContextPair",
    "Handle",
    "UnknownAdapter",
    "load_adapter",
    "names",
]
