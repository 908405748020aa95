"""The adapter contract every implementation under test is driven through.

Rules (DESIGN.md §2.1): an adapter returns a status and never raises for a protocol outcome;
native errors are mapped to real SEC_E_* values by one table per adapter, the native text
kept in ``CallResult.detail``; capabilities are declared, and ``available()`` says why not.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from harness.sspi.buffers import SecBufferDesc
from harness.sspi.sizes import SecPkgContextSizes


class Capability(enum.Flag):
    """What an adapter can express; a case needing a missing one is UNSUPPORTED."""

    NONE = 0
    SIGN = enum.auto()
    SEAL = enum.auto()
    MULTIPLE_DATA = enum.auto()
    READONLY = enum.auto()
    READONLY_WITH_CHECKSUM = enum.auto()
    RAW_DESCRIPTORS = enum.auto()  # malformed descriptors: ulVersion, NULL, lying lengths
    BAD_HANDLES = enum.auto()  # zeroed, garbage and deleted handles reach the package
    NTLMV1 = enum.auto()
    NTLMV2 = enum.auto()
    DATAGRAM = enum.auto()  # application-supplied sequence numbers
    NO_INTEGRITY = enum.auto()  # contexts negotiated without SIGN/SEAL
    SESSION_KEY = enum.auto()  # contexts from (flags, exported session key): vector replay
    NTLM_PRIMITIVES = enum.auto()  # key and response functions: vector replay

    @classmethod
    def parse(cls, name: str) -> Capability:
        try:
            return cls[name.upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown capability {name!r}") from None


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class Handle:
    """A CtxtHandle as the caller sees it: two pointer-sized integers."""

    lower: int
    upper: int

    ZERO: ClassVar[Handle]
    GARBAGE: ClassVar[Handle]


Handle.ZERO = Handle(0, 0)
Handle.GARBAGE = Handle(0xDEADBEEF, 0x0BADF00D)


@dataclass(frozen=True)
class ContextOptions:
    """What the client asks for when a context pair is established."""

    ntlm_version: str = "v2"  # "v2", "v1-ess" (v1 with client challenge) or "v1"
    integrity: bool = True
    confidentiality: bool = True
    key_exchange: bool = True
    key_bits: int = 128  # 128, 56 or 40
    datagram: bool = False
    lm_key: bool = False
    user: str = "User"
    domain: str = "Domain"
    password: str = "Password"


@dataclass
class ContextPair:
    """Both ends of an established context, as handles into the adapter."""

    client: Handle
    server: Handle
    flags: int = 0
    exported_session_key: bytes | None = None


@dataclass
class CallResult:
    """The outcome of one SSPI call: the status, pfQOP where the call has one, native text."""

    status: int
    qop: int | None = None
    detail: str = ""


class AdapterError(Exception):
    """The adapter could not do what was asked (not a protocol outcome): an ERROR case."""


class Adapter(ABC):
    """One implementation under test. Methods are named after the SSPI functions."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    capabilities: ClassVar[Capability] = Capability.NONE

    @classmethod
    def available(cls) -> Availability:
        """Whether the backend can load on this machine, and if not, why."""
        return Availability(True)

    @abstractmethod
    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        """Run a handshake between a client and a server context; a CallResult on failure."""

    @abstractmethod
    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]: ...

    @abstractmethod
    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult: ...

    @abstractmethod
    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult: ...

    @abstractmethod
    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult: ...

    @abstractmethod
    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult: ...

    @abstractmethod
    def delete_context(self, handle: Handle) -> CallResult: ...

    def from_session_key(self, flags: int, exported_session_key: bytes, *, client: bool) -> Handle:
        """A context built from negotiated flags and a session key (Capability.SESSION_KEY)."""
        raise AdapterError(f"{self.name} cannot build a context from a session key")

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release what the adapter holds; called once at the end of a run."""
