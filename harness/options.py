"""Options shared by the ``sspi-harness`` command and the pytest plugin, defined once.

Each option is spelled ``--NAME`` on the command line (``sspi-harness run``) and
``--sspi-NAME`` under pytest (the ``sspi-harness`` option group of ``harness.pytest_plugin``),
with the same metavar, type, choices and default. The help text is shared too, except where
the two front ends do different things with the value (``help`` is the command's,
``pytest_help`` the plugin's). ``select`` gives ``--case`` / ``--sspi-case`` their one meaning.

This module is imported by the pytest plugin in every pytest run of an environment where
sspi-harness is installed, so it imports nothing from the harness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

PROFILES = ("documented", "windows")
DEFAULT_PROFILE = "documented"
PYTEST_PREFIX = "sspi-"
PYTEST_GROUP = "sspi-harness"


def _positive(kind: type[float] | type[int], text: str) -> Any:
    import argparse

    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number greater than zero."""
    return float(_positive(float, text))


def positive_int(text: str) -> int:
    """argparse type: a whole number greater than zero."""
    return int(_positive(int, text))


@dataclass(frozen=True)
class Option:
    """One option of both front ends; ``arguments`` gives the keywords of ``add_argument`` /
    pytest's ``addoption``."""

    name: str
    help: str
    pytest_help: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    default: Any = None
    type: Callable[[str], Any] | None = None
    action: str | None = None

    @property
    def cli_flag(self) -> str:
        return f"--{self.name}"

    @property
    def pytest_flag(self) -> str:
        return f"--{PYTEST_PREFIX}{self.name}"

    @property
    def pytest_dest(self) -> str:
        return (PYTEST_PREFIX + self.name).replace("-", "_")

    def arguments(self, *, pytest: bool = False, **override: Any) -> dict[str, Any]:
        """Keywords for ``add_argument`` (or ``addoption`` with ``pytest=True``)."""
        kwargs: dict[str, Any] = {
            "help": self.pytest_help if pytest and self.pytest_help else self.help,
            "metavar": self.metavar,
            "choices": self.choices,
            "default": self.default,
            "type": self.type,
            "action": self.action,
        }
        if pytest:
            kwargs["dest"] = self.pytest_dest
        kwargs.update(override)
        return {key: value for key, value in kwargs.items() if value is not None}


ADAPTER = Option(
    "adapter",
    help="adapter name, package.module:Class, or 'all' (repeatable; default all)",
    pytest_help="run the scenario catalogue against this adapter: a registry name "
    "(see 'sspi-harness adapters') or package.module:Class",
    metavar="NAME",
)
PROFILE = Option(
    "profile",
    help="which expectations are strict (default: documented)",
    choices=PROFILES,
    default=DEFAULT_PROFILE,
)
CASE = Option(
    "case",
    help="run only cases matching this glob (repeatable)",
    pytest_help="run only catalogue cases whose id is PATTERN or matches it as a glob "
    "(* and ? only; brackets stand for themselves; repeatable)",
    metavar="PATTERN",
    action="append",
)
BASELINE = Option(
    "baseline",
    help="gate on a reviewed baseline: exit 1 on a regression or an unexpected pass",
    pytest_help="a reviewed baseline: its expected failures are strict xfail (with its "
    "reason), so a regression or an unexpected pass fails",
    metavar="FILE",
    type=Path,
)
ISOLATE = Option(
    "isolate",
    help="run every adapter in a worker subprocess (native adapters always are)",
    pytest_help="run the adapter in a worker subprocess (native adapters always are)",
    action="store_true",
)
TIMEOUT = Option(
    "timeout",
    help="per-call timeout in an isolated worker, in seconds (default 5)",
    metavar="S",
    type=positive_float,
    default=5.0,
)
NO_PEERS = Option(
    "no-peers",
    help="skip the runs against the reference and the interop matrix",
    pytest_help="skip the runs against the reference (case@as-client, case@as-server)",
    action="store_true",
)

NATIVE_LIB = Option(
    "native-lib",
    help="the SSPI shared library the native adapter loads (wins over "
    "$SSPI_HARNESS_NATIVE_LIB; default secur32.dll, or sspilib's libsspi)",
    metavar="PATH",
)

# The plugin's options, in the order ``pytest --help`` lists them.
PYTEST_OPTIONS = (ADAPTER, PROFILE, CASE, BASELINE, ISOLATE, TIMEOUT, NO_PEERS)

# One pytest marker per adapter capability (``harness.adapters.base.Capability``, less NONE):
# a catalogue item carries the markers of the capabilities its case needs. Spelled out here
# so that registering them imports nothing; tests/test_pytest_plugin.py keeps it in step.
CAPABILITY_MARKERS: dict[str, str] = {
    "SIGN": "MakeSignature / VerifySignature",
    "SEAL": "EncryptMessage / DecryptMessage",
    "MULTIPLE_DATA": "several SECBUFFER_DATA buffers in one message",
    "READONLY": "SECBUFFER_READONLY honoured by EncryptMessage / DecryptMessage",
    "READONLY_WITH_CHECKSUM": "SECBUFFER_READONLY_WITH_CHECKSUM honoured when sealing",
    "SIGN_READONLY": "both read-only flags honoured by MakeSignature / VerifySignature",
    "SIZES": "QueryContextAttributes(SECPKG_ATTR_SIZES)",
    "RAW_DESCRIPTORS": "malformed descriptors: ulVersion, NULL, lying lengths",
    "BAD_HANDLES": "zeroed, garbage and deleted handles",
    "NTLMV1": "NTLMv1 with extended session security",
    "NTLMV1_NO_ESS": "NTLMv1 without extended session security",
    "NTLMV2": "NTLMv2",
    "DATAGRAM": "datagram contexts: application-supplied sequence numbers",
    "NO_INTEGRITY": "contexts negotiated without SIGN / SEAL",
    "SESSION_KEY": "contexts from (flags, exported session key)",
    "NTLM_PRIMITIVES": "key and response functions",
    "CLIENT": "the adapter as client against the reference's server (case@as-client)",
    "SERVER": "the adapter as server against the reference's client (case@as-server)",
    "QOP_OUT": "pfQOP seen as a C caller sees it (written, or left untouched)",
}


def marker_name(capability: str) -> str:
    """``SIGN_READONLY`` -> ``sspi_sign_readonly``."""
    return "sspi_" + capability.lower()


class _Selectable(Protocol):
    @property
    def id(self) -> str: ...


J = TypeVar("J", bound=_Selectable)


def conformance_case_id(job: Any) -> str | None:
    """The catalogue case id of a job that runs the adapter alone (``base_id`` of ``select``
    for runner jobs): ``sanity[ntlmv2]`` then names both ``sanity[start]`` and
    ``sanity[end]``."""
    return job.planned.case.id if job.kind == "conformance" else None


class NoMatch(ValueError):
    """No case matches the patterns given; the text is one line."""


def select(
    jobs: Sequence[J],
    patterns: Sequence[str] | None,
    *,
    base_id: Callable[[J], str | None] | None = None,
) -> list[J]:
    """``--case`` / ``--sspi-case``: jobs whose id equals a pattern, else whose id matches it
    as a glob (``*`` and ``?`` only: the brackets of case ids stand for themselves), or whose
    ``base_id`` (for runner jobs: ``conformance_case_id``) equals it; in the order of
    ``jobs``."""
    from harness.report.baseline import case_matches

    if not patterns:
        return list(jobs)
    chosen: list[J] = []
    for pattern in patterns:
        exact = [j for j in jobs if j.id == pattern]
        chosen += exact or [
            j
            for j in jobs
            if case_matches(pattern, j.id) or (base_id is not None and base_id(j) == pattern)
        ]
    if not chosen:
        raise NoMatch(f"no case matches {', '.join(patterns)}")
    unique = {id(j) for j in chosen}
    return [j for j in jobs if id(j) in unique]
