"""The pyspnego adapter: pyspnego's pure-Python NTLM (``spnego`` with ``use_ntlm``), in-process.

pyspnego speaks GSSAPI-style Python, not SSPI, so this module translates (and says where it
cannot):

- Contexts: ``spnego.client(..., protocol="ntlm")`` / ``spnego.server(protocol="ntlm")`` pinned
  to the pure-Python ``NTLMProxy`` with ``NegotiateOptions.use_ntlm``. The NTLM variant is
  chosen the only way pyspnego offers, the ``LM_COMPAT_LEVEL`` environment variable (read when
  a context is created); a server reads its users from the file named by ``NTLM_USER_FILE``
  (read when it is created and again when it checks the AUTHENTICATE message). The adapter
  writes one user file per server party and sets both variables only around its own calls into
  pyspnego, restoring the caller's environment afterwards.
- MakeSignature / VerifySignature: ``sign(data, qop)`` / ``verify(data, mic)`` over the DATA
  buffers concatenated in array order (what an SSP signs). These take one byte string, so
  READONLY / READONLY_WITH_CHECKSUM attributes cannot be passed to them: such calls raise
  CannotExpress (an UNSUPPORTED case), they are not answered by the adapter. The same goes for
  a missing or short TOKEN (sign() returns the signature), a NULL descriptor or pvBuffer, and
  options pyspnego cannot request.
- EncryptMessage / DecryptMessage: ``wrap_iov`` / ``unwrap_iov``, whose buffer types are
  pyspnego's own mapping of SecBuffers (``spnego.iov.BufferType``): TOKEN is ``header``, DATA
  ``data``, DATA|READONLY ``data_readonly``, DATA|READONLY_WITH_CHECKSUM ``sign_only``; pyspnego
  itself judges the layout (a missing header or data buffer, several data buffers, ...).
- fQOP is pyspnego's ``qop`` (its SSPI backend passes one to the other), SECQOP_WRAP_NO_ENCRYPT
  is ``encrypt=False``. MessageSeqNo has no counterpart: pyspnego numbers messages itself, so
  datagram contexts (application sequence numbers) cannot be expressed.
- pyspnego has no handles: the adapter keeps a table, and answers unknown handles itself with
  SEC_E_INVALID_HANDLE (so it does not claim Capability.BAD_HANDLES).
- QueryContextAttributes(SIZES): pyspnego exposes only ``query_message_sizes().header``; the
  adapter raises CannotExpress (UNSUPPORTED, with the reason) rather than invent cbMaxToken,
  cbMaxSignature and cbBlockSize (no Capability.SIZES).
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    HandleTable,
    Party,
    RecordingParty,
    handshake,
)
from harness.adapters.byte_api import (
    as_bytes,
    buffers_of,
    data_of,
    joined,
    refuse_attributes,
    token_of,
)
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECBUFFER_ATTRMASK, SECQOP_WRAP_NO_ENCRYPT, BufferType
from harness.sspi.constants import SecStatus as S
from harness.sspi.sizes import SecPkgContextSizes

if TYPE_CHECKING:  # the backend is imported lazily, inside methods
    from spnego import ContextProxy

SEC_E_BAD_BINDINGS = 0x80090346  # winerror.h; not in SecStatus because no scenario expects it

# pyspnego exception (spnego.exceptions, by class name, most derived first through the MRO) →
# SECURITY_STATUS. pyspnego documents its own SSPI equivalent per class (``_SSPI_CODE``); we
# follow it unless it is an NTSTATUS, which SSPI callers never see.
STATUS_BY_EXCEPTION: dict[str, int] = {
    # verify()/unwrap() recompute the signature and raise this when it differs; pyspnego cannot
    # tell an altered message from one out of sequence. Its own code: SEC_E_MESSAGE_ALTERED.
    "BadMICError": S.SEC_E_MESSAGE_ALTERED,
    # Malformed IOV layouts in wrap_iov/unwrap_iov, and a wrong NT/LM response or MIC in the
    # handshake. pyspnego lists SEC_E_LOGON_DENIED and SEC_E_INVALID_TOKEN; it does not say
    # which, so the first-listed token error is used and the text tells the two apart.
    "InvalidTokenError": S.SEC_E_INVALID_TOKEN,
    # sign/wrap/verify on a context that is not established. Its own code: SEC_E_INVALID_HANDLE.
    "NoContextError": S.SEC_E_INVALID_HANDLE,
    # Any non-zero qop ("Unsupported QoP value ... for NTLM"). Its own: SEC_E_QOP_NOT_SUPPORTED.
    "UnsupportedQop": S.SEC_E_QOP_NOT_SUPPORTED,
    # wrap without integrity or confidentiality, anonymous logons, a server without
    # NTLM_USER_FILE. Its own code: SEC_E_UNSUPPORTED_FUNCTION.
    "OperationNotAvailableError": S.SEC_E_UNSUPPORTED_FUNCTION,
    # Channel bindings that do not match. Its own code: SEC_E_BAD_BINDINGS.
    "BadBindingsError": SEC_E_BAD_BINDINGS,
    # Not raised by the NTLM proxy; pyspnego's own codes, for completeness.
    "BadMechanismError": S.SEC_E_SECPKG_NOT_FOUND,
    "BadNameError": S.SEC_E_TARGET_UNKNOWN,
    "NoCredentialError": S.SEC_E_NO_CREDENTIALS,
    "ContextExpiredError": S.SEC_E_CONTEXT_EXPIRED,
    # pyspnego's code is STATUS_LOGON_FAILURE, an NTSTATUS that SSPI reports as LOGON_DENIED.
    "InvalidCredentialError": S.SEC_E_LOGON_DENIED,
    # ErrorCode.failure: a generic failure whose meaning is only in the text (user not in
    # NTLM_USER_FILE, bad LM_COMPAT_LEVEL, neither OEM nor UNICODE negotiated, ...).
    "SpnegoError": S.SEC_E_INTERNAL_ERROR,
}

HANDLE_TAG = 0x53504E47  # dwUpper of our handles: "SPNG"

# pyspnego's LM_COMPAT_LEVEL as an initiator (NTLMProxy.__init__): 0 drops ESS and keeps
# LM_KEY; 1 keeps ESS and LM_KEY, sends LM + NTv1; 2 keeps ESS, drops LM_KEY, sends NTv1;
# 3-5 keep ESS, drop LM_KEY, send NTv2. Keyed by (ntlm_version, lm_key).
CLIENT_COMPAT_LEVEL: dict[tuple[str, bool], int] = {
    ("v2", False): 3,
    ("v1-ess", False): 2,
    ("v1-ess", True): 1,
    ("v1", True): 0,
}
# As an acceptor, 3 (pyspnego's default) accepts LM, NTv1 and NTv2 responses: the client's
# options decide the variant. Set explicitly so that an inherited variable changes nothing.
SERVER_COMPAT_LEVEL = 3

# SecBuffer type (without attributes) → spnego.iov.BufferType value, from the comments in
# spnego/iov.py. DATA is resolved with its attributes in _iov_type.
IOV_TYPE: dict[int, int] = {
    BufferType.EMPTY: 0,  # empty
    BufferType.TOKEN: 2,  # header
    BufferType.PKG_PARAMS: 3,  # pkg_params
    BufferType.STREAM_HEADER: 7,  # trailer ("SECBUFFER_STREAM_HEADER | ..._TRAILER")
    BufferType.PADDING: 9,  # padding
    BufferType.STREAM: 10,  # stream
}
IOV_DATA, IOV_HEADER, IOV_SIGN_ONLY, IOV_DATA_READONLY = 1, 2, 11, 4096


def _status_of(exc: Exception) -> tuple[int, str]:
    """The status for an exception raised by pyspnego, and the text to keep."""
    text = f"{type(exc).__name__}: {exc}"
    for klass in type(exc).__mro__:
        if klass.__module__ == "spnego.exceptions" and klass.__name__ in STATUS_BY_EXCEPTION:
            return STATUS_BY_EXCEPTION[klass.__name__], text
    return S.SEC_E_INTERNAL_ERROR, text


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of one pyspnego call, then restore them.
    os.environ is process-wide: adapters must not be driven from several threads at once."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _authenticate_flags(token: bytes | None) -> int:
    """NegotiateFlags of an AUTHENTICATE message on the wire (MS-NLMP §2.2.1.3, offset 60):
    the flags both pyspnego ends key their session security with."""
    if token and len(token) >= 64 and token[:12] == b"NTLMSSP\x00\x03\x00\x00\x00":
        return int(struct.unpack_from("<I", token, 60)[0])
    return 0


@dataclass
class _Context:
    proxy: ContextProxy
    is_client: bool


class _PyspnegoParty(RecordingParty):
    """A pyspnego client or server, created at its first step so that pyspnego's own errors
    (e.g. a server without credentials) become statuses, not exceptions. pyspnego's text for
    a failed step is kept in ``error`` for ``establish``, not reported as ``detail``."""

    def __init__(
        self,
        adapter: PyspnegoAdapter,
        create: Callable[[], ContextProxy],
        env: dict[str, str],
        *,
        is_client: bool,
        user_file: str | None = None,
    ) -> None:
        super().__init__()
        self.adapter = adapter
        self.create = create
        self.env = env
        self.is_client = is_client
        self.user_file = user_file
        self.proxy: ContextProxy | None = None
        self._detail = ""  # pyspnego's text when a step failed (Party.detail)

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        try:
            with _environ(self.env):
                if self.proxy is None:
                    self.proxy = self.create()
                out = self.proxy.step(token)
                complete = self.proxy.complete
        except Exception as exc:
            status, self._detail = _status_of(exc)
            self._finish()
            return status, b""
        out = out or b""
        if not complete:
            return S.SEC_I_CONTINUE_NEEDED, out
        self._flags = _authenticate_flags(out if self.is_client else token)
        self._handle = self.adapter._add(_Context(self.proxy, self.is_client))
        self._finish()
        return S.SEC_E_OK, out

    def _finish(self) -> None:
        """The server's user file is read for the last time when AUTHENTICATE is checked."""
        if self.user_file is not None:
            self.adapter._remove_user_file(self.user_file)
            self.user_file = None

    @property
    def exported_session_key(self) -> bytes | None:
        """pyspnego's session key, once the context is complete."""
        if self.proxy is None or not self.proxy.complete:
            return None
        return self.proxy.session_key or None


def _buffers(message: SecBufferDesc | None) -> list[SecBuffer]:
    """The descriptor's buffers; pyspnego takes Python objects, so a NULL descriptor or array
    (Capability.RAW_DESCRIPTORS, not claimed) cannot be passed to it."""
    buffers = buffers_of(message)
    if buffers is None:
        raise CannotExpress(
            "pyspnego takes Python byte strings: a NULL descriptor cannot be passed"
        )
    return buffers


def _replace(buf: SecBuffer, data: bytes) -> None:
    """Write output into a buffer the way the reference does: its bytes become ``data``."""
    if buf.data is None:
        raise CannotExpress(
            "pyspnego returns its output as new bytes: a buffer with a NULL pvBuffer cannot "
            "receive it"
        )
    buf.data[:] = data
    buf.declared_length = None


def _iov_type(buf: SecBuffer) -> int:
    """pyspnego's IOV type for a SecBuffer, by pyspnego's own SSPI mapping (spnego/iov.py)."""
    if buf.kind == BufferType.DATA:
        if buf.readonly and buf.readonly_with_checksum:
            raise CannotExpress(
                "pyspnego's IOV types have no DATA buffer with both READONLY and "
                "READONLY_WITH_CHECKSUM"
            )
        if buf.readonly_with_checksum:
            return IOV_SIGN_ONLY
        return IOV_DATA_READONLY if buf.readonly else IOV_DATA
    if buf.flags:
        raise CannotExpress(f"pyspnego's IOV types carry no attributes on a type {buf.kind} buffer")
    if buf.kind not in IOV_TYPE:
        raise CannotExpress(f"SecBuffer type {buf.kind} has no spnego.iov.BufferType counterpart")
    return IOV_TYPE[buf.kind]


class PyspnegoAdapter(HandleTable[_Context], Adapter):
    name = "pyspnego"
    description = "pyspnego's pure-Python NTLM (spnego NTLMProxy), in-process"
    capabilities = (
        Capability.SIGN
        | Capability.SEAL
        | Capability.MULTIPLE_DATA  # signing: DATA concatenated; sealing: wrap_iov judges
        | Capability.READONLY  # sealing (data_readonly); not SIGN_READONLY: sign() takes bytes
        | Capability.READONLY_WITH_CHECKSUM  # sealing (sign_only)
        | Capability.NTLMV1  # v1-ess
        | Capability.NTLMV1_NO_ESS  # as server; the client cannot ask it (CannotExpress)
        | Capability.NTLMV2
        | Capability.NO_INTEGRITY  # ContextReq without integrity/confidentiality
        | Capability.CLIENT
        | Capability.SERVER
    )

    handle_tag = HANDLE_TAG
    unknown_handle = "adapter: no pyspnego context under this handle (pyspnego has no handles)"

    def __init__(self) -> None:
        super().__init__()
        self._user_files: set[str] = set()

    @classmethod
    def available(cls) -> Availability:
        try:
            from spnego import NegotiateOptions
        except ImportError as exc:
            return Availability(False, f"pyspnego is not installed: {exc}")
        if not hasattr(NegotiateOptions, "use_ntlm"):
            return Availability(False, "this pyspnego cannot pin its pure-Python NTLM (use_ntlm)")
        return Availability(True)

    # -- contexts ---------------------------------------------------------------------------

    def client(self, options: ContextOptions) -> Party:
        """A pyspnego initiator. pyspnego always asks for KEY_EXCH and 128/56-bit keys, asks
        for LM_KEY exactly when ESS is off or LM_COMPAT_LEVEL is 1, and has no DATAGRAM flag:
        other options cannot be requested (CannotExpress)."""
        import spnego
        from spnego import ContextReq, NegotiateOptions

        level = CLIENT_COMPAT_LEVEL.get((options.ntlm_version, options.lm_key))
        if level is None:
            raise CannotExpress(
                f"pyspnego cannot do ntlm_version={options.ntlm_version!r} with "
                f"lm_key={options.lm_key}: as a client it asks for LM_KEY whenever ESS is off "
                "(LM_COMPAT_LEVEL 0) and never with NTLMv2"
            )
        if not options.key_exchange:
            raise CannotExpress("pyspnego's NTLM client always asks for NTLMSSP_NEGOTIATE_KEY_EXCH")
        if options.key_bits != 128:
            raise CannotExpress(
                f"pyspnego's NTLM client always asks for 128- and 56-bit keys, not "
                f"{options.key_bits}-bit"
            )
        self._refuse_datagram(options)
        req = ContextReq.none
        if options.integrity:
            req |= ContextReq.integrity
        if options.confidentiality:
            req |= ContextReq.confidentiality
        user = f"{options.domain}\\{options.user}" if options.domain else options.user

        def create() -> ContextProxy:
            return spnego.client(
                user,
                options.password,
                protocol="ntlm",
                context_req=req,
                options=NegotiateOptions.use_ntlm,
            )

        return _PyspnegoParty(self, create, {"LM_COMPAT_LEVEL": str(level)}, is_client=True)

    def server(self, options: ContextOptions) -> Party:
        """A pyspnego acceptor that knows one user, from a user file of its own."""
        import spnego
        from spnego import NegotiateOptions

        self._refuse_datagram(options)
        fields = (options.domain, options.user, options.password)
        if any(":" in f or "\n" in f or "\r" in f for f in fields):
            raise CannotExpress("NTLM_USER_FILE lines are DOMAIN:USER:PASSWORD; ':' cannot appear")
        fd, path = tempfile.mkstemp(prefix="sspi-harness-ntlm-users-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(":".join(fields) + "\n")
        self._user_files.add(path)
        env = {"NTLM_USER_FILE": path, "LM_COMPAT_LEVEL": str(SERVER_COMPAT_LEVEL)}

        def create() -> ContextProxy:
            return spnego.server(protocol="ntlm", options=NegotiateOptions.use_ntlm)

        party = _PyspnegoParty(self, create, env, is_client=False, user_file=path)
        # a handshake abandoned by the peer never reaches the step that removes the file
        weakref.finalize(party, _unlink, path)
        return party

    @staticmethod
    def _refuse_datagram(options: ContextOptions) -> None:
        if options.datagram:
            raise CannotExpress(
                "pyspnego's NTLM has no datagram mode: it cannot request DATAGRAM and its "
                "message functions take no sequence number"
            )

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        """The default handshake (a failure carries pyspnego's own text via Party.detail), then
        the parties' temporary files are removed."""
        client, server = self.client(options), self.server(options)
        result = handshake(client, server)
        for party in (client, server):
            if isinstance(party, _PyspnegoParty):
                party._finish()
        return result

    def _remove_user_file(self, path: str) -> None:
        self._user_files.discard(path)
        _unlink(path)

    def close(self) -> None:
        for path in list(self._user_files):
            self._remove_user_file(path)
        self._contexts.clear()

    @staticmethod
    def _call(fn: Callable[[], Any]) -> tuple[Any, CallResult | None]:
        """Run one pyspnego call; its exception becomes a status through the table."""
        try:
            return fn(), None
        except Exception as exc:
            status, text = _status_of(exc)
            return None, CallResult(status, detail=text)

    def _header_size(self, context: _Context) -> int:
        """pyspnego's signature/header size (0 if it cannot say), to check a TOKEN against."""
        sizes, failed = self._call(context.proxy.query_message_sizes)
        return sizes.header if failed is None else 0

    # -- SSPI functions ---------------------------------------------------------------------

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        """pyspnego has no QueryContextAttributes(SIZES): its query_message_sizes() gives only
        the header (SSPI's cbSecurityTrailer), so the call cannot be expressed."""
        raise CannotExpress(
            "pyspnego has no QueryContextAttributes(SECPKG_ATTR_SIZES): query_message_sizes() "
            "gives only the header (cbSecurityTrailer); cbMaxToken, cbMaxSignature and "
            "cbBlockSize have no counterpart and are not invented"
        )

    def _signature_parts(
        self, context: _Context, message: SecBufferDesc | None, *, output: bool
    ) -> tuple[bytes, SecBuffer]:
        """The message MakeSignature/VerifySignature pass to pyspnego, and the TOKEN buffer."""
        buffers = _buffers(message)
        data = data_of(buffers)
        why = "pyspnego's sign()/verify() take one byte string"
        refuse_attributes(data, why, mask=SECBUFFER_ATTRMASK)
        token = token_of(buffers)
        if token is None:
            raise CannotExpress(
                "no SECBUFFER_TOKEN: pyspnego's sign() returns the signature and verify() "
                "takes it as an argument, so there is no call to make without one"
            )
        if output:
            size = self._header_size(context)
            if token.cb_buffer < size:
                raise CannotExpress(
                    f"the TOKEN holds {token.cb_buffer} bytes and pyspnego's signature is "
                    f"{size}: sign() returns new bytes, it has no output buffer to reject"
                )
        return joined(data), token

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """sign(data, qop); MessageSeqNo has no counterpart (pyspnego numbers messages)."""
        context = self._lookup(handle)
        if isinstance(context, CallResult):
            return context
        data, token = self._signature_parts(context, message, output=True)
        signature, failed = self._call(lambda: context.proxy.sign(data, qop=qop or None))
        if failed is not None:
            return failed
        _replace(token, signature)
        return CallResult(S.SEC_E_OK)

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """verify(data, mic) with the TOKEN's bytes as they are; pfQOP is its return value."""
        context = self._lookup(handle)
        if isinstance(context, CallResult):
            return context
        data, token = self._signature_parts(context, message, output=False)
        qop, failed = self._call(lambda: context.proxy.verify(data, as_bytes(token)))
        if failed is not None:
            return failed
        return CallResult(S.SEC_E_OK, qop=int(qop))

    @staticmethod
    def _iov(buffers: list[SecBuffer], *, sealing: bool) -> list[tuple[int, bytes | int]]:
        """The IOV list for wrap_iov/unwrap_iov. When sealing, the TOKEN is passed as its
        length, pyspnego's way of naming a caller-allocated output buffer."""
        iov: list[tuple[int, bytes | int]] = []
        for buf in buffers:
            kind = _iov_type(buf)
            iov.append((kind, buf.cb_buffer if sealing and kind == IOV_HEADER else as_bytes(buf)))
        return iov

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """wrap_iov(iov, encrypt, qop): the header goes into TOKEN, data in place."""
        context = self._lookup(handle)
        if isinstance(context, CallResult):
            return context
        buffers = _buffers(message)
        iov = self._iov(buffers, sealing=True)
        size = self._header_size(context)
        for buf in buffers:
            if buf.kind == BufferType.TOKEN and buf.cb_buffer < size:
                raise CannotExpress(
                    f"the TOKEN holds {buf.cb_buffer} bytes and pyspnego's header is {size}: "
                    "pyspnego's NTLM writes a 16-byte header whatever length it is given"
                )
        encrypt = (qop & SECQOP_WRAP_NO_ENCRYPT) != SECQOP_WRAP_NO_ENCRYPT
        rest = qop & ~SECQOP_WRAP_NO_ENCRYPT if not encrypt else qop
        result, failed = self._call(
            lambda: context.proxy.wrap_iov(iov, encrypt=encrypt, qop=rest or None)
        )
        if failed is not None:
            return failed
        self._write_back(buffers, result.buffers)
        detail = ""
        if result.encrypted != encrypt:
            detail = (
                f"pyspnego was asked encrypt={encrypt} and reports encrypted={result.encrypted}"
            )
        return CallResult(S.SEC_E_OK, detail=detail)

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """unwrap_iov(iov): plaintext written back into the DATA buffers; pfQOP is its qop."""
        context = self._lookup(handle)
        if isinstance(context, CallResult):
            return context
        buffers = _buffers(message)
        iov = self._iov(buffers, sealing=False)
        result, failed = self._call(lambda: context.proxy.unwrap_iov(iov))
        if failed is not None:
            return failed
        self._write_back(buffers, result.buffers)
        return CallResult(S.SEC_E_OK, qop=int(result.qop))

    @staticmethod
    def _write_back(buffers: list[SecBuffer], results: Any) -> None:
        """Copy pyspnego's output buffers into the descriptor: header into TOKEN, data in
        place. Read-only buffers are never written, whatever pyspnego returns for them."""
        if len(results) != len(buffers):
            raise AdapterError(f"pyspnego returned {len(results)} IOV buffers for {len(buffers)}")
        for buf, out in zip(buffers, results, strict=True):
            if out.data is None or buf.flags:
                continue
            if int(out.type) in (IOV_HEADER, IOV_DATA):
                _replace(buf, bytes(out.data))

    def delete_context(self, handle: Handle) -> CallResult:
        """Drop the table entry: pyspnego has nothing to delete (the proxy is garbage)."""
        return self._remove(handle)
