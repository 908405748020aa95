"""The scenario catalogue: scenarios are data (TOML under ``data/``), expanded into cases."""

from __future__ import annotations

from harness.scenarios.loader import CatalogueError, load_catalogue
from harness.scenarios.model import VARIANTS, BufferSpec, Case, Expectation, Scenario, Step

__all__ = [
    "VARIANTS",
    "BufferSpec",
    "Case",
    "CatalogueError",
    "Expectation",
    "Scenario",
    "Step",
    "load_catalogue",
]
