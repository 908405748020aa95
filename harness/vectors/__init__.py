"""Golden vectors (DESIGN.md §2.3): generate them from checked-in spec data, lint and check them.

``generate`` rewrites ``vectors/*_test.json`` from ``vectors/sources``; ``lint`` finds problems in
vector files without raising; ``check`` replays them against an adapter.
"""

from __future__ import annotations

from harness.vectors.check import VectorResult, check, default_vector_paths
from harness.vectors.lint import lint

__all__ = ["VectorResult", "check", "default_vector_paths", "lint"]
