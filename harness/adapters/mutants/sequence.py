"""Mutants that keep the sequence number or the RC4 stream wrong: connection-oriented and
datagram numbering, what a failed call consumes, and the state of each direction."""

from __future__ import annotations

import struct

from harness.adapters.mutants._base import MutantAdapter
from harness.ntlm.crypto import RC4Stream
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.session import SIGNATURE_SIZE, Direction, SessionSecurity
from harness.sspi.constants import SecStatus


class _SenderSeqnumSession(SessionSecurity):
    """Takes the receiving SeqNum from the signature itself (extended session security,
    connection mode: the only case where the field is in clear)."""

    _received: int | None = None

    def _sequence(self, direction: Direction, app_seqno: int) -> int:
        if direction is self.incoming and self._received is not None:
            return self._received
        return super()._sequence(direction, app_seqno)

    def _peek(self, signature: bytes) -> int | None:
        if self.ess and not self.datagram and len(signature) == SIGNATURE_SIZE:
            return int(struct.unpack("<I", signature[12:16])[0])
        return None

    def verify(
        self, message: bytes | bytearray, signature: bytes, app_seqno: int = 0
    ) -> SecStatus:
        self._received = self._peek(signature)
        try:
            return super().verify(message, signature, app_seqno)
        finally:
            self._received = None

    def unseal(
        self,
        parts: list[bytes],
        signature: bytes,
        signed: list[bool] | None = None,
        encrypted: list[bool] | None = None,
        app_seqno: int = 0,
    ) -> tuple[SecStatus, list[bytes]]:
        self._received = self._peek(signature)
        try:
            return super().unseal(parts, signature, signed, encrypted, app_seqno)
        finally:
            self._received = None


class SkipsSequenceCheck(MutantAdapter):
    """Bug: the receiver computes the MAC with the SeqNum it reads from the received
    signature instead of the one it expects, so the sequence check always passes: replayed,
    reordered and skipped messages are checked only by whatever else changes.

    Breaks MS-NLMP §3.4.4: "The receiver expects the first received message to have SeqNum
    equal to 0, and to be one greater for each subsequent message received." """

    name = "mutant-skips-sequence-check"
    session_class = _SenderSeqnumSession


class _AdvancesOnFailureSession(SessionSecurity):
    def verify(
        self, message: bytes | bytearray, signature: bytes, app_seqno: int = 0
    ) -> SecStatus:
        status = super().verify(message, signature, app_seqno)
        if status != SecStatus.SEC_E_OK:
            self._advance(self.incoming)
        return status

    def unseal(
        self,
        parts: list[bytes],
        signature: bytes,
        signed: list[bool] | None = None,
        encrypted: list[bool] | None = None,
        app_seqno: int = 0,
    ) -> tuple[SecStatus, list[bytes]]:
        status, out = super().unseal(parts, signature, signed, encrypted, app_seqno)
        if status != SecStatus.SEC_E_OK:
            self._advance(self.incoming)
        return status, out


class ConsumesSeqnumOnFailure(MutantAdapter):
    """Bug: VerifySignature and DecryptMessage increment the expected sequence number before
    they know the message is good, so one rejected message desynchronises the context and
    every later genuine message fails.

    Breaks MS-NLMP §3.4.4: "If a received message does not contain the expected SeqNum, an
    error MUST be returned to the receiving application, and SeqNum is not incremented." """

    name = "mutant-consumes-seqnum-on-failure"
    session_class = _AdvancesOnFailureSession


class _KeepsKeystreamSession(SessionSecurity):
    def unseal(
        self,
        parts: list[bytes],
        signature: bytes,
        signed: list[bool] | None = None,
        encrypted: list[bool] | None = None,
        app_seqno: int = 0,
    ) -> tuple[SecStatus, list[bytes]]:
        status, out = super().unseal(parts, signature, signed, encrypted, app_seqno)
        if status != SecStatus.SEC_E_OK and not self.datagram:
            flags = encrypted or [True] * len(parts)
            used = sum(len(p) for p, enc in zip(parts, flags, strict=True) if enc)
            if self.ess:
                used += 8 if self.flags & F.KEY_EXCH else 0
            else:
                used += 12  # RandomPad, Checksum and SeqNum go through RC4
            self.incoming.handle.keystream(used)  # what the failed call had taken stays taken
        return status, out


class ConsumesKeystreamOnFailure(MutantAdapter):
    """Bug: DecryptMessage runs RC4 over the message and the checksum in the context's
    stream and does not restore the stream when the signature check fails, so after one
    rejected message every later message decrypts to garbage.

    Breaks MS-NLMP §3.4.4 ("an error MUST be returned to the receiving application, and
    SeqNum is not incremented": a rejected message leaves the receiver's state as it was;
    in connection mode the RC4 handle is that state, §3.4.1 ClientHandle/ServerHandle)."""

    name = "mutant-consumes-keystream-on-failure"
    session_class = _KeepsKeystreamSession


class _ApplicationSeqnumSession(SessionSecurity):
    def _sequence(self, direction: Direction, app_seqno: int) -> int:
        return app_seqno & 0xFFFFFFFF


class UsesApplicationSeqno(MutantAdapter):
    """Bug: uses the application's MessageSeqNo in connection-oriented mode too (datagram
    code path taken unconditionally), so the package does not number messages itself.

    Breaks "Signing a Message (SSPI)": "For the NTLM package, the sequence number need not be
    specified because the package provides sequencing", and MS-NLMP §3.4.4: "In the case of
    connection-oriented authentication, the SeqNum parameter MUST start at 0 and is
    incremented by one for each message sent." """

    name = "mutant-uses-application-seqno"
    session_class = _ApplicationSeqnumSession


class _NoRekeySession(SessionSecurity):
    def _handle(self, direction: Direction, seqno: int) -> RC4Stream:
        return direction.handle


class DatagramNoRekey(MutantAdapter):
    """Bug: in datagram (connectionless) mode the RC4 handle is not re-initialised per
    message, so messages verify only in the order they were made.

    Breaks MS-NLMP §3.4: "In connectionless mode, messages can arrive out of order. Because
    of this, the sealing key MUST be reset for every message", with SealingKey' =
    MD5(SealingKey ‖ SequenceNumber)."""

    name = "mutant-datagram-no-rekey"
    session_class = _NoRekeySession


class _SealKeepsSeqnumSession(SessionSecurity):
    def seal(
        self, parts: list[bytes], signed: bytes | bytearray | None = None, app_seqno: int = 0
    ) -> tuple[list[bytes], bytes]:
        before = self.outgoing.sequence
        result = super().seal(parts, signed, app_seqno)
        self.outgoing.sequence = before
        return result


class SealKeepsSeqnum(MutantAdapter):
    """Bug: EncryptMessage does not increment the sending sequence number (only
    MakeSignature does), so the next message sent reuses it.

    Breaks MS-NLMP §3.4.4: "In the case of connection-oriented authentication, the SeqNum
    parameter MUST start at 0 and is incremented by one for each message sent" — a sealed
    message is a message sent (§3.4.3 SEAL computes its MAC with SeqNum)."""

    name = "mutant-seal-keeps-seqnum"
    session_class = _SealKeepsSeqnumSession


class _OneCounterSession(SessionSecurity):
    def _advance(self, direction: Direction) -> None:
        for each in {id(d): d for d in (self.outgoing, self.incoming)}.values():
            super()._advance(each)


class HalfDuplexWithEss(MutantAdapter):
    """Bug: keeps one sequence counter per context for both directions even with extended
    session security (the half-duplex rule of NTLMv1 applied everywhere), so a context that
    both sends and receives numbers its messages wrongly. Two such peers agree; the
    reference does not.

    Breaks MS-NLMP §3.4: the half-duplex mode holds only "When NTLM v2 authentication is not
    negotiated"; with extended session security each direction has its own keys, handle
    and SeqNum (§3.4.1: ClientHandle, ServerHandle; §3.4.4 "incremented by one for each
    message sent")."""

    name = "mutant-half-duplex-with-ess"
    session_class = _OneCounterSession
