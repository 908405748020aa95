"""The reference adapter: our NTLM package from MS-NLMP, in-process. It is the oracle."""

from __future__ import annotations

from harness.adapters.base import (
    Adapter,
    CallResult,
    Capability,
    ContextOptions,
    Handle,
    Party,
    RecordingParty,
)
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.handshake import (
    Credentials,
    Established,
    HandshakeError,
    NtlmClient,
    NtlmServer,
    Randomness,
)
from harness.ntlm.messages import MessageError
from harness.ntlm.package import NtlmPackage
from harness.ntlm.session import SessionSecurity
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import SecStatus
from harness.sspi.sizes import SecPkgContextSizes

BASE_FLAGS = F.UNICODE | F.REQUEST_TARGET | F.NTLM | F.ALWAYS_SIGN | F.VERSION


def requested_flags(options: ContextOptions) -> int:
    """The NEGOTIATE flags a client sends for these options (§2.2.2.5)."""
    flags = BASE_FLAGS
    if options.ntlm_version in ("v2", "v1-ess"):
        flags |= F.EXTENDED_SESSIONSECURITY
    if options.integrity or options.confidentiality:
        flags |= F.SIGN
    if options.confidentiality:
        flags |= F.SEAL
    if options.key_exchange:
        flags |= F.KEY_EXCH
    if options.key_bits == 128:
        flags |= F.NEGOTIATE_128 | F.NEGOTIATE_56
    elif options.key_bits == 56:
        flags |= F.NEGOTIATE_56
    if options.datagram:
        flags |= F.DATAGRAM
    if options.lm_key:
        flags |= F.LM_KEY
    return int(flags)


class _ReferenceParty(RecordingParty):
    """A reference client or server; once done, its context is in the package's table."""

    def __init__(self, package: NtlmPackage, ntlm: NtlmClient | NtlmServer, *, is_client: bool):
        super().__init__()
        self.package = package
        self.ntlm = ntlm
        self.is_client = is_client
        self._legs = 0

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        """Client: NEGOTIATE, then AUTHENTICATE. Server: CHALLENGE, then accept."""
        self._legs += 1
        try:
            if isinstance(self.ntlm, NtlmClient):
                if self._legs == 1:
                    return SecStatus.SEC_I_CONTINUE_NEEDED, self.ntlm.negotiate()
                out = self.ntlm.authenticate(token or b"")
            else:
                if self._legs == 1:
                    return SecStatus.SEC_I_CONTINUE_NEEDED, self.ntlm.challenge(token or b"")
                self.ntlm.accept(token or b"")
                out = b""
        except HandshakeError as exc:
            self._detail = str(exc)
            return exc.status, b""
        except MessageError as exc:
            self._detail = f"malformed message: {exc}"
            return SecStatus.SEC_E_INVALID_TOKEN, b""
        established = self.ntlm.established
        assert established is not None
        self._handle = Handle(*self.package.add(established, is_client=self.is_client))
        return SecStatus.SEC_E_OK, out

    @property
    def flags(self) -> int:
        """The flags of the established context (0 before)."""
        established = self.ntlm.established
        return established.flags if established else 0

    @property
    def exported_session_key(self) -> bytes | None:
        """The established context's key (None before)."""
        established = self.ntlm.established
        return established.exported_session_key if established else None


class ReferenceAdapter(Adapter):
    name = "reference"
    description = "sspi-harness's own NTLM SSP, written from MS-NLMP (the oracle)"
    capabilities = (
        Capability.SIGN
        | Capability.SEAL
        | Capability.MULTIPLE_DATA
        | Capability.READONLY
        | Capability.READONLY_WITH_CHECKSUM
        | Capability.SIGN_READONLY
        | Capability.SIZES
        | Capability.NTLMV1_NO_ESS
        | Capability.RAW_DESCRIPTORS
        | Capability.BAD_HANDLES
        | Capability.NTLMV1
        | Capability.NTLMV2
        | Capability.DATAGRAM
        | Capability.NO_INTEGRITY
        | Capability.SESSION_KEY
        | Capability.NTLM_PRIMITIVES
        | Capability.CLIENT
        | Capability.SERVER
        | Capability.QOP_OUT
    )

    def __init__(
        self, randomness: Randomness | None = None, *, dns_domain: str | None = "domain.test"
    ) -> None:
        self.package = NtlmPackage()
        self.randomness = randomness
        self.dns_domain = dns_domain  # None: a CHALLENGE without the optional DNS AV pairs

    def client(self, options: ContextOptions) -> Party:
        creds = Credentials(options.user, options.domain, options.password)
        ntlm = NtlmClient(
            creds,
            requested_flags(options),
            ntlm_v2=options.ntlm_version == "v2",
            randomness=self.randomness,
        )
        return _ReferenceParty(self.package, ntlm, is_client=True)

    def server(self, options: ContextOptions) -> Party:
        users = {(options.user, options.domain): options.password}
        server = NtlmServer(users, randomness=self.randomness, dns_domain=self.dns_domain)
        return _ReferenceParty(self.package, server, is_client=False)

    def from_session_key(self, flags: int, exported_session_key: bytes, *, client: bool) -> Handle:
        session = SessionSecurity(flags, exported_session_key, is_client=client)
        established = Established(flags, exported_session_key, True, session)
        return self._handle(self.package.add(established, is_client=client))

    @staticmethod
    def _handle(raw: tuple[int, int]) -> Handle:
        return Handle(*raw)

    @staticmethod
    def _raw(handle: Handle) -> tuple[int, int]:
        return (handle.lower, handle.upper)

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        status, sizes = self.package.query_sizes(self._raw(handle))
        return CallResult(status), sizes

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return CallResult(self.package.make_signature(self._raw(handle), qop, message, seqno))

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        status, qop = self.package.verify_signature(self._raw(handle), message, seqno)
        return CallResult(status, qop)

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return CallResult(self.package.encrypt_message(self._raw(handle), qop, message, seqno))

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        status, qop = self.package.decrypt_message(self._raw(handle), message, seqno)
        return CallResult(status, qop)

    def delete_context(self, handle: Handle) -> CallResult:
        return CallResult(self.package.delete_context(self._raw(handle)))
