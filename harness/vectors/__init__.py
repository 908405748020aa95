"""Golden vectors (DESIGN.md §2.3): generate them from checked-in spec data, lint and check them.

``generate`` rewrites ``vectors/*_test.json`` from ``vectors/sources``; ``lint`` finds problems in
vector files without raising; ``check`` replays them against an adapter. The names are imported
lazily so that ``python -m harness.vectors.<module>`` does not import its own module twice.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "VectorResult": "harness.vectors.check",
    "check": "harness.vectors.check",
    "default_vector_paths": "harness.vectors.check",
    "lint": "harness.vectors.lint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
