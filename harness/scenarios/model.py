"""What a scenario is: an id, its source, the capabilities it needs, and steps with
expectations. A scenario expands into one case per context variant."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.adapters.base import Capability, ContextOptions

PROFILES = ("documented", "windows")

# Context variants a scenario can run under, and what each needs from an adapter.
VARIANTS: dict[str, tuple[ContextOptions, Capability]] = {
    "ntlmv2": (ContextOptions(ntlm_version="v2"), Capability.NTLMV2),
    "ntlmv1-ess": (ContextOptions(ntlm_version="v1-ess"), Capability.NTLMV1),
    "ntlmv1": (ContextOptions(ntlm_version="v1"), Capability.NTLMV1 | Capability.NTLMV1_NO_ESS),
}


@dataclass(frozen=True)
class Expectation:
    """An expected status per profile; ``evidence`` says where each comes from."""

    by_profile: dict[str, str]
    evidence: dict[str, str] = field(default_factory=dict)

    def for_profile(self, profile: str) -> str:
        return self.by_profile.get(profile, self.by_profile["documented"])


@dataclass(frozen=True)
class BufferSpec:
    """How to build one SecBuffer for a step (see data/README.md for the fields)."""

    type: str
    flags: tuple[str, ...] = ()
    text: str | None = None
    hex: str | None = None
    size: int | None = None
    source: str | None = None  # name of a saved descriptor
    index: int | None = None  # buffer index in the saved descriptor (default: same position)
    xor: tuple[int, int] | None = None  # (offset, value)
    truncate: int | None = None
    append: str | None = None  # hex appended
    null: bool = False  # pvBuffer NULL
    cb: int | None = None  # a cbBuffer that may lie


@dataclass(frozen=True)
class Step:
    op: str  # sizes | sign | verify | seal | unseal | delete
    by: str = "client"
    handle: str = "valid"  # valid | zero | garbage | other (the same end of a second context)
    buffers: tuple[BufferSpec, ...] = ()
    qop: int = 0
    seqno: int = 0
    version: int | None = None  # ulVersion override
    null_buffers: bool = False
    count: int | None = None  # cBuffers override
    save: str | None = None
    expect: Expectation | None = None
    expect_buffers: tuple[tuple[int, str], ...] = ()  # (index, hex) after the call
    expect_sizes: dict[str, dict[str, int]] | None = None  # profile -> expected members
    expect_unchanged: bool = False  # a failed call must leave every buffer as it was given
    # pfQOP after a successful call, per profile: a value, "unchanged" or "any".
    expect_qop: dict[str, int | str] | None = None


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    source_ref: str
    source_quote: str
    source_url: str
    steps: tuple[Step, ...]
    needs: Capability = Capability.NONE
    variants: tuple[str, ...] = tuple(VARIANTS)
    context: dict[str, object] = field(default_factory=dict)
    group: str = ""
    # Parameterised scenarios: one (values, steps) pair per combination of parameter values.
    expansions: tuple[tuple[tuple[tuple[str, object], ...], tuple[Step, ...]], ...] = ()


@dataclass(frozen=True)
class Case:
    """One scenario under one variant: the unit a runner executes and reports."""

    id: str
    scenario: Scenario
    variant: str
    options: ContextOptions
    needs: Capability
    steps: tuple[Step, ...] = ()
