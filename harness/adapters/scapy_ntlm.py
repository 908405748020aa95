"""The scapy adapter: scapy's NTLM SSP (``scapy.layers.ntlm.NTLMSSP``), in-process.

scapy speaks GSSAPI with Microsoft's *Ex additions (``scapy.layers.gssapi.SSP``), so this module
translates (and says where it cannot):

- Contexts: ``GSS_Init_sec_context`` / ``GSS_Accept_sec_context`` token by token, tokens passed
  as ``NTLM_Header(bytes)`` and returned as packets (``bytes(tok)``). A client is
  ``NTLMSSP(UPN="user@domain", PASSWORD=...)``; a server ``NTLMSSP(IDENTITIES={user:
  MD4le(password)})``. scapy's client sends NTLMv2 with extended session security only, and
  neither datagram mode nor LM_KEY: other variants raise CannotExpress (UNSUPPORTED).
- Options: integrity and confidentiality are ``req_flags`` GSS_C_INTEG_FLAG / GSS_C_CONF_FLAG;
  scapy then asks KEY_EXCH when either is set and always NEGOTIATE_128|56. A different key
  exchange or key size is requested through scapy's documented ``NTLM_VALUES["NegotiateFlags"]``
  override (which scapy also puts in its AUTHENTICATE message).
- MakeSignature / VerifySignature: ``GSS_GetMICEx`` / ``GSS_VerifyMICEx`` over one ``MIC_MSG``
  per DATA buffer in array order, ``sign=False`` for READONLY buffers (READONLY_WITH_CHECKSUM
  buffers are signed). The signature is ``NTLMSSP_MESSAGE_SIGNATURE(token bytes)``.
- EncryptMessage / DecryptMessage: ``GSS_WrapEx`` / ``GSS_UnwrapEx`` over one ``WRAP_MSG`` per
  DATA buffer: ``conf_req_flag`` for DATA without read-only attributes, ``sign`` as above; so
  READONLY is (no sign, no conf) and READONLY_WITH_CHECKSUM (sign, no conf).
  SECQOP_WRAP_NO_ENCRYPT is ``conf_req_flag=False`` everywhere, as GSS_Wrap's conf_req_flag;
  fQOP is passed as ``qop_req``. GSS_UnwrapEx decrypts the caller's WRAP_MSG objects before it
  checks the signature, so they are copied back to the DATA buffers whatever the outcome: on
  failure the caller holds unauthenticated plaintext, as a scapy caller does.
- The TOKEN buffer receives the 16-byte signature. A missing or short TOKEN for MakeSignature /
  EncryptMessage, or no TOKEN for VerifySignature / DecryptMessage, has no scapy counterpart
  (scapy returns signature packets) and raises CannotExpress before scapy is called; a received
  signature of any length is given to scapy to dissect. MessageSeqNo has no counterpart (scapy
  numbers messages itself).
- scapy has no handles: the adapter keeps a table and answers unknown handles itself, so it
  does not claim Capability.BAD_HANDLES. For SIZES scapy has only ``MaximumSignatureLength``:
  the adapter raises CannotExpress rather than invent cbMaxToken and cbBlockSize (no
  Capability.SIZES).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from harness.adapters.base import (
    Adapter,
    Availability,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    Handle,
    HandleTable,
    Party,
    RecordingParty,
)
from harness.adapters.byte_api import (
    as_bytes,
    data_of,
    encrypted,
    input_token,
    output_token,
    signed,
    write_signature,
)
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECQOP_WRAP_NO_ENCRYPT
from harness.sspi.constants import SecStatus as S
from harness.sspi.sizes import SecPkgContextSizes

HANDLE_TAG = 0x53434150  # dwUpper of our handles: "SCAP"
SEC_E_BAD_BINDINGS = 0x80090346  # winerror.h; not in SecStatus because no scenario expects it
KEY_EXCH, NEGOTIATE_128, NEGOTIATE_56 = 0x40000000, 0x20000000, 0x80000000

# What scapy reports → SECURITY_STATUS. One table: GSS major statuses returned by the context
# calls (by their scapy.layers.gssapi name), then exceptions as "<scapy call>: <class>".
STATUS_TABLE: dict[str, int] = {
    # The call finished.
    "GSS_S_COMPLETE": S.SEC_E_OK,
    # Another leg is needed (RFC 2743's CONTINUE_NEEDED is SSPI's).
    "GSS_S_CONTINUE_NEEDED": S.SEC_I_CONTINUE_NEEDED,
    # Not the NTLM message expected at this leg ("Expected NTLM Challenge", ...).
    "GSS_S_DEFECTIVE_TOKEN": S.SEC_E_INVALID_TOKEN,
    # Accept: unknown user or NTProofStr mismatch; SSPI's AcceptSecurityContext says LOGON_DENIED.
    "GSS_S_DEFECTIVE_CREDENTIAL": S.SEC_E_LOGON_DENIED,
    # Accept: the AUTHENTICATE MIC does not verify (GSS_S_BAD_MIC is GSS_S_BAD_SIG); the
    # reference reports the same condition as SEC_E_MESSAGE_ALTERED.
    "GSS_S_BAD_SIG": S.SEC_E_MESSAGE_ALTERED,
    # Accept: channel bindings missing or different.
    "GSS_S_BAD_BINDINGS": SEC_E_BAD_BINDINGS,
    # Not returned by NTLMSSP today; the RFC 2743 meaning mapped to SSPI's.
    "GSS_S_NO_CONTEXT": S.SEC_E_INVALID_HANDLE,
    "GSS_S_BAD_QOP": S.SEC_E_QOP_NOT_SUPPORTED,
    "GSS_S_CONTEXT_EXPIRED": S.SEC_E_CONTEXT_EXPIRED,
    "GSS_S_FAILURE": S.SEC_E_INTERNAL_ERROR,
    # "raises ValueError: if MIC failure" (SSP.GSS_VerifyMICEx / GSS_UnwrapEx docstrings):
    # "ERROR: Checksums don't match".
    "GSS_VerifyMICEx: ValueError": S.SEC_E_MESSAGE_ALTERED,
    "GSS_UnwrapEx: ValueError": S.SEC_E_MESSAGE_ALTERED,
    # The TOKEN bytes cannot be dissected as NTLMSSP_MESSAGE_SIGNATURE (shorter than 16 bytes):
    # "pMessage did not contain a valid SECBUFFER_TOKEN buffer".
    "NTLMSSP_MESSAGE_SIGNATURE: error": S.SEC_E_INVALID_TOKEN,  # struct.error
    # An input token scapy cannot dissect as NTLM_Header.
    "NTLM_Header: error": S.SEC_E_INVALID_TOKEN,  # struct.error
    # GSS_Accept_sec_context falls off its end, returning None, when _checkLogin rejects the
    # NTProofStr of a known user (scapy 2.8.0): no status at all, an internal failure.
    "GSS_Accept_sec_context: returned None": S.SEC_E_INTERNAL_ERROR,
}


def _gss_names() -> dict[int, str]:
    from scapy.layers import gssapi

    return {getattr(gssapi, name): name for name in STATUS_TABLE if hasattr(gssapi, name)}


def status_of_gss(major: int) -> CallResult:
    """A GSS major status through STATUS_TABLE; unknown ones are internal errors."""
    name = _gss_names().get(major)
    if name is None:
        return CallResult(S.SEC_E_INTERNAL_ERROR, detail=f"scapy GSS status 0x{major:08X}")
    return CallResult(STATUS_TABLE[name], detail=f"scapy {name}")


def status_of(call: str, exc: BaseException) -> CallResult:
    """An exception raised by scapy's ``call`` through STATUS_TABLE, keeping its text."""
    detail = f"scapy {call}: {type(exc).__name__}: {exc}"
    for cls in type(exc).__mro__:
        status = STATUS_TABLE.get(f"{call}: {cls.__name__}")
        if status is not None:
            return CallResult(status, detail=detail)
    return CallResult(S.SEC_E_INTERNAL_ERROR, detail=detail)


def _check_variant(options: ContextOptions) -> None:
    problems = []
    if options.ntlm_version != "v2":
        problems.append(f"ntlm_version {options.ntlm_version!r} (NTLMv2 with ESS only)")
    if options.datagram:
        problems.append("datagram mode")
    if options.lm_key:
        problems.append("LM_KEY")
    if options.key_bits not in (128, 56, 40):
        problems.append(f"{options.key_bits}-bit keys")
    if problems:
        raise CannotExpress("scapy's NTLMSSP cannot do " + "; ".join(problems))


@dataclass
class _Context:
    ssp: Any  # scapy.layers.ntlm.NTLMSSP
    context: Any  # NTLMSSP.CONTEXT


class _ScapyParty(RecordingParty):
    """A client (GSS_Init_sec_context) or server (GSS_Accept_sec_context) in progress."""

    def __init__(
        self, adapter: ScapyAdapter, ssp: Any, *, acceptor: bool, req_flags: int = 0
    ) -> None:
        super().__init__()
        self.adapter = adapter
        self.ssp = ssp
        self.acceptor = acceptor
        self.req_flags = req_flags
        self.context: Any = None

    def _fail(self, result: CallResult) -> tuple[int, bytes]:
        self._detail = result.detail
        return result.status, b""

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        from scapy.layers.gssapi import GSS_C_FLAGS
        from scapy.layers.ntlm import NTLM_Header

        try:
            packet = None if token is None else NTLM_Header(token)
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            return self._fail(status_of("NTLM_Header", exc))
        call = "GSS_Accept_sec_context" if self.acceptor else "GSS_Init_sec_context"
        try:
            if self.acceptor:
                answer = self.ssp.GSS_Accept_sec_context(self.context, packet)
            else:
                answer = self.ssp.GSS_Init_sec_context(
                    self.context, packet, req_flags=GSS_C_FLAGS(self.req_flags)
                )
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            return self._fail(status_of(call, exc))
        if answer is None:
            return self._fail(
                CallResult(STATUS_TABLE[f"{call}: returned None"], detail=f"scapy {call} -> None")
            )
        self.context, out, major = answer
        result = status_of_gss(major)
        if result.status not in (S.SEC_E_OK, S.SEC_I_CONTINUE_NEEDED):
            return self._fail(result)
        raw = b"" if out is None else bytes(out)
        for message in (out, packet):  # the AUTHENTICATE carries the final flags
            if message is not None and getattr(message, "MessageType", None) == 3:
                self._flags = int(message.NegotiateFlags)
        if result.status == S.SEC_E_OK:
            self._handle = self.adapter._add(_Context(self.ssp, self.context))
        return result.status, raw

    @property
    def exported_session_key(self) -> bytes | None:
        """The key scapy keeps in its context."""
        key = getattr(self.context, "ExportedSessionKey", None)
        return bytes(key) if key is not None else None


def _mic_msgs(data: list[SecBuffer]) -> list[Any]:
    """One MIC_MSG per DATA buffer, ``sign=False`` for READONLY ones."""
    from scapy.layers.ntlm import NTLMSSP

    return [NTLMSSP.MIC_MSG(sign=signed(b), data=as_bytes(b)) for b in data]


def _wrap_msgs(data: list[SecBuffer], *, conf: bool) -> list[Any]:
    """One WRAP_MSG per DATA buffer: ``conf_req_flag`` (unless ``conf`` is off) for those
    without read-only attributes, ``sign`` as for MIC_MSG."""
    from scapy.layers.ntlm import NTLMSSP

    return [
        NTLMSSP.WRAP_MSG(conf_req_flag=conf and encrypted(b), sign=signed(b), data=as_bytes(b))
        for b in data
    ]


class ScapyAdapter(HandleTable[_Context], Adapter):
    name = "scapy"
    description = "scapy's NTLM SSP (scapy.layers.ntlm.NTLMSSP), GSS_*Ex calls"
    capabilities = (
        Capability.SIGN
        | Capability.SEAL
        | Capability.MULTIPLE_DATA
        | Capability.READONLY
        | Capability.READONLY_WITH_CHECKSUM
        | Capability.SIGN_READONLY
        | Capability.NTLMV2
        | Capability.NO_INTEGRITY
        | Capability.CLIENT
        | Capability.SERVER
    )

    handle_tag = HANDLE_TAG

    @classmethod
    def available(cls) -> Availability:
        try:
            import scapy.layers.ntlm  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"scapy is not importable: {exc}")
        # scapy logs protocol findings ("Client MIC is invalid !") as warnings on stderr; the
        # statuses already carry them, so keep the run's output readable.
        logging.getLogger("scapy").setLevel(logging.ERROR)
        return Availability(True)

    def client(self, options: ContextOptions) -> Party:
        from scapy.layers.gssapi import GSS_C_FLAGS
        from scapy.layers.ntlm import NTLMSSP

        _check_variant(options)
        req_flags = 0
        if options.integrity:
            req_flags |= GSS_C_FLAGS.GSS_C_INTEG_FLAG
        if options.confidentiality:
            req_flags |= GSS_C_FLAGS.GSS_C_CONF_FLAG
        # What scapy asks by itself for these req_flags, then the options' differences.
        fresh: Any = None  # scapy creates the context when given None
        _, probe, _ = NTLMSSP().GSS_Init_sec_context(fresh, req_flags=GSS_C_FLAGS(req_flags))
        default = int(probe.NegotiateFlags)
        wanted = default & ~(KEY_EXCH | NEGOTIATE_128 | NEGOTIATE_56)
        wanted |= KEY_EXCH if options.key_exchange else 0
        wanted |= {128: NEGOTIATE_128 | NEGOTIATE_56, 56: NEGOTIATE_56, 40: 0}[options.key_bits]
        values = {"NegotiateFlags": wanted} if wanted != default else {}
        ssp = NTLMSSP(
            UPN=f"{options.user}@{options.domain}",
            PASSWORD=options.password,
            NTLM_VALUES=values,
        )
        return _ScapyParty(self, ssp, acceptor=False, req_flags=req_flags)

    def server(self, options: ContextOptions) -> Party:
        from scapy.layers.ntlm import NTLMSSP, MD4le

        ssp = NTLMSSP(IDENTITIES={options.user: MD4le(options.password)})
        return _ScapyParty(self, ssp, acceptor=True)

    # -- SSPI ------------------------------------------------------------------------------

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        """scapy has no QueryContextAttributes(SIZES), only ``MaximumSignatureLength``: the
        call cannot be expressed without inventing cbMaxToken and cbBlockSize."""
        raise CannotExpress(
            "scapy has no QueryContextAttributes(SECPKG_ATTR_SIZES), only MaximumSignatureLength "
            "(cbMaxSignature); cbMaxToken and cbBlockSize are not invented"
        )

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        ctx = self._lookup(handle)
        if isinstance(ctx, CallResult):
            return ctx
        buffers, token = output_token(message, "scapy returns a packet")
        msgs = _mic_msgs(data_of(buffers))
        try:
            signature = bytes(ctx.ssp.GSS_GetMICEx(ctx.context, msgs, qop_req=qop))
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            return status_of("GSS_GetMICEx", exc)
        write_signature(token, signature)
        return CallResult(S.SEC_E_OK)

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        opened = self._received(handle, message)
        if isinstance(opened, CallResult):
            return opened
        ctx, data, signature = opened
        msgs = _mic_msgs(data)
        try:
            ctx.ssp.GSS_VerifyMICEx(ctx.context, msgs, signature)
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            return status_of("GSS_VerifyMICEx", exc)
        return CallResult(S.SEC_E_OK)

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        ctx = self._lookup(handle)
        if isinstance(ctx, CallResult):
            return ctx
        buffers, token = output_token(message, "scapy returns a packet")
        data = data_of(buffers)
        msgs = _wrap_msgs(data, conf=qop != SECQOP_WRAP_NO_ENCRYPT)
        try:
            wrapped, signature = ctx.ssp.GSS_WrapEx(ctx.context, msgs, qop_req=qop)
            raw = bytes(signature)
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            return status_of("GSS_WrapEx", exc)
        self._copy_back(data, msgs, wrapped)
        write_signature(token, raw)
        return CallResult(S.SEC_E_OK)

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        opened = self._received(handle, message)
        if isinstance(opened, CallResult):
            return opened
        ctx, data, signature = opened
        msgs = _wrap_msgs(data, conf=True)
        try:
            ctx.ssp.GSS_UnwrapEx(ctx.context, msgs, signature)
            result = CallResult(S.SEC_E_OK)
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            result = status_of("GSS_UnwrapEx", exc)
        self._copy_back(data, msgs, msgs)  # scapy decrypted them in place, checked or not
        return result

    def delete_context(self, handle: Handle) -> CallResult:
        return self._remove(handle)

    # -- helpers ---------------------------------------------------------------------------

    def _received(
        self, handle: Handle, message: SecBufferDesc | None
    ) -> tuple[_Context, list[SecBuffer], Any] | CallResult:
        """The context, the DATA buffers and the received TOKEN dissected by scapy as an
        NTLMSSP_MESSAGE_SIGNATURE (of any length: scapy judges it)."""
        from scapy.layers.ntlm import NTLMSSP_MESSAGE_SIGNATURE

        ctx = self._lookup(handle)
        if isinstance(ctx, CallResult):
            return ctx
        buffers, token = input_token(message, "scapy")
        try:
            signature = NTLMSSP_MESSAGE_SIGNATURE(as_bytes(token))
        except Exception as exc:  # noqa: BLE001 - every scapy failure becomes a status
            return status_of("NTLMSSP_MESSAGE_SIGNATURE", exc)
        return ctx, data_of(buffers), signature

    @staticmethod
    def _copy_back(data: list[SecBuffer], sent: list[Any], returned: list[Any]) -> None:
        """Write what scapy put in each conf_req_flag WRAP_MSG back to its DATA buffer."""
        for buf, msg, out in zip(data, sent, returned, strict=True):
            if msg.conf_req_flag:
                assert buf.data is not None
                buf.data[: buf.cb_buffer] = bytes(out.data)
