"""Mutants whose receiving side accepts what it must reject, or gives away what it must keep:
the comparison of a received signature and the hygiene of a failed DecryptMessage."""

from __future__ import annotations

from harness.adapters.base import CallResult, Handle
from harness.adapters.mutants._base import MutantAdapter, data_buffers
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm.session import SIGNATURE_SIZE, SIGNATURE_VERSION, SessionSecurity
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import BufferType, SecStatus


class AcceptsReplays(ReferenceAdapter):
    """Bug: VerifySignature ignores a wrong sequence number when the checksum is right, so
    a replayed message is accepted (sequence detection never worked).

    Breaks MS-NLMP §3.4.4: "If a received message does not contain the expected SeqNum, an
    error MUST be returned to the receiving application"."""

    name = "mutant-accepts-replays"

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result = super().verify_signature(handle, message, seqno)
        if result.status == SecStatus.SEC_E_OUT_OF_SEQUENCE:
            return CallResult(SecStatus.SEC_E_OK, 0)
        return result


class _VersionBlindSession(SessionSecurity):
    def _compare(self, expected: bytes, received: bytes) -> SecStatus:
        if len(received) == SIGNATURE_SIZE:
            received = SIGNATURE_VERSION + received[4:]
        return super()._compare(expected, received)


class IgnoresVersion(MutantAdapter):
    """Bug: the receiver never looks at the signature's Version field, so a signature with
    any version verifies.

    Breaks MS-NLMP §2.2.2.9.1/§2.2.2.9.2 NTLMSSP_MESSAGE_SIGNATURE: "Version (4 bytes): A
    32-bit unsigned integer that contains the signature version. This field MUST be
    0x00000001." """

    name = "mutant-ignores-version"
    session_class = _VersionBlindSession


class _ChecksumOnlySession(SessionSecurity):
    def _compare(self, expected: bytes, received: bytes) -> SecStatus:
        if len(received) == SIGNATURE_SIZE:
            received = received[:12] + expected[12:16]
        return super()._compare(expected, received)


class ComparesChecksumOnly(MutantAdapter):
    """Bug: the receiver compares the Checksum field and never the SeqNum field of the
    received signature (with extended session security the HMAC covers the sequence number,
    so the author thought the field redundant): a changed SeqNum goes unnoticed and a replay
    is reported as SEC_E_MESSAGE_ALTERED instead of SEC_E_OUT_OF_SEQUENCE.

    Breaks VerifySignature: "SEC_E_OUT_OF_SEQUENCE: The message was not received in the
    correct sequence", and MS-NLMP §3.4.4: "If a received message does not contain the
    expected SeqNum, an error MUST be returned"."""

    name = "mutant-compares-checksum-only"
    session_class = _ChecksumOnlySession


class AcceptsAnySignatureOnEmptyMessage(MutantAdapter):
    """Bug: VerifySignature returns SEC_E_OK early when the DATA buffers hold no bytes
    ("nothing to protect"), without looking at the signature or the sequence number.

    Breaks MS-NLMP §3.4.2: "On receipt, the message authentication code (MAC) value is
    computed and compared with the received value. If they differ, the message MUST be
    discarded" — an empty message has a MAC like any other."""

    name = "mutant-empty-message-any-signature"

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        data = data_buffers(message)
        token = message.first(BufferType.TOKEN) if message and message.buffers else None
        if (
            self.context(handle) is not None
            and data
            and token is not None
            and all(not (b.data or b"")[: b.cb_buffer] for b in data)
        ):
            return CallResult(SecStatus.SEC_E_OK, 0)
        return super().verify_signature(handle, message, seqno)


class _UncheckedUnsealSession(SessionSecurity):
    _unsealing = False

    def unseal(
        self,
        parts: list[bytes],
        signature: bytes,
        signed: list[bool] | None = None,
        encrypted: list[bool] | None = None,
        app_seqno: int = 0,
    ) -> tuple[SecStatus, list[bytes]]:
        self._unsealing = True
        try:
            return super().unseal(parts, signature, signed, encrypted, app_seqno)
        finally:
            self._unsealing = False

    def _compare(self, expected: bytes, received: bytes) -> SecStatus:
        if self._unsealing:
            return SecStatus.SEC_E_OK
        return super()._compare(expected, received)


class UnsealSkipsMac(MutantAdapter):
    """Bug: DecryptMessage decrypts and returns SEC_E_OK without comparing the signature
    (the author took integrity to be VerifySignature's job), so altered ciphertext is
    decrypted and accepted.

    Breaks MS-NLMP §3.4.3: "Message confidentiality, if it is negotiated, also implies
    message integrity", and DecryptMessage's SEC_E_MESSAGE_ALTERED ("The message has been
    altered")."""

    name = "mutant-unseal-skips-mac"
    session_class = _UncheckedUnsealSession


class ReleasesPlaintextOnFailure(ReferenceAdapter):
    """Bug: DecryptMessage decrypts in place before checking the signature and does not undo
    it when the check fails, handing unauthenticated plaintext to the caller.

    Breaks the reference's failure hygiene, from MS-NLMP §3.4.2: a message whose MAC differs
    "MUST be discarded" — its decryption must not reach the caller."""

    name = "mutant-releases-plaintext"

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        before = message.copy() if message else None
        result = super().decrypt_message(handle, message, seqno)
        if result.status != SecStatus.SEC_E_OK and message and before:
            context = self.package.context((handle.lower, handle.upper))
            if context is not None:
                data = [b for b in message.buffers or [] if b.kind == BufferType.DATA]
                for buf in data:
                    if buf.data:
                        # decrypt with a throwaway copy of the keystream position
                        stream = context.established.session.incoming.handle
                        mark = stream.mark()
                        buf.data[:] = stream.apply(bytes(buf.data))
                        stream.rewind(mark)
        return result
