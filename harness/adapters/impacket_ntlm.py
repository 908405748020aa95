"""The impacket adapter: impacket's NTLM (``impacket.ntlm``) driven the way impacket drives it.

impacket is a client library, not an SSP, so this module translates (and says where it cannot):

- Client: ``getNTLMSSPType1(signingRequired=..., use_ntlmv2=...)`` then
  ``getNTLMSSPType3(type1, challenge, user, password, domain, use_ntlmv2=...)``, which returns
  the AUTHENTICATE message and the exported session key; the negotiated flags are that
  message's ``flags``, as impacket's DCE/RPC transport (``dcerpc/v5/rpcrt.py``) takes them.
  Those two parameters are all impacket offers, so only these options can be honoured:
  integrity, confidentiality and key exchange all on (``signingRequired=True``: SIGN, SEAL,
  KEY_EXCH, ALWAYS_SIGN) or all off; 128-bit keys (the NEGOTIATE always asks 128 and 56);
  ``v2`` or ``v1-ess`` (it always asks extended session security); no datagram, no LM_KEY.
  Anything else raises CannotExpress (UNSUPPORTED) rather than run a different variant.
- Server: impacket has none that can be driven token by token (``smbserver``'s NTLM code is
  inlined in the SMB session-setup handlers, NTLMv2 only, never offers SEAL and never applies
  NTLM SIGN/SEAL). So the adapter declares CLIENT only, and ``establish`` pairs an impacket
  client with a reference server: the server side of every case is the reference.
- Session security mirrors rpcrt.py: with extended session security, keys from impacket's
  ``SIGNKEY``/``SEALKEY`` (mode "Client" / "Server") and one ``ARC4.new(key).encrypt`` handle
  per direction; without it, the exported session key for everything and one shared handle
  (rpcrt does not call SEALKEY there). Sending is ``ntlm.SIGN`` / ``ntlm.SEAL`` with the
  context's sequence number, incremented afterwards.
- Verification: impacket has no verify function, and rpcrt.py never checks what it receives
  (its receive path computes a signature it discards, "TODO: FIX THIS"). The adapter computes
  the expected signature with impacket's own primitives and compares bytes: VerifySignature is
  ``ntlm.SIGN`` over the message with the receiving key, handle and sequence number;
  DecryptMessage is the receiving handle over the ciphertext, then ``ntlm.SIGN`` over the
  plaintext with that handle (the order of ``ntlm.SEAL``). A byte comparison can only say
  SEC_E_OK or SEC_E_MESSAGE_ALTERED. Sequence numbers: rpcrt.py keeps one counter for both
  directions and, with ESS, does not increment it on receipt (its receive values are never
  used); the adapter keeps the receiving direction's own counter under ESS (one shared counter
  without ESS, as rpcrt) and, like rpcrt, advances it and the handle on every received message,
  accepted or not (an ARC4 ``encrypt`` method cannot be rewound).
- ``from_session_key`` (Capability.SESSION_KEY) builds the same state from given flags and key;
  with ``client=False`` the directions are swapped, which is how the seal vectors' receiving
  side is replayed.
- Descriptors: impacket signs and encrypts byte strings the caller builds, as rpcrt builds a
  PDU. DATA buffers are joined in array order. ``ntlm.SEAL(..., messageToSign,
  messageToEncrypt, ...)`` takes the signed and the encrypted bytes apart, which is how rpcrt
  signs a header it leaves in clear: for EncryptMessage/DecryptMessage, READONLY_WITH_CHECKSUM
  buffers are signed and not encrypted, READONLY buffers neither. ``ntlm.SIGN`` takes one
  message, so MakeSignature/VerifySignature with read-only attributes raise CannotExpress (no
  Capability.SIGN_READONLY). The 16-byte signature goes to the TOKEN buffer; a missing or
  short TOKEN for MakeSignature/EncryptMessage, or no TOKEN for VerifySignature/DecryptMessage,
  has no impacket counterpart (impacket returns signatures and takes bytes) and raises
  CannotExpress before impacket is called; a short received signature is compared as it is.
- fQOP: impacket has none; SECQOP_WRAP_NO_ENCRYPT selects ``ntlm.SIGN`` instead of
  ``ntlm.SEAL`` (rpcrt's PKT_INTEGRITY instead of PKT_PRIVACY), other values are not passed on.
  MessageSeqNo has no counterpart (impacket's callers number messages themselves).
- impacket has no handles: the adapter keeps a table and answers unknown handles itself, so it
  does not claim Capability.BAD_HANDLES. It has no QueryContextAttributes either: SIZES raises
  CannotExpress rather than return invented values (no Capability.SIZES).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.adapters.base import (
    Adapter,
    Availability,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
    HandleTable,
    Party,
    RecordingParty,
    handshake,
)
from harness.adapters.byte_api import (
    READONLY_ATTRIBUTES,
    as_bytes,
    data_of,
    encrypted,
    input_token,
    joined,
    output_token,
    refuse_attributes,
    signed,
    write_signature,
)
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECQOP_WRAP_NO_ENCRYPT
from harness.sspi.constants import SecStatus as S
from harness.sspi.sizes import SecPkgContextSizes

HANDLE_TAG = 0x494D504B  # dwUpper of our handles: "IMPK"

# Exceptions raised inside impacket → SECURITY_STATUS, keyed by qualified class name (builtins
# without their module) and looked up along the MRO. impacket raises plain Python exceptions,
# none of which names a status; the text is kept in CallResult.detail.
STATUS_BY_EXCEPTION: dict[str, int] = {
    # getNTLMSSPType3 on a CHALLENGE it cannot handle, e.g. computeResponseNTLMv2 indexing an
    # absent MsvAvDnsComputerName AV pair ("'NoneType' object is not subscriptable"): a failure
    # inside the client, which InitializeSecurityContext reports as an internal error.
    "TypeError": S.SEC_E_INTERNAL_ERROR,
    # impacket's Structure parser on a truncated CHALLENGE ("unpack requires a buffer of ...
    # bytes"): the token is not a CHALLENGE_MESSAGE.
    "struct.error": S.SEC_E_INVALID_TOKEN,
    # Structure's own bare Exception ("Unpacked data doesn't match constant value", "Trying to
    # pack None"): impacket could not encode or decode a message.
    "Exception": S.SEC_E_INTERNAL_ERROR,
}


def _qualified(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def status_of(exc: BaseException) -> CallResult:
    """Map an exception from impacket through STATUS_BY_EXCEPTION, keeping its text."""
    detail = f"impacket {_qualified(type(exc))}: {exc}"
    for cls in type(exc).__mro__:
        if _qualified(cls) in STATUS_BY_EXCEPTION:
            return CallResult(STATUS_BY_EXCEPTION[_qualified(cls)], detail=detail)
    return CallResult(S.SEC_E_INTERNAL_ERROR, detail=detail)


def _signing_required(options: ContextOptions) -> bool:
    """The getNTLMSSPType1 argument for these options, or CannotExpress if none matches."""
    wanted = {options.integrity, options.confidentiality, options.key_exchange}
    problems = []
    if len(wanted) != 1:
        problems.append(
            "integrity, confidentiality and key exchange on or off together "
            "(signingRequired sets SIGN|SEAL|KEY_EXCH|ALWAYS_SIGN as one)"
        )
    if options.ntlm_version not in ("v2", "v1-ess"):
        problems.append(f"ntlm_version {options.ntlm_version!r} (it always asks for ESS)")
    if options.key_bits != 128:
        problems.append(f"{options.key_bits}-bit keys (it always asks NEGOTIATE_128|56)")
    if options.datagram:
        problems.append("datagram mode")
    if options.lm_key:
        problems.append("LM_KEY")
    if problems:
        raise CannotExpress("impacket's getNTLMSSPType1 cannot request " + "; ".join(problems))
    return options.integrity


@dataclass
class _Direction:
    """One direction's state, as rpcrt.py keeps it: signing key, sealing key, ARC4 handle."""

    signing_key: bytes | None
    sealing_key: bytes
    handle: Callable[[bytes], bytes]
    sequence: list[int]  # a one-element box, shared by both directions without ESS


@dataclass
class _Context:
    flags: int
    send: _Direction
    recv: _Direction


def _build_context(flags: int, session_key: bytes, *, client: bool) -> _Context:
    """Keys and handles exactly as rpcrt.py sets them up after the AUTHENTICATE message."""
    from Cryptodome.Cipher import ARC4
    from impacket import ntlm

    if flags & ntlm.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
        c2s = _Direction(
            ntlm.SIGNKEY(flags, session_key),
            ntlm.SEALKEY(flags, session_key),
            ARC4.new(ntlm.SEALKEY(flags, session_key)).encrypt,
            [0],
        )
        s2c = _Direction(
            ntlm.SIGNKEY(flags, session_key, "Server"),
            ntlm.SEALKEY(flags, session_key, "Server"),
            ARC4.new(ntlm.SEALKEY(flags, session_key, "Server")).encrypt,
            [0],
        )
    else:  # "Same key for everything": one handle and one sequence number for both ways
        c2s = s2c = _Direction(session_key, session_key, ARC4.new(session_key).encrypt, [0])
    return _Context(flags, c2s, s2c) if client else _Context(flags, s2c, c2s)


class _ImpacketClient(RecordingParty):
    """NEGOTIATE from getNTLMSSPType1, AUTHENTICATE from getNTLMSSPType3."""

    def __init__(self, adapter: ImpacketAdapter, options: ContextOptions) -> None:
        super().__init__()
        self.adapter = adapter
        self.options = options
        self.signing_required = _signing_required(options)
        self.use_ntlmv2 = options.ntlm_version == "v2"
        self._type1: Any = None

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        from impacket import ntlm

        try:
            if self._type1 is None:
                self._type1 = ntlm.getNTLMSSPType1(
                    "", "", signingRequired=self.signing_required, use_ntlmv2=self.use_ntlmv2
                )
                return S.SEC_I_CONTINUE_NEEDED, self._type1.getData()
            type3, key = ntlm.getNTLMSSPType3(
                self._type1,
                token or b"",
                self.options.user,
                self.options.password,
                self.options.domain,
                use_ntlmv2=self.use_ntlmv2,
            )
            out = type3.getData()
        except Exception as exc:  # noqa: BLE001 - every impacket failure becomes a status
            result = status_of(exc)
            self._detail = result.detail
            return result.status, b""
        self._flags, self._session_key = int(type3["flags"]), bytes(key)
        context = _build_context(self._flags, self._session_key, client=True)
        self._handle = self.adapter._add(context)
        return S.SEC_E_OK, out


class ImpacketAdapter(HandleTable[_Context], Adapter):
    name = "impacket"
    description = "impacket's NTLM client (impacket.ntlm) with rpcrt.py's session security"
    capabilities = (
        Capability.SIGN
        | Capability.SEAL
        | Capability.MULTIPLE_DATA
        | Capability.READONLY
        | Capability.READONLY_WITH_CHECKSUM
        | Capability.NTLMV1
        | Capability.NTLMV2
        | Capability.NO_INTEGRITY
        | Capability.SESSION_KEY
        | Capability.CLIENT
    )

    handle_tag = HANDLE_TAG

    def __init__(self) -> None:
        from harness.adapters.reference import ReferenceAdapter

        super().__init__()
        self.reference = ReferenceAdapter()  # the server side of ``establish``

    @classmethod
    def available(cls) -> Availability:
        try:
            import Cryptodome.Cipher.ARC4  # noqa: F401
            import impacket.ntlm  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"impacket is not importable: {exc}")
        return Availability(True)

    def client(self, options: ContextOptions) -> Party:
        return _ImpacketClient(self, options)

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        """An impacket client against a reference server (impacket has no server)."""
        return handshake(self.client(options), self.reference.server(options))

    def from_session_key(self, flags: int, exported_session_key: bytes, *, client: bool) -> Handle:
        """rpcrt.py's key setup over a given session key; ``client=False`` swaps directions."""
        return self._add(_build_context(flags, exported_session_key, client=client))

    def _ours(self, handle: Handle) -> bool:
        return handle.upper == HANDLE_TAG

    # -- SSPI ------------------------------------------------------------------------------

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        if not self._ours(handle):
            return self.reference.query_sizes(handle)
        raise CannotExpress("impacket has no QueryContextAttributes(SECPKG_ATTR_SIZES)")

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        if not self._ours(handle):
            return self.reference.make_signature(handle, qop, message, seqno)
        return self._send(handle, message, encrypt_call=False, seal=False)

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        if not self._ours(handle):
            return self.reference.encrypt_message(handle, qop, message, seqno)
        return self._send(handle, message, encrypt_call=True, seal=qop != SECQOP_WRAP_NO_ENCRYPT)

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        if not self._ours(handle):
            return self.reference.verify_signature(handle, message, seqno)
        return self._receive(handle, message, unseal=False)

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        if not self._ours(handle):
            return self.reference.decrypt_message(handle, message, seqno)
        return self._receive(handle, message, unseal=True)

    def delete_context(self, handle: Handle) -> CallResult:
        if not self._ours(handle):
            return self.reference.delete_context(handle)
        return self._remove(handle)

    # -- the translation -------------------------------------------------------------------

    def _open(
        self, handle: Handle, message: SecBufferDesc | None, *, sending: bool, sealing: bool
    ) -> tuple[_Context, list[SecBuffer], SecBuffer] | CallResult:
        """The context, the DATA buffers and the TOKEN of a call; what impacket cannot be given
        raises CannotExpress before it is called. ntlm.SIGN takes one message, so read-only
        attributes are refused unless the call seals (ntlm.SEAL signs and encrypts apart)."""
        ctx = self._lookup(handle)
        if isinstance(ctx, CallResult):
            return ctx
        if sending:
            buffers, token = output_token(message, "impacket returns the signature")
        else:
            buffers, token = input_token(message, "impacket")
        if not sealing:
            why = "impacket's ntlm.SIGN takes one message"
            refuse_attributes(buffers, why, mask=READONLY_ATTRIBUTES)
        return ctx, data_of(buffers), token

    def _send(
        self, handle: Handle, message: SecBufferDesc | None, *, encrypt_call: bool, seal: bool
    ) -> CallResult:
        """ntlm.SIGN or ntlm.SEAL with the sending state, then sequence += 1 (rpcrt.py)."""
        from impacket import ntlm

        opened = self._open(handle, message, sending=True, sealing=encrypt_call)
        if isinstance(opened, CallResult):
            return opened
        ctx, data, token = opened
        to_sign = joined(b for b in data if signed(b))
        targets = [b for b in data if encrypted(b)] if seal else []
        out = ctx.send
        try:
            if seal:
                to_encrypt = joined(targets)
                sealed, signature = ntlm.SEAL(
                    ctx.flags,
                    out.signing_key,
                    out.sealing_key,
                    to_sign,
                    to_encrypt,
                    out.sequence[0],
                    out.handle,
                )
            else:
                sealed = b""
                signature = ntlm.SIGN(
                    ctx.flags, out.signing_key, to_sign, out.sequence[0], out.handle
                )
            raw = signature.getData()
        except Exception as exc:  # noqa: BLE001 - every impacket failure becomes a status
            return status_of(exc)
        out.sequence[0] += 1
        at = 0
        for buf in targets:
            assert buf.data is not None
            size = buf.cb_buffer
            buf.data[:size] = sealed[at : at + size]
            at += size
        write_signature(token, raw)
        return CallResult(S.SEC_E_OK)

    def _receive(
        self, handle: Handle, message: SecBufferDesc | None, *, unseal: bool
    ) -> CallResult:
        """The expected signature from impacket's primitives, compared byte for byte."""
        from impacket import ntlm

        opened = self._open(handle, message, sending=False, sealing=unseal)
        if isinstance(opened, CallResult):
            return opened
        ctx, data, token = opened
        received = as_bytes(token)
        inbound = ctx.recv
        targets = [b for b in data if encrypted(b)] if unseal else []
        try:
            plain = {id(b): inbound.handle(as_bytes(b)) for b in targets}
            to_sign = b"".join(plain.get(id(b), as_bytes(b)) for b in data if signed(b))
            expected = ntlm.SIGN(
                ctx.flags, inbound.signing_key, to_sign, inbound.sequence[0], inbound.handle
            ).getData()
        except Exception as exc:  # noqa: BLE001 - every impacket failure becomes a status
            return status_of(exc)
        inbound.sequence[0] += 1
        if expected != received:
            return CallResult(
                S.SEC_E_MESSAGE_ALTERED,
                detail=f"impacket computes {expected.hex()}, received {received.hex()}",
            )
        for buf in targets:
            assert buf.data is not None
            buf.data[: buf.cb_buffer] = plain[id(buf)]
        return CallResult(S.SEC_E_OK)
