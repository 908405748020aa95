"""The whole NTLM catalogue against ``reference``, as a user runs it: ``sspi-harness run
--adapter reference`` in a fresh process (interpreter start, catalogue load, every case,
regression replays, results, JUnit, summary and the HTML report), wall clock."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time


def measure_catalogue(rounds: int = 3) -> float:
    """Best of ``rounds``, in seconds."""
    best = float("inf")
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "harness.cli", "run", "--adapter", "reference",
                 "--quiet", "--out", tmp],
                capture_output=True, text=True, timeout=600,
            )
            elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"the reference catalogue run failed: {proc.stderr.strip()[-300:]}")
        best = min(best, elapsed)
    return best
