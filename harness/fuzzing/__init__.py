"""Fuzz campaigns with atheris: structure-aware targets, isolation, triage and regression vectors.

Modules (imported lazily: a fuzzer child must instrument ``harness`` before it is imported):

- ``decode``: fuzzer bytes → choices (atheris.FuzzedDataProvider), and back (seed writing);
- ``targets``: the targets (verify, decrypt, descriptor, handshake, differential, properties);
- ``tokens``: structure-aware NTLM token mutation with scapy's packet classes;
- ``seeds``: the seed corpora of ``fuzz/corpus``, written from readable scripts;
- ``properties``: Hypothesis properties used as a target through ``fuzz_one_input``;
- ``child``: the atheris entry point of one fuzzer process (``fuzz/fuzz_<target>.py``);
- ``engine``: ``run_campaign`` (fuzzer processes, live stats, crash artifacts, restarts);
- ``triage``: confirmation, deduplication, minimization of findings;
- ``regressions``: regression vectors (``vectors/regressions``) and ``replay_regressions``;
- ``cli``: ``main_fuzz``, the ``sspi-harness fuzz`` command;
- ``bench``: exec/s of each target against a bare atheris loop over the same adapter call.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TARGET_NAMES", "replay_regressions", "run_campaign"]

# Kept here (not in targets) so that naming a target imports nothing else.
TARGET_NAMES: tuple[str, ...] = (
    "verify",
    "decrypt",
    "descriptor",
    "handshake",
    "differential",
    "properties",
)


def run_campaign(*args: Any, **kwargs: Any) -> Any:
    """See harness.fuzzing.engine.run_campaign."""
    from harness.fuzzing.engine import run_campaign as run

    return run(*args, **kwargs)


def replay_regressions(*args: Any, **kwargs: Any) -> Any:
    """See harness.fuzzing.regressions.replay_regressions."""
    from harness.fuzzing.regressions import replay_regressions as replay

    return replay(*args, **kwargs)
