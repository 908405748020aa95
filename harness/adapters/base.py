"""The adapter contract every implementation under test is driven through.

Rules (DESIGN.md §2.1): an adapter returns a status and never raises for a protocol outcome;
native errors are mapped to real SEC_E_* values by one table per adapter, the native text
kept in ``CallResult.detail``; capabilities are declared, and ``available()`` says why not.
"""

from __future__ import annotations

import enum
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import SecStatus
from harness.sspi.sizes import SecPkgContextSizes


class Capability(enum.Flag):
    """What an adapter can express; a case needing a missing one is UNSUPPORTED."""

    NONE = 0
    SIGN = enum.auto()
    SEAL = enum.auto()
    MULTIPLE_DATA = enum.auto()
    READONLY = enum.auto()  # SECBUFFER_READONLY honoured by EncryptMessage/DecryptMessage
    READONLY_WITH_CHECKSUM = enum.auto()  # the same for SECBUFFER_READONLY_WITH_CHECKSUM
    SIGN_READONLY = enum.auto()  # both flags honoured by MakeSignature/VerifySignature too
    SIZES = enum.auto()  # QueryContextAttributes(SECPKG_ATTR_SIZES) is answered
    RAW_DESCRIPTORS = enum.auto()  # malformed descriptors: ulVersion, NULL, lying lengths
    BAD_HANDLES = enum.auto()  # zeroed, garbage and deleted handles reach the package
    NTLMV1 = enum.auto()  # NTLMv1 with extended session security (client challenge)
    NTLMV1_NO_ESS = enum.auto()  # NTLMv1 without extended session security, without LM_KEY
    NTLMV2 = enum.auto()
    DATAGRAM = enum.auto()  # application-supplied sequence numbers
    NO_INTEGRITY = enum.auto()  # contexts negotiated without SIGN/SEAL
    SESSION_KEY = enum.auto()  # contexts from (flags, exported session key): vector replay
    NTLM_PRIMITIVES = enum.auto()  # key and response functions: vector replay
    CLIENT = enum.auto()  # can play the client against another implementation's server
    SERVER = enum.auto()  # can play the server against another implementation's client
    # pfQOP as a C caller sees it: CallResult.qop is what the package wrote there, or None
    # when it left the caller's value untouched (byte APIs have no pfQOP to leave alone).
    QOP_OUT = enum.auto()

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
    # The tokens exchanged, in order, as (sender, token): reports turn them into pcaps.
    transcript: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class CallResult:
    """The outcome of one SSPI call: the status, pfQOP where the call has one, native text."""

    status: int
    qop: int | None = None
    detail: str = ""
    transcript: list[tuple[str, bytes]] = field(default_factory=list)  # of a failed handshake


class Party(ABC):
    """One side of a handshake in progress, driven token by token.

    ``step`` takes the peer's last token (None for the client's first call) and returns a
    status and the token to send (b"" when there is none): SEC_I_CONTINUE_NEEDED while more
    legs are needed, SEC_E_OK when this side is done, an error status when it failed. Once
    done, ``handle`` is the context handle in the adapter that made the party.
    """

    @abstractmethod
    def step(self, token: bytes | None) -> tuple[int, bytes]: ...

    @property
    @abstractmethod
    def handle(self) -> Handle: ...

    @property
    def flags(self) -> int:
        """The negotiated NTLM flags, where the implementation exposes them (else 0)."""
        return 0

    @property
    def exported_session_key(self) -> bytes | None:
        """The exported session key, where the implementation exposes it."""
        return None

    @property
    def detail(self) -> str:
        """The implementation's own words about the last failed step, if any."""
        return ""


class RecordingParty(Party):
    """A Party whose ``step`` records what it learns in attributes, so that each adapter
    writes only the step: ``_handle`` once done, ``_flags``, ``_session_key`` and ``_detail``.
    A subclass overrides a property where its implementation holds the value itself."""

    def __init__(self) -> None:
        self._handle: Handle | None = None
        self._flags = 0
        self._session_key: bytes | None = None
        self._detail = ""

    @property
    def handle(self) -> Handle:
        if self._handle is None:
            raise AdapterError("the handshake is not complete")
        return self._handle

    @property
    def flags(self) -> int:
        return self._flags

    @property
    def exported_session_key(self) -> bytes | None:
        return self._session_key

    @property
    def detail(self) -> str:
        return self._detail


C = TypeVar("C")


class HandleTable(Generic[C]):
    """Handles for an implementation that has none: contexts are kept in a table under
    ``Handle(n, handle_tag)`` and unknown handles are answered here with
    SEC_E_INVALID_HANDLE (so such an adapter does not claim Capability.BAD_HANDLES)."""

    handle_tag: ClassVar[int]  # dwUpper of the adapter's handles, naming the adapter
    unknown_handle: ClassVar[str] = "not in the adapter's handle table"  # the detail

    def __init__(self) -> None:
        self._contexts: dict[Handle, C] = {}
        self._ids = itertools.count(1)

    def _add(self, context: C) -> Handle:
        """A new handle for an established context."""
        handle = Handle(next(self._ids), self.handle_tag)
        self._contexts[handle] = context
        return handle

    def _lookup(self, handle: Handle) -> C | CallResult:
        """The context under a handle, or the call's SEC_E_INVALID_HANDLE result."""
        context = self._contexts.get(handle)
        if context is None:
            return CallResult(SecStatus.SEC_E_INVALID_HANDLE, detail=self.unknown_handle)
        return context

    def _remove(self, handle: Handle) -> CallResult:
        """DeleteSecurityContext on the table: the implementation has nothing to delete."""
        if self._contexts.pop(handle, None) is None:
            return CallResult(SecStatus.SEC_E_INVALID_HANDLE, detail=self.unknown_handle)
        return CallResult(SecStatus.SEC_E_OK)


class AdapterError(Exception):
    """The adapter could not do what was asked (not a protocol outcome): an ERROR case."""


class CannotExpress(AdapterError):
    """The implementation's API has no way to say what the case asks (a TOKEN buffer to a
    function that returns the signature, read-only flags to a function that takes bytes, an
    option it cannot request): an UNSUPPORTED case, with this text as the reason."""


class Adapter(ABC):
    """One implementation under test. Methods are named after the SSPI functions."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    capabilities: ClassVar[Capability] = Capability.NONE
    isolate: ClassVar[bool] = False  # run in a worker subprocess by default (native code)

    @classmethod
    def available(cls) -> Availability:
        """Whether the backend can load on this machine, and if not, why."""
        return Availability(True)

    def client(self, options: ContextOptions) -> Party:
        """A client party (Capability.CLIENT)."""
        raise AdapterError(f"{self.name} cannot act as a client against another implementation")

    def server(self, options: ContextOptions) -> Party:
        """A server party that knows the credentials in ``options`` (Capability.SERVER)."""
        raise AdapterError(f"{self.name} cannot act as a server against another implementation")

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        """Run a handshake between a client and a server context of this adapter; a CallResult
        on failure. The default drives ``client`` and ``server`` against each other."""
        return handshake(self.client(options), self.server(options))

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


MAX_LEGS = 10


def handshake(client: Party, server: Party) -> ContextPair | CallResult:
    """Shuttle tokens between two parties, possibly of different adapters, until both are done."""
    sides = (client, server)
    done = [False, False]
    token: bytes | None = None
    transcript: list[tuple[str, bytes]] = []
    for leg in range(MAX_LEGS):
        turn = leg % 2
        role = ("client", "server")[turn]
        status, out = sides[turn].step(token)
        if out:
            transcript.append((role, bytes(out)))
        if status not in (0, 0x00090312):  # SEC_E_OK, SEC_I_CONTINUE_NEEDED
            said = sides[turn].detail
            where = f"{role} failed at handshake leg {leg + 1}"
            detail = f"{where}: {said}" if said else where
            return CallResult(status, detail=detail, transcript=transcript)
        done[turn] = status == 0
        if all(done):
            break
        if not out:
            detail = f"{role} sent no token at leg {leg + 1}"
            return CallResult(0x80090308, detail=detail, transcript=transcript)
        token = out
    else:
        detail = f"handshake did not finish in {MAX_LEGS} legs"
        return CallResult(0x80090304, detail=detail, transcript=transcript)
    return ContextPair(
        client.handle,
        server.handle,
        client.flags or server.flags,
        client.exported_session_key or server.exported_session_key,
        transcript,
    )
