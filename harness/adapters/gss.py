"""The gssapi adapter: gss-ntlmssp (the NTLM mechanism plugin of MIT krb5) through python-gssapi.

What the SSPI calls become (gss-ntlmssp 1.2.0, python-gssapi 1.12, MIT krb5 1.20 mechglue):

- MakeSignature / VerifySignature: ``gss_get_mic`` / ``gss_verify_mic`` over the DATA buffers
  concatenated in array order (the NTLM MAC covers exactly that byte string, MS-NLMP §3.4.4).
- EncryptMessage / DecryptMessage: ``gss_wrap`` / ``gss_unwrap``. gss-ntlmssp's wrap token
  is the 16-byte NTLMSSP_MESSAGE_SIGNATURE followed by the RC4 ciphertext (gss_signseal.c,
  and checked by the tests), so the signature goes to the TOKEN buffer and the ciphertext is
  split back over the DATA buffers; DecryptMessage unwraps TOKEN ‖ DATA....
- QueryContextAttributes(SIZES): GSSAPI only has ``gss_wrap_size_limit`` (the wrap overhead,
  SSPI's cbSecurityTrailer); cbMaxToken, cbMaxSignature and cbBlockSize have no counterpart,
  so the call raises CannotExpress (with the overhead in the reason) and SIZES is not
  declared.
- gss-ntlmssp implements neither ``gss_wrap_iov`` nor ``gss_get_mic_iov`` (the mechglue
  answers GSS_S_UNAVAILABLE), so READONLY and READONLY_WITH_CHECKSUM buffers cannot be
  expressed and those capabilities are not declared.
- What the one-buffer calls cannot carry (READONLY attributes, no TOKEN buffer, a TOKEN too
  small for the token gss-ntlmssp returned, malformed descriptors) raises CannotExpress: an
  UNSUPPORTED case, not a status the adapter makes up. So do options gss-ntlmssp cannot be
  asked for (LM_KEY with ESS) and credentials its user file cannot hold.
- Handles: Handle.ZERO is GSS_C_NO_CONTEXT and a deleted handle keeps its emptied context, so
  the mechglue answers both (GSS_S_NO_CONTEXT); any other unknown value cannot be passed to
  GSSAPI (a garbage pointer), the adapter answers SEC_E_INVALID_HANDLE itself and BAD_HANDLES
  is not declared.

Context options are honoured with gss-ntlmssp's own knobs (gssapi_ntlmssp.h, gssntlmssp(8)):
the NEGOTIATE flags with the GSS_NTLMSSP_NEG_FLAGS credential option (the same flags the
reference client sends for the options), the NTLM version with the LM_COMPAT_LEVEL
environment variable (read by gss-ntlmssp at every handshake call), the server's user with
the ``ntlmssp_keyfile`` credential-store element (a DOMAIN:USER:PASSWORD file), and
connectionless sequence numbers with the GSS_NTLMSSP_SET_SEQ_NUM context option.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import tempfile
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
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
    RecordingParty,
)
from harness.adapters.byte_api import as_bytes, joined
from harness.adapters.reference import requested_flags
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECBUFFER_VERSION,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
)
from harness.sspi.constants import SecStatus as S
from harness.sspi.sizes import SecPkgContextSizes

if TYPE_CHECKING:
    from gssapi.raw import Creds, SecurityContext

NTLM_MECH = "1.3.6.1.4.1.311.2.2.10"
# gssapi_ntlmssp.h: the OID space 1.3.6.1.4.1.7165.655.1 donated by Samba.
SET_SEQ_NUM_OPTION = "1.3.6.1.4.1.7165.655.1.1"  # gss_set_sec_context_option, datagram only
NEG_FLAGS_OPTION = "1.3.6.1.4.1.7165.655.1.5"  # gss_set_cred_option: NEGOTIATE flags (LE u32)
SSPI_SESSION_KEY = "1.2.840.113554.1.2.2.5.5"  # GSS_C_INQ_SSPI_SESSION_KEY
GSS_C_DATAGRAM_FLAG = 0x10000  # gssapi_ntlmssp.h: "a sort of SSPI extension"
GSS_C_MUTUAL_FLAG = 0x2  # ignored by gss-ntlmssp; python-gssapi turns flags=0 into its defaults
TARGET = b"host@sspi-harness"

# gss-ntlmssp's LM compatibility levels (gss_ntlmssp.c gssntlm_required_security): 3 allows
# NTLMv2 only; 2 NTLMv1 and forces extended session security; 1 allows NTLMv1 with or without
# ESS (the NEGOTIATE flags decide) and the LM hash that LM_KEY needs.
LM_COMPAT_LEVEL = {"v2": 3, "v1-ess": 2, "v1": 1}

# GSS major status layout (RFC 2744 §3.9.1): calling errors in bits 24-31, routine errors in
# bits 16-23, supplementary information in bits 0-15.
GSS_S_CALL_INACCESSIBLE_READ = 1 << 24
GSS_S_CALL_INACCESSIBLE_WRITE = 2 << 24
GSS_S_CALL_BAD_STRUCTURE = 3 << 24
GSS_S_BAD_MECH = 1 << 16
GSS_S_BAD_NAME = 2 << 16
GSS_S_BAD_NAMETYPE = 3 << 16
GSS_S_BAD_SIG = 6 << 16
GSS_S_NO_CRED = 7 << 16
GSS_S_NO_CONTEXT = 8 << 16
GSS_S_DEFECTIVE_TOKEN = 9 << 16
GSS_S_DEFECTIVE_CREDENTIAL = 10 << 16
GSS_S_CREDENTIALS_EXPIRED = 11 << 16
GSS_S_CONTEXT_EXPIRED = 12 << 16
GSS_S_FAILURE = 13 << 16
GSS_S_BAD_QOP = 14 << 16
GSS_S_UNAUTHORIZED = 15 << 16
GSS_S_UNAVAILABLE = 16 << 16
GSS_S_DUPLICATE_TOKEN = 1 << 1
GSS_S_OLD_TOKEN = 1 << 2
GSS_S_UNSEQ_TOKEN = 1 << 3
GSS_S_GAP_TOKEN = 1 << 4

# The one table from GSS status to SECURITY_STATUS. Keys are a routine error with a minor
# code, a routine error, a calling error, or a supplementary bit, looked up in that order.
GSS_TO_SEC: dict[int | tuple[int, int], S] = {
    # gss-ntlmssp reports allocation failures as GSS_S_FAILURE with minor ENOMEM; unwrapping
    # fewer than 16 bytes ends there too (the length underflows before malloc).
    (GSS_S_FAILURE, errno.ENOMEM): S.SEC_E_INSUFFICIENT_MEMORY,
    # RFC 2743: "token had invalid integrity check" (gss_verify_mic, gss_unwrap): the
    # VerifySignature / DecryptMessage status for a signature that does not match.
    GSS_S_BAD_SIG: S.SEC_E_MESSAGE_ALTERED,
    # "no valid security context specified": a deleted or zero context handle.
    GSS_S_NO_CONTEXT: S.SEC_E_INVALID_HANDLE,
    # "validation error on received token": malformed NTLM messages in the handshake.
    GSS_S_DEFECTIVE_TOKEN: S.SEC_E_INVALID_TOKEN,
    # "specified security context expired" (gss-ntlmssp contexts live 36 hours).
    GSS_S_CONTEXT_EXPIRED: S.SEC_E_CONTEXT_EXPIRED,
    # "unsupported QOP value": the SSPI fQOP is passed as the GSS qop_req.
    GSS_S_BAD_QOP: S.SEC_E_QOP_NOT_SUPPORTED,
    # "operation unavailable" (e.g. the IOV calls gss-ntlmssp does not implement).
    GSS_S_UNAVAILABLE: S.SEC_E_UNSUPPORTED_FUNCTION,
    # "unsupported mechanism": the package is not there.
    GSS_S_BAD_MECH: S.SEC_E_SECPKG_NOT_FOUND,
    # "invalid name provided" / "name of unsupported type": an unusable principal name.
    GSS_S_BAD_NAME: S.SEC_E_TARGET_UNKNOWN,
    GSS_S_BAD_NAMETYPE: S.SEC_E_TARGET_UNKNOWN,
    # "no valid credentials provided" / "credential is invalid": SSPI's credential statuses.
    GSS_S_NO_CRED: S.SEC_E_NO_CREDENTIALS,
    GSS_S_DEFECTIVE_CREDENTIAL: S.SEC_E_UNKNOWN_CREDENTIALS,
    GSS_S_CREDENTIALS_EXPIRED: S.SEC_E_NO_CREDENTIALS,
    # "unauthorized": the logon was refused.
    GSS_S_UNAUTHORIZED: S.SEC_E_LOGON_DENIED,
    # "unspecified failure": gss-ntlmssp's answer for everything else (wrong password,
    # sealing without keys, ...); the minor code and its text stay in the detail.
    GSS_S_FAILURE: S.SEC_E_INTERNAL_ERROR,
    # "a required input parameter could not be read": gss-ntlmssp's answer to an empty
    # message in get_mic/verify_mic/wrap/unwrap, and the mechglue's to an empty token.
    GSS_S_CALL_INACCESSIBLE_READ: S.SEC_E_INVALID_PARAMETER,
    GSS_S_CALL_INACCESSIBLE_WRITE: S.SEC_E_INVALID_PARAMETER,
    GSS_S_CALL_BAD_STRUCTURE: S.SEC_E_INVALID_PARAMETER,
    # Supplementary sequencing bits (RFC 2743 §1.2.3): a replayed, too old, early or
    # late token is what VerifySignature calls "not received in the correct sequence".
    GSS_S_DUPLICATE_TOKEN: S.SEC_E_OUT_OF_SEQUENCE,
    GSS_S_OLD_TOKEN: S.SEC_E_OUT_OF_SEQUENCE,
    GSS_S_UNSEQ_TOKEN: S.SEC_E_OUT_OF_SEQUENCE,
    GSS_S_GAP_TOKEN: S.SEC_E_OUT_OF_SEQUENCE,
}

NOT_EXPRESSIBLE = "not expressible through GSSAPI"
_ENV_LOCK = threading.Lock()


def map_gss_status(major: int, minor: int) -> int:
    """The SECURITY_STATUS for a GSS major/minor pair, by GSS_TO_SEC."""
    routine = major & 0x00FF0000
    calling = major & 0xFF000000
    if routine:
        return GSS_TO_SEC.get((routine, minor), GSS_TO_SEC.get(routine, S.SEC_E_INTERNAL_ERROR))
    if calling:
        return GSS_TO_SEC.get(calling, S.SEC_E_INTERNAL_ERROR)
    for bit in (GSS_S_DUPLICATE_TOKEN, GSS_S_OLD_TOKEN, GSS_S_UNSEQ_TOKEN, GSS_S_GAP_TOKEN):
        if major & bit:
            return GSS_TO_SEC[bit]
    return S.SEC_E_INTERNAL_ERROR if major & 0xFFFF else S.SEC_E_OK


def _from_gss_error(exc: Exception, call: str) -> CallResult:
    """A GSSError as a CallResult: the mapped status and gssapi's own text."""
    major = int(getattr(exc, "maj_code", 0) or 0)
    minor = int(getattr(exc, "min_code", 0) or 0)
    detail = f"{call}: major 0x{major:08x} minor {minor}: {exc}"
    return CallResult(map_gss_status(major, minor), detail=detail)


def _oid(dotted: str) -> Any:
    from gssapi.raw import OID

    return OID.from_int_seq(dotted)


@contextmanager
def _lm_compat_level(level: int) -> Iterator[None]:
    """Set LM_COMPAT_LEVEL for one gss-ntlmssp call and restore it (process-wide, so locked)."""
    with _ENV_LOCK:
        old = os.environ.get("LM_COMPAT_LEVEL")
        os.environ["LM_COMPAT_LEVEL"] = str(level)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("LM_COMPAT_LEVEL", None)
            else:
                os.environ["LM_COMPAT_LEVEL"] = old


def _check_options(options: ContextOptions) -> int:
    """The LM compatibility level for the options: CannotExpress for what gss-ntlmssp cannot
    be asked for, AdapterError for values that are not options at all."""
    level = LM_COMPAT_LEVEL.get(options.ntlm_version)
    if level is None:
        raise AdapterError(f"gssapi: unknown NTLM version {options.ntlm_version!r}")
    if options.key_bits not in (128, 56, 40):
        raise AdapterError(f"gssapi: no NTLM key strength of {options.key_bits} bits")
    if options.lm_key and options.ntlm_version != "v1":
        raise CannotExpress(
            "gssapi: gss-ntlmssp drops NTLMSSP_NEGOTIATE_LM_KEY at LM_COMPAT_LEVEL >= 2, "
            f"which {options.ntlm_version} needs"
        )
    return level


@dataclass
class _Context:
    """One established context: the python-gssapi object and whether it is connectionless."""

    # Any: python-gssapi 1.12's message.pyi types its raw functions' context as the
    # high-level gssapi.SecurityContext, while they take (and we hold) the raw one.
    gss: Any
    datagram: bool


class _GssParty(RecordingParty):
    """A gss-ntlmssp initiator or acceptor, driven one token at a time."""

    def __init__(self, adapter: GssapiAdapter, options: ContextOptions, *, is_client: bool):
        super().__init__()
        self.adapter = adapter
        self.options = options
        self.is_client = is_client
        self.level = _check_options(options)
        self._creds: Creds | None = None
        self._context: SecurityContext | None = None
        self._keyfile: Path | None = None
        if not is_client:
            self._keyfile = adapter._write_keyfile(options)

    def _acquire(self) -> Creds:
        """Credentials with the NEGOTIATE flags the options call for (GSS_NTLMSSP_NEG_FLAGS)."""
        import gssapi.raw as gss

        flags = struct.pack("<I", requested_flags(self.options))
        if self.is_client:
            user = f"{self.options.domain}\\{self.options.user}".encode()
            name = gss.import_name(user, gss.NameType.user)
            creds = gss.acquire_cred_with_password(
                name, self.options.password.encode(), usage="initiate", mechs=[_oid(NTLM_MECH)]
            ).creds
        else:
            assert self._keyfile is not None
            name = gss.import_name(TARGET, gss.NameType.hostbased_service)
            store: dict[bytes | str, bytes | str] = {
                b"ntlmssp_keyfile": str(self._keyfile).encode()
            }
            creds = gss.acquire_cred_from(
                store, name, mechs=[_oid(NTLM_MECH)], usage="accept"
            ).creds
        gss.set_cred_option(_oid(NEG_FLAGS_OPTION), creds, flags)
        return creds

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        """gss_init_sec_context / gss_accept_sec_context under this NTLM version's
        LM_COMPAT_LEVEL; on failure the mapped status, with gssapi's text in ``detail``."""
        import gssapi.raw as gss

        try:
            with _lm_compat_level(self.level):
                if self._creds is None:
                    self._creds = self._acquire()
                if self.is_client:
                    req = GSS_C_MUTUAL_FLAG | (GSS_C_DATAGRAM_FLAG if self.options.datagram else 0)
                    result: Any = gss.init_sec_context(
                        gss.import_name(TARGET, gss.NameType.hostbased_service),
                        self._creds,
                        context=self._context,
                        mech=_oid(NTLM_MECH),
                        flags=req,
                        input_token=token or None,
                    )
                else:
                    result = gss.accept_sec_context(
                        token or b"", self._creds, context=self._context
                    )
        except gss.GSSError as exc:
            self._done()
            failed = _from_gss_error(
                exc, "init_sec_context" if self.is_client else "accept_sec_context"
            )
            self._detail = failed.detail
            return failed.status, b""
        self._context = result.context
        out = bytes(result.token or b"")
        if result.more_steps:
            return S.SEC_I_CONTINUE_NEEDED, out
        self._done()
        datagram = bool(int(result.flags) & GSS_C_DATAGRAM_FLAG)
        self._handle = self.adapter._add(_Context(result.context, datagram))
        try:  # the exported session key is gss-ntlmssp's GSS_C_INQ_SSPI_SESSION_KEY
            keys = gss.inquire_sec_context_by_oid(result.context, _oid(SSPI_SESSION_KEY))
            self._session_key = bytes(keys[0]) if keys else None
        except gss.GSSError:
            self._session_key = None  # not negotiated (no key), nothing to compare with
        return S.SEC_E_OK, out

    def _done(self) -> None:
        """The server's key file is only needed while the handshake runs."""
        if self._keyfile is not None:
            self._keyfile.unlink(missing_ok=True)
            self._keyfile = None


@dataclass
class _Message:
    """A descriptor as GSSAPI sees it: the DATA buffers in order and the TOKEN buffer."""

    data: list[SecBuffer]
    token: SecBuffer

    @property
    def payload(self) -> bytes:
        return joined(self.data)

    def scatter(self, content: bytes) -> None:
        """Write ``content`` back over the DATA buffers, each keeping its length."""
        offset = 0
        for buf in self.data:
            assert buf.data is not None
            size = len(buf.data)
            buf.data[:] = content[offset : offset + size]
            offset += size


def _message(desc: SecBufferDesc | None, call: str) -> _Message:
    """The DATA buffers and the TOKEN buffer of a descriptor; CannotExpress when GSSAPI's
    one-buffer calls cannot carry the descriptor."""
    if desc is None or desc.buffers is None:
        raise _refuse("a NULL descriptor or pBuffers")
    if desc.version != SECBUFFER_VERSION or desc.c_buffers != len(desc.buffers):
        raise _refuse("a malformed SecBufferDesc (ulVersion or cBuffers)")
    data: list[SecBuffer] = []
    tokens: list[SecBuffer] = []
    for buf in desc.buffers:
        if buf.kind not in (BufferType.DATA, BufferType.TOKEN):
            continue  # like an SSP, ignore buffer types the call does not use
        if buf.data is None or buf.declared_length is not None:
            raise _refuse("a buffer with a NULL pvBuffer or an explicit cbBuffer")
        if buf.buffer_type & (SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM):
            raise _refuse(
                "READONLY / READONLY_WITH_CHECKSUM buffers (gss-ntlmssp has no IOV calls)"
            )
        (data if buf.kind == BufferType.DATA else tokens).append(buf)
    if len(tokens) > 1:
        raise _refuse("more than one TOKEN buffer")
    if not tokens:
        raise _refuse(f"no SECBUFFER_TOKEN: {call} has no other place for the token")
    return _Message(data, tokens[0])


def _refuse(what: str) -> CannotExpress:
    return CannotExpress(f"{NOT_EXPRESSIBLE}: {what}")


def _write_token(token: SecBuffer, signature: bytes, call: str) -> None:
    """Put the signature into TOKEN like an SSP does (cbBuffer becomes its size).

    GSSAPI has no output-size argument, so a short TOKEN is only found once gss-ntlmssp has
    produced its token (and used a sequence number): CannotExpress then.
    """
    assert token.data is not None
    if len(token.data) < len(signature):
        raise _refuse(
            f"{call} returned a {len(signature)}-byte token (sequence number used) and the "
            f"TOKEN buffer holds {len(token.data)} bytes"
        )
    token.data[: len(signature)] = signature
    del token.data[len(signature) :]


class GssapiAdapter(HandleTable[_Context], Adapter):
    name = "gssapi"
    description = "gss-ntlmssp, MIT krb5's NTLM mechanism, through python-gssapi"
    capabilities = (
        Capability.SIGN
        | Capability.SEAL
        | Capability.MULTIPLE_DATA
        | Capability.NTLMV1
        | Capability.NTLMV1_NO_ESS
        | Capability.NTLMV2
        | Capability.DATAGRAM
        | Capability.NO_INTEGRITY
        | Capability.CLIENT
        | Capability.SERVER
    )
    # gss-ntlmssp is C: a NULL dereference in its acceptor (see the tests) must be a CRASH
    # outcome, not the end of the run.
    isolate = True
    handle_tag = 0x47535350  # "GSSP"

    def __init__(self) -> None:
        super().__init__()
        self._keydir: Path | None = None
        self._cleanup: weakref.finalize[Any, Any] | None = None

    @classmethod
    def available(cls) -> Availability:
        try:
            import gssapi.raw as gss
        except ImportError as exc:
            return Availability(False, f"python-gssapi is not importable: {exc}")
        try:
            mechs = {str(m) for m in gss.indicate_mechs()}
        except Exception as exc:  # the GSSAPI library itself failed to load its mechanisms
            return Availability(False, f"gss_indicate_mechs failed: {exc}")
        if not any(NTLM_MECH in m for m in mechs):
            return Availability(
                False, f"the NTLM mechanism {NTLM_MECH} is not registered (install gss-ntlmssp)"
            )
        return Availability(True)

    # -- contexts -----------------------------------------------------------------------

    def client(self, options: ContextOptions) -> _GssParty:
        return _GssParty(self, options, is_client=True)

    def server(self, options: ContextOptions) -> _GssParty:
        """A server whose user file holds the credentials in ``options``."""
        return _GssParty(self, options, is_client=False)

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        """Drive our client against our server, passing every token (also an empty one:
        a connectionless gss-ntlmssp client starts with no NEGOTIATE, MS-NLMP §3.1.5.2),
        and keep the native error text. The tokens sent are kept in ``transcript``, as
        ``base.handshake`` keeps them, so that a failing case gets its pcap and dissection."""
        client, server = self.client(options), self.server(options)
        token: bytes | None = None
        done = {"client": False, "server": False}
        transcript: list[tuple[str, bytes]] = []
        for leg in range(10):
            role, party = ("client", client) if leg % 2 == 0 else ("server", server)
            status, out = party.step(token)
            if out:
                transcript.append((role, bytes(out)))
            if status not in (S.SEC_E_OK, S.SEC_I_CONTINUE_NEEDED):
                detail = f"{role} at leg {leg + 1}: {party.detail}"
                return CallResult(status, detail=detail, transcript=transcript)
            done[role] = status == S.SEC_E_OK
            if all(done.values()):
                key = client.exported_session_key
                return ContextPair(client.handle, server.handle, 0, key, transcript)
            token = out
        detail = "handshake did not finish in 10 legs"
        return CallResult(S.SEC_E_INTERNAL_ERROR, detail=detail, transcript=transcript)

    def _write_keyfile(self, options: ContextOptions) -> Path:
        """A DOMAIN:USER:PASSWORD file (gss-ntlmssp's Heimdal-style user file) for one server."""
        fields = (options.domain, options.user, options.password)
        if any(c in f for f in fields for c in ":\r\n"):
            raise CannotExpress("gssapi: the user file cannot hold ':' or newlines in credentials")
        if self._keydir is None:
            self._keydir = Path(tempfile.mkdtemp(prefix="sspi-harness-gss-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._keydir, True)
        fd, path = tempfile.mkstemp(dir=self._keydir, suffix=".users")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(":".join(fields) + "\n")
        return Path(path)

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()
        self._keydir = None

    def _context(self, handle: Handle) -> _Context | CallResult:
        """The context for a handle. Handle.ZERO is GSS_C_NO_CONTEXT, which the mechglue
        judges; a deleted handle keeps its (now empty) context, so the mechglue judges that
        too. Other unknown values cannot be expressed (the adapter answers; BAD_HANDLES is
        not declared)."""
        import gssapi.raw as gss

        if handle == Handle.ZERO:
            return _Context(gss.SecurityContext(), False)
        context = self._contexts.get(handle)
        if context is None:
            detail = f"not a handle of this adapter ({NOT_EXPRESSIBLE}): {handle}"
            return CallResult(S.SEC_E_INVALID_HANDLE, detail=detail)
        return context

    def _sequence(self, context: _Context, seqno: int) -> CallResult | None:
        """Connectionless: hand MessageSeqNo to gss-ntlmssp (GSS_NTLMSSP_SET_SEQ_NUM, host
        order). Connection-oriented: GSSAPI has no sequence argument, the package counts."""
        if not context.datagram:
            return None
        import gssapi.raw as gss

        try:
            value = struct.pack("=I", seqno & 0xFFFFFFFF)
            gss.set_sec_context_option(_oid(SET_SEQ_NUM_OPTION), context.gss, value)
        except gss.GSSError as exc:
            return _from_gss_error(exc, "set_sec_context_option(SET_SEQ_NUM)")
        return None

    # -- SSPI ---------------------------------------------------------------------------

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        """CannotExpress: GSSAPI has no SECPKG_ATTR_SIZES, and answering with a status of
        our own would put words in gss-ntlmssp's mouth. The reason says what GSSAPI can
        tell: gss_wrap_size_limit's overhead (SSPI's cbSecurityTrailer), where the handle
        names a live context."""
        import gssapi.raw as gss

        said = ""
        context = self._context(handle)
        if not isinstance(context, CallResult):
            probe = 1 << 16
            try:
                sealed = probe - gss.wrap_size_limit(context.gss, probe, confidential=True)
                signed = probe - gss.wrap_size_limit(context.gss, probe, confidential=False)
                said = (
                    f"; gss_wrap_size_limit says the wrap token adds {sealed} bytes with "
                    f"confidentiality and {signed} without"
                )
            except gss.GSSError:
                pass  # a deleted or zero handle: nothing more to say
        raise _refuse(
            "QueryContextAttributes(SECPKG_ATTR_SIZES): cbMaxToken, cbMaxSignature and "
            f"cbBlockSize have no GSSAPI counterpart{said}"
        )

    def _open(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int, call: str
    ) -> tuple[_Context, _Message] | CallResult:
        """The context and the message of a call, with MessageSeqNo handed over when the
        context is connectionless."""
        context = self._context(handle)
        if isinstance(context, CallResult):
            return context
        msg = _message(message, call)
        failed = self._sequence(context, seqno)
        if failed is not None:
            return failed
        return context, msg

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """gss_get_mic over the DATA buffers; fQOP is passed as the GSS qop_req."""
        import gssapi.raw as gss

        opened = self._open(handle, message, seqno, "gss_get_mic")
        if isinstance(opened, CallResult):
            return opened
        context, msg = opened
        try:
            mic = gss.get_mic(context.gss, msg.payload, qop=qop)
        except gss.GSSError as exc:
            return _from_gss_error(exc, "get_mic")
        _write_token(msg.token, bytes(mic), "gss_get_mic")
        return CallResult(S.SEC_E_OK)

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """gss_verify_mic with the TOKEN bytes as they are, whatever their length."""
        import gssapi.raw as gss

        opened = self._open(handle, message, seqno, "gss_verify_mic")
        if isinstance(opened, CallResult):
            return opened
        context, msg = opened
        try:
            major, minor, qop = _verify_mic(context.gss, msg.payload, as_bytes(msg.token))
        except gss.GSSError as exc:
            return _from_gss_error(exc, "verify_mic")
        if major:
            return _from_gss_error(gss.GSSError(major, minor), "verify_mic")
        return CallResult(S.SEC_E_OK, qop=qop)

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """gss_wrap over the DATA buffers. SECQOP_WRAP_NO_ENCRYPT is conf_req_flag 0; any
        other fQOP is passed as qop_req. The wrap token's head (its length minus the
        message's) goes to TOKEN and the rest over the DATA buffers, whether or not gss_wrap
        says it encrypted (conf_state is in the detail when it differs from the request)."""
        import gssapi.raw as gss

        opened = self._open(handle, message, seqno, "gss_wrap")
        if isinstance(opened, CallResult):
            return opened
        context, msg = opened
        conf = qop != SECQOP_WRAP_NO_ENCRYPT
        payload = msg.payload
        try:
            wrapped = gss.wrap(context.gss, payload, confidential=conf, qop=qop if conf else None)
        except gss.GSSError as exc:
            return _from_gss_error(exc, "wrap")
        token = bytes(wrapped.message)
        header = len(token) - len(payload)
        if header < 0:
            raise AdapterError(f"gss_wrap returned {len(token)} bytes for {len(payload)}")
        _write_token(msg.token, token[:header], "gss_wrap")
        msg.scatter(token[header:])
        detail = "" if wrapped.encrypted == conf else f"wrap: conf_state {int(wrapped.encrypted)}"
        return CallResult(S.SEC_E_OK, detail=detail)

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        """gss_unwrap of TOKEN ‖ DATA...; the plaintext goes back over the DATA buffers
        only on success. pfQOP is SECQOP_WRAP_NO_ENCRYPT when gss_unwrap says the token was
        not encrypted."""
        import gssapi.raw as gss

        opened = self._open(handle, message, seqno, "gss_unwrap")
        if isinstance(opened, CallResult):
            return opened
        context, msg = opened
        payload = msg.payload
        try:
            unwrapped = gss.unwrap(context.gss, as_bytes(msg.token) + payload)
        except gss.GSSError as exc:
            return _from_gss_error(exc, "unwrap")
        plain = bytes(unwrapped.message)
        if len(plain) != len(payload):
            raise AdapterError(f"gss_unwrap returned {len(plain)} bytes for {len(payload)}")
        msg.scatter(plain)
        return CallResult(S.SEC_E_OK, qop=0 if unwrapped.encrypted else SECQOP_WRAP_NO_ENCRYPT)

    def delete_context(self, handle: Handle) -> CallResult:
        """gss_delete_sec_context; the emptied context stays in the table so that later
        calls on the handle reach the mechglue (which answers GSS_S_NO_CONTEXT)."""
        import gssapi.raw as gss

        context = self._context(handle)
        if isinstance(context, CallResult):
            return context
        try:
            gss.delete_sec_context(context.gss)
        except gss.GSSError as exc:
            return _from_gss_error(exc, "delete_sec_context")
        return CallResult(S.SEC_E_OK)


def _verify_mic(context: SecurityContext, message: bytes, token: bytes) -> tuple[int, int, int]:
    """(major, minor, qop) of gss_verify_mic. python-gssapi releases that had ``return_bool``
    report GSS_S_DUPLICATE_TOKEN as success unless asked for the status; later ones raise."""
    import gssapi.raw as gss

    verify: Any = gss.verify_mic
    try:
        result = verify(context, message, token, return_bool=True)
    except TypeError as exc:
        if "return_bool" not in str(exc):
            raise
        return 0, 0, int(verify(context, message, token))
    _ok, qop, major, minor = result
    return int(major), int(minor), int(qop)
