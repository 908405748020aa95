"""The native adapter: an SSPI library driven through its C ABI with ctypes.

``secur32.dll`` on Windows; elsewhere the ``libsspi`` of sspi-rs that the ``sspilib`` wheel
ships, or any library named by ``--native-lib`` (``$SSPI_HARNESS_NATIVE_LIB``) or the
``library`` argument.

What reaches the library is exactly what the case describes: descriptors are marshalled as
modelled (a lying ``ulVersion``, ``cBuffers`` or ``cbBuffer``, a NULL ``pBuffers`` or
``pvBuffer``), and handles are the library's own ``CtxtHandle`` words, passed back unchanged,
zeroed, garbage or stale after deletion. The library answers every one of them: the adapter
keeps no handle table and checks nothing in the message calls. Memory behind a lying length
is allocated (zeroed) so that the lie reaches the library without it overrunning our memory.

The adapter holds no ctypes state until it is used, so that it can be pickled into the worker
subprocess the runner uses for crash isolation and loaded there.
"""

from __future__ import annotations

import ctypes
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness.adapters.base import (
    Adapter,
    AdapterError,
    Availability,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
    Party,
    RecordingParty,
    handshake,
)
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.messages import MessageError, decode_authenticate
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECPKG_ATTR_SIZES, BufferType, SecStatus, status_name
from harness.sspi.sizes import SecPkgContextSizes

if TYPE_CHECKING:
    from harness.adapters.native_abi import SspiFunctions
    from harness.sspi.cabi import CDescriptor

# The library's SECURITY_STATUS is the answer and is reported as it is; this table covers
# what a ctypes call can raise instead of returning one.
EXCEPTION_STATUS: dict[type[BaseException], int] = {
    # Windows: ctypes turns a structured exception inside the library (an access violation on
    # a garbage handle or a lying length) into OSError. The library faulted instead of
    # answering; SEC_E_INTERNAL_ERROR with the fault's text in the detail (on other systems
    # the same fault kills the process and the worker reports CRASH).
    OSError: SecStatus.SEC_E_INTERNAL_ERROR,
}

# Tokens of the handshake: NTLM's cbMaxToken is 2888 (Windows), sspi-rs reports 2010; the
# output buffer is far larger because sspi-rs writes its token without looking at cbBuffer.
HANDSHAKE_BUFFER = 64 * 1024
# A lying cbBuffer gets backing memory up to this size; past it the lie reaches the library
# unbacked (and a library that believes it reads outside our memory: a finding, in the worker).
MAX_BACKING = 16 * 1024 * 1024
# A lying cBuffers gets zeroed (SECBUFFER_EMPTY, NULL) entries up to this count.
MAX_EXTRA_ENTRIES = 4096
# What pfQOP holds before VerifySignature/DecryptMessage, to tell "left untouched" from a write.
QOP_SENTINEL = 0xDEADBEEF
_POINTER_MASK = (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1
_CONTINUE = (SecStatus.SEC_I_CONTINUE_NEEDED, 0x00090314)  # ..., SEC_I_COMPLETE_AND_CONTINUE
_COMPLETE = (SecStatus.SEC_I_COMPLETE_NEEDED, 0x00090314)


def _status(value: int) -> int:
    return value & 0xFFFFFFFF


def _exception_status(exc: BaseException) -> int:
    for kind, status in EXCEPTION_STATUS.items():
        if isinstance(exc, kind):
            return status
    return SecStatus.SEC_E_INTERNAL_ERROR


class _Marshalled:
    """A model descriptor in C memory, padded so that lying lengths stay inside our memory.

    The padded copy is what CDescriptor marshals: a buffer whose cbBuffer exceeds its data is
    zero-extended to cbBuffer bytes (cbBuffer unchanged), and a cBuffers larger than the array
    is backed by zeroed entries. ``finish`` copies what the library wrote back into the model,
    cut to the model's own lengths.
    """

    def __init__(self, model: SecBufferDesc) -> None:
        from harness.adapters.native_abi import LAYOUT
        from harness.sspi.cabi import CDescriptor

        self.model = model
        padded = model.copy()
        for buf in padded.buffers or []:
            if buf.data is not None and len(buf.data) < min(buf.cb_buffer, MAX_BACKING):
                buf.data.extend(bytes(min(buf.cb_buffer, MAX_BACKING) - len(buf.data)))
        if padded.buffers is not None:
            extra = min(model.c_buffers - len(padded.buffers), MAX_EXTRA_ENTRIES)
            padded.buffers.extend(SecBuffer(BufferType.EMPTY, None) for _ in range(extra))
            padded.declared_count = model.c_buffers
        self.padded = padded
        self.c: CDescriptor = CDescriptor(padded, LAYOUT)

    def pointer(self) -> Any:
        return ctypes.byref(self.c.desc)

    def finish(self) -> None:
        self.c.read_back()
        for mine, theirs in zip(self.model.buffers or [], self.padded.buffers or [], strict=False):
            mine.buffer_type = theirs.buffer_type
            if theirs.data is None:
                mine.data = None
                mine.declared_length = theirs.declared_length
                continue
            written = theirs.cb_buffer
            size = len(mine.data) if mine.data is not None else 0
            mine.data = bytearray(theirs.data[:size])
            mine.declared_length = None if written == len(mine.data) else written


def _sec_handle(handle: Handle) -> Any:
    from harness.adapters.native_abi import LAYOUT

    return LAYOUT.SecHandle(handle.lower & _POINTER_MASK, handle.upper & _POINTER_MASK)


def _token_desc(data: bytes | None, size: int) -> tuple[Any, list[Any]]:
    """A one-TOKEN SecBufferDesc for the handshake, and what keeps its memory alive."""
    from harness.adapters.native_abi import LAYOUT

    raw = ctypes.create_string_buffer(data or b"", max(size, len(data or b""), 1))
    array = (LAYOUT.SecBuffer * 1)()
    array[0].cbBuffer = len(data) if data is not None else size
    array[0].BufferType = BufferType.TOKEN
    array[0].pvBuffer = ctypes.cast(raw, ctypes.c_void_p)
    desc = LAYOUT.SecBufferDesc(0, 1, ctypes.cast(array, ctypes.POINTER(LAYOUT.SecBuffer)))
    return desc, [raw, array]


class _NativeParty(RecordingParty):
    """A client (InitializeSecurityContextW) or server (AcceptSecurityContext) context. The
    handle is the library's own CtxtHandle, from the first call on."""

    def __init__(self, adapter: NativeAdapter, options: ContextOptions, *, is_client: bool):
        super().__init__()
        self.adapter = adapter
        self.options = options
        self.is_client = is_client
        self.credential = adapter._acquire(options, inbound=not is_client)
        self._context: Any = None

    def _requirements(self) -> int:
        from harness.adapters import native_abi as abi

        o = self.options
        if self.is_client:
            req = abi.ISC_REQ_SEQUENCE_DETECT | abi.ISC_REQ_REPLAY_DETECT
            req |= abi.ISC_REQ_DATAGRAM if o.datagram else abi.ISC_REQ_CONNECTION
            req |= abi.ISC_REQ_INTEGRITY if o.integrity else 0
            return req | (abi.ISC_REQ_CONFIDENTIALITY if o.confidentiality else 0)
        req = abi.ASC_REQ_SEQUENCE_DETECT | abi.ASC_REQ_REPLAY_DETECT
        req |= abi.ASC_REQ_DATAGRAM if o.datagram else abi.ASC_REQ_CONNECTION
        req |= abi.ASC_REQ_INTEGRITY if o.integrity else 0
        return req | (abi.ASC_REQ_CONFIDENTIALITY if o.confidentiality else 0)

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        """One call of InitializeSecurityContextW / AcceptSecurityContext; CompleteAuthToken
        when the library asks for it (SEC_I_COMPLETE_NEEDED), as the SSPI contract says."""
        from harness.adapters import native_abi as abi

        fns = self.adapter._functions()
        first = self._context is None
        if first:
            self._context = abi.LAYOUT.SecHandle()
        ctx = ctypes.byref(self._context)
        out_desc, keep_out = _token_desc(None, HANDSHAKE_BUFFER)
        in_desc, keep_in = _token_desc(token, 0) if token is not None else (None, [])
        attributes = abi.ULONG()
        expiry = abi.TimeStamp()
        try:
            if self.is_client:
                status = fns.InitializeSecurityContextW(
                    ctypes.byref(self.credential),
                    None if first else ctx,
                    None,
                    self._requirements(),
                    0,
                    abi.SECURITY_NATIVE_DREP,
                    None if in_desc is None else ctypes.byref(in_desc),
                    0,
                    ctx,
                    ctypes.byref(out_desc),
                    ctypes.byref(attributes),
                    ctypes.byref(expiry),
                )
            else:
                status = fns.AcceptSecurityContext(
                    ctypes.byref(self.credential),
                    None if first else ctx,
                    None if in_desc is None else ctypes.byref(in_desc),
                    self._requirements(),
                    abi.SECURITY_NATIVE_DREP,
                    ctx,
                    ctypes.byref(out_desc),
                    ctypes.byref(attributes),
                    ctypes.byref(expiry),
                )
            status = _status(status)
            call = "InitializeSecurityContextW" if self.is_client else "AcceptSecurityContext"
            said = f"{call} returned {status_name(status)}"
            entry = keep_out[1][0]
            out = ctypes.string_at(entry.pvBuffer, entry.cbBuffer) if entry.pvBuffer else b""
            if status in _COMPLETE:
                completed = _status(fns.CompleteAuthToken(ctx, ctypes.byref(out_desc)))
                said += f", CompleteAuthToken returned {status_name(completed)}"
                status = SecStatus.SEC_I_CONTINUE_NEEDED if status in _CONTINUE else completed
        except Exception as exc:  # noqa: BLE001 - mapped by EXCEPTION_STATUS, text kept
            self._detail = f"{type(exc).__name__}: {exc}"
            return _exception_status(exc), b""
        self._detail = "" if status in (SecStatus.SEC_E_OK, *_CONTINUE) else said
        authenticate = out if self.is_client else token  # its flags are the context's
        if status == SecStatus.SEC_E_OK and authenticate:
            try:
                self._flags = decode_authenticate(authenticate).flags
            except MessageError:
                self._flags = 0
        return status, out

    @property
    def handle(self) -> Handle:
        if self._context is None:
            raise AdapterError("the handshake has not started")
        return Handle(self._context.dwLower, self._context.dwUpper)


class NativeAdapter(Adapter):
    name = "native"
    description = "an SSPI library through its C ABI (secur32.dll, or sspi-rs's libsspi)"
    isolate = True  # native code crashes and hangs on malformed input: always in a worker
    # The C ABI expresses every call and every buffer flag, so SIGN, SIGN_READONLY and SIZES
    # are declared: MakeSignature/VerifySignature are called and the library answers (sspi-rs's
    # are stubs returning SEC_E_UNSUPPORTED_FUNCTION: that is its result, not a missing
    # capability). NO_INTEGRITY: contexts without ISC_REQ_INTEGRITY/CONFIDENTIALITY.
    # Left out: NTLMV1, NTLMV1_NO_ESS (and 56/40-bit keys, no key exchange, LM_KEY): policy on
    # Windows and absent from sspi-rs, nothing in the C ABI asks for them; DATAGRAM, because
    # sspi-rs ignores ISC_REQ_DATAGRAM (the context is connection-oriented); SESSION_KEY and
    # NTLM_PRIMITIVES, which the ABI does not expose.
    capabilities = (
        Capability.SIGN
        | Capability.SEAL
        | Capability.MULTIPLE_DATA
        | Capability.READONLY
        | Capability.READONLY_WITH_CHECKSUM
        | Capability.SIGN_READONLY
        | Capability.SIZES
        | Capability.RAW_DESCRIPTORS
        | Capability.BAD_HANDLES
        | Capability.NTLMV2
        | Capability.NO_INTEGRITY
        | Capability.CLIENT
        | Capability.SERVER
        | Capability.QOP_OUT
    )

    def __init__(self, library: str | None = None) -> None:
        self.library = library
        self._fns: SspiFunctions | None = None
        self._credentials: list[Any] = []

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for the worker subprocess: ctypes objects stay behind."""
        return {"library": self.library}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Only the library path travels; the library is loaded again where it is used."""
        self.library = state["library"]
        self._fns = None
        self._credentials = []

    @classmethod
    def available(cls) -> Availability:
        """Whether the default library loads and exports the SSPI entry points (nothing in it
        is called: the library may crash, and this runs in the parent process)."""
        from harness.adapters import native_abi as abi

        try:
            abi.probe(abi.default_library())
        except abi.AbiError as exc:
            return Availability(False, str(exc))
        return Availability(True)

    def _functions(self) -> SspiFunctions:
        if self._fns is None:
            from harness.adapters import native_abi as abi

            try:
                self._fns = abi.load(self.library or abi.default_library())
            except abi.AbiError as exc:
                raise AdapterError(str(exc)) from None
        return self._fns

    @property
    def library_path(self) -> str:
        return self._functions().path

    def _acquire(self, options: ContextOptions, *, inbound: bool) -> Any:
        """AcquireCredentialsHandleW("NTLM") with SEC_WINNT_AUTH_IDENTITY_W credentials."""
        from harness.adapters import native_abi as abi

        fns = self._functions()
        strings = [abi.wide(s) for s in (options.user, options.domain, options.password)]
        user, domain, password = (ctypes.cast(s, ctypes.c_void_p) for s in strings)
        identity = abi.SecWinntAuthIdentityW(
            user,
            len(options.user.encode("utf-16-le")) // 2,
            domain,
            len(options.domain.encode("utf-16-le")) // 2,
            password,
            len(options.password.encode("utf-16-le")) // 2,
            abi.SEC_WINNT_AUTH_IDENTITY_UNICODE,
        )
        credential = abi.LAYOUT.SecHandle()
        expiry = abi.TimeStamp()
        package = abi.wide("NTLM")
        use = abi.SECPKG_CRED_INBOUND if inbound else abi.SECPKG_CRED_OUTBOUND
        status = _status(
            fns.AcquireCredentialsHandleW(
                None,
                ctypes.cast(package, ctypes.c_void_p),
                use,
                None,
                ctypes.byref(identity),
                None,
                None,
                ctypes.byref(credential),
                ctypes.byref(expiry),
            )
        )
        if status != SecStatus.SEC_E_OK:
            raise AdapterError(f"AcquireCredentialsHandleW(NTLM) failed: {status_name(status)}")
        self._credentials.append(credential)
        return credential

    def client(self, options: ContextOptions) -> Party:
        """An InitializeSecurityContextW client; CannotExpress for options no ISC_REQ_* flag
        can ask for."""
        unreachable = _unrequestable(options)
        if unreachable:
            raise CannotExpress(f"the SSPI C ABI cannot request {unreachable}")
        return _NativeParty(self, options, is_client=True)

    def server(self, options: ContextOptions) -> Party:
        return _NativeParty(self, options, is_client=False)

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        """Client against server of this library, then a check that the context has what the
        options asked for: a library that negotiates something else fails the case here.
        Options the C ABI cannot ask for raise CannotExpress (from ``client``)."""
        pair = handshake(self.client(options), self.server(options))
        if isinstance(pair, CallResult):
            return pair
        mismatch = _flag_mismatch(options, pair.flags)
        if mismatch:
            return CallResult(
                SecStatus.SEC_E_UNSUPPORTED_FUNCTION,
                detail=f"options not honoured by {self.library_path}: {mismatch}",
            )
        return pair

    # The message functions: one C call each, the status as the library returned it.

    def _call(
        self, name: str, invoke: Callable[[Any], int], message: SecBufferDesc | None
    ) -> CallResult:
        marshalled = None if message is None else _Marshalled(message)
        try:
            status = _status(invoke(None if marshalled is None else marshalled.pointer()))
        except Exception as exc:  # noqa: BLE001 - mapped by EXCEPTION_STATUS, text kept
            return CallResult(_exception_status(exc), detail=f"{name}: {type(exc).__name__}: {exc}")
        if marshalled is not None:
            marshalled.finish()
        detail = "" if status == SecStatus.SEC_E_OK else f"{name} returned {status_name(status)}"
        return CallResult(status, detail=detail)

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        from harness.adapters.native_abi import LAYOUT

        fns = self._functions()
        sizes = LAYOUT.SecPkgContext_Sizes()
        result = self._call(
            "QueryContextAttributesW",
            lambda _: fns.QueryContextAttributesW(
                ctypes.byref(_sec_handle(handle)), SECPKG_ATTR_SIZES, ctypes.byref(sizes)
            ),
            None,
        )
        if result.status != SecStatus.SEC_E_OK:
            return result, None
        return result, SecPkgContextSizes(
            sizes.cbMaxToken, sizes.cbMaxSignature, sizes.cbBlockSize, sizes.cbSecurityTrailer
        )

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return self._send("MakeSignature", handle, qop, message, seqno)

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return self._receive("VerifySignature", handle, message, seqno)

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return self._send("EncryptMessage", handle, qop, message, seqno)

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        return self._receive("DecryptMessage", handle, message, seqno)

    def _send(
        self, name: str, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """MakeSignature / EncryptMessage, which share (phContext, fQOP, pMessage,
        MessageSeqNo)."""
        function = getattr(self._functions(), name)
        return self._call(
            name,
            lambda desc: function(
                ctypes.byref(_sec_handle(handle)), qop & 0xFFFFFFFF, desc, seqno & 0xFFFFFFFF
            ),
            message,
        )

    def _receive(
        self, name: str, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """VerifySignature / DecryptMessage, which share (phContext, pMessage, MessageSeqNo,
        pfQOP). pfQOP starts as a sentinel, as in Wine's tests (0xdeadbeef): still there after
        the call, it is reported as None, "left untouched"."""
        function = getattr(self._functions(), name)
        qop = ctypes.c_uint32(QOP_SENTINEL)
        result = self._call(
            name,
            lambda desc: function(
                ctypes.byref(_sec_handle(handle)), desc, seqno & 0xFFFFFFFF, ctypes.byref(qop)
            ),
            message,
        )
        return dataclasses.replace(result, qop=None if qop.value == QOP_SENTINEL else qop.value)

    def delete_context(self, handle: Handle) -> CallResult:
        fns = self._functions()
        return self._call(
            "DeleteSecurityContext",
            lambda _: fns.DeleteSecurityContext(ctypes.byref(_sec_handle(handle))),
            None,
        )

    def close(self) -> None:
        """Free the credential handles; contexts are left to the library (deleting them here
        could touch a context a case already deleted)."""
        if self._fns is not None:
            for credential in self._credentials:
                self._fns.FreeCredentialsHandle(ctypes.byref(credential))
        self._credentials.clear()


def _unrequestable(options: ContextOptions) -> str:
    """Options no InitializeSecurityContext flag can ask for (machine policy on Windows)."""
    wanted = []
    if options.ntlm_version != "v2":
        wanted.append(f"NTLM {options.ntlm_version}")
    if not options.key_exchange:
        wanted.append("a context without key exchange")
    if options.key_bits != 128:
        wanted.append(f"{options.key_bits}-bit keys")
    if options.lm_key:
        wanted.append("LM_KEY")
    return ", ".join(wanted)


def _flag_mismatch(options: ContextOptions, flags: int) -> str:
    """What the negotiated flags (from the AUTHENTICATE message) lack or add, given options.

    KEY_EXCH is not checked: no ISC_REQ_* flag asks for it, so with the default option
    (``key_exchange=True``) the library's own choice stands (sspi-rs negotiates it only
    together with confidentiality) and ``ContextPair.flags`` says which it was.
    """
    wanted = {
        F.SIGN: options.integrity or options.confidentiality,
        F.SEAL: options.confidentiality,
        F.DATAGRAM: options.datagram,
        F.EXTENDED_SESSIONSECURITY: options.ntlm_version in ("v2", "v1-ess"),
        F.NEGOTIATE_128: options.key_bits == 128,
        F.LM_KEY: options.lm_key,
    }
    problems = []
    for flag, want in wanted.items():
        if bool(flags & flag) != want:
            state = "without" if want else "with"
            problems.append(f"negotiated {state} {flag.name} (flags 0x{flags:08x})")
    return "; ".join(problems)
