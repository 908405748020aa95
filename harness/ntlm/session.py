"""Message integrity and confidentiality of [MS-NLMP] §3.4: MAC, SEAL and their inverses.

One ``SessionSecurity`` per context end. With extended session security each direction has its
own signing key, sealing key, RC4 handle and sequence number (§3.1.5.1.2 / §3.2.5.1.2).
Without it "only one key is used for sealing. As a result, operations are performed in a
half-duplex mode" (§3.4): one RC4 handle and one sequence counter serve both directions.

Checks take keystream tentatively and give it back on failure: "If a received message does not
contain the expected SeqNum, an error MUST be returned to the receiving application, and
SeqNum is not incremented" (§3.4.4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from harness.ntlm.crypto import RC4Stream, crc32, hmac_md5_parts, md5
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.keys import sealkey, signkey
from harness.sspi.constants import SecStatus

SIGNATURE_SIZE = 16
SIGNATURE_VERSION = b"\x01\x00\x00\x00"


@dataclass
class Direction:
    """The state of one direction (client-to-server or server-to-client)."""

    signing_key: bytes | None
    sealing_key: bytes
    handle: RC4Stream
    sequence: int = 0


class SessionSecurity:
    """Signing and sealing for one end of an established NTLM context."""

    def __init__(self, flags: int, exported_session_key: bytes, *, is_client: bool) -> None:
        self.flags = flags
        self.exported_session_key = exported_session_key
        self.datagram = bool(flags & F.DATAGRAM)
        self.ess = bool(flags & F.EXTENDED_SESSIONSECURITY)
        self.key_exch = bool(flags & F.KEY_EXCH)
        c2s = self._direction(client_to_server=True)
        s2c = self._direction(client_to_server=False) if self.ess else c2s
        self.outgoing, self.incoming = (c2s, s2c) if is_client else (s2c, c2s)

    def _direction(self, *, client_to_server: bool) -> Direction:
        seal = sealkey(self.flags, self.exported_session_key, client_to_server=client_to_server)
        sign = signkey(self.flags, self.exported_session_key, client_to_server=client_to_server)
        return Direction(sign, seal, RC4Stream(seal))

    # -- the per-message handle -------------------------------------------------------------

    def _handle(self, direction: Direction, seqno: int) -> RC4Stream:
        """Connection mode keeps one RC4 handle; connectionless mode re-keys every message
        with SealingKey' = MD5(SealingKey ‖ SeqNum) (§3.4.3)."""
        if not self.datagram:
            return direction.handle
        return RC4Stream(md5(direction.sealing_key + struct.pack("<I", seqno)))

    def _sequence(self, direction: Direction, app_seqno: int) -> int:
        """Connection mode numbers messages itself and ignores the application's number."""
        return (app_seqno if self.datagram else direction.sequence) & 0xFFFFFFFF

    # -- MAC (§3.4.4) ------------------------------------------------------------------------

    def _mac(
        self, direction: Direction, handle: RC4Stream, seq: int, message: bytes | bytearray
    ) -> bytes:
        seq_bytes = struct.pack("<I", seq)
        if self.ess:
            # §3.4.4.2: HMAC_MD5(SigningKey, SeqNum ‖ Message)[0..7], RC4'd under KEY_EXCH.
            assert direction.signing_key is not None
            checksum = hmac_md5_parts(direction.signing_key, seq_bytes, message)[:8]
            if self.key_exch:
                checksum = handle.apply(checksum)
            return SIGNATURE_VERSION + checksum + seq_bytes
        # §3.4.4.1: RandomPad ‖ CRC32 ‖ SeqNum under RC4; RandomPad is then set to 0. The pad's
        # value is irrelevant (it is zeroed), but its RC4 consumes four bytes of keystream.
        handle.keystream(4)
        checksum = handle.apply(crc32(message))
        seq_field = handle.apply(seq_bytes)
        return SIGNATURE_VERSION + b"\x00" * 4 + checksum + seq_field

    def _advance(self, direction: Direction) -> None:
        if not self.datagram:
            direction.sequence = (direction.sequence + 1) & 0xFFFFFFFF

    # -- the four operations -----------------------------------------------------------------

    def sign(self, message: bytes | bytearray, app_seqno: int = 0) -> bytes:
        """MakeSignature / GSS_GetMICEx (§3.4.8): the 16-byte signature of ``message``."""
        direction = self.outgoing
        seq = self._sequence(direction, app_seqno)
        handle = self._handle(direction, seq)
        handle.mark()  # sending never rewinds: what came before can be forgotten
        signature = self._mac(direction, handle, seq, message)
        self._advance(direction)
        return signature

    def seal(
        self, parts: list[bytes], signed: bytes | bytearray | None = None, app_seqno: int = 0
    ) -> tuple[list[bytes], bytes]:
        """EncryptMessage / GSS_WrapEx (§3.4.6): RC4 each part in order, then MAC the
        plaintext (``signed``, default the parts joined) with the same handle (§3.4.3)."""
        seq = self._sequence(self.outgoing, app_seqno)
        handle = self._handle(self.outgoing, seq)
        handle.mark()  # sending never rewinds: what came before can be forgotten
        sealed = [handle.apply(part) for part in parts]
        plaintext = b"".join(parts) if signed is None else signed
        signature = self._mac(self.outgoing, handle, seq, plaintext)
        self._advance(self.outgoing)
        return sealed, signature

    def verify(
        self, message: bytes | bytearray, signature: bytes, app_seqno: int = 0
    ) -> SecStatus:
        """VerifySignature / GSS_VerifyMICEx (§3.4.9)."""
        seq = self._sequence(self.incoming, app_seqno)
        handle = self._handle(self.incoming, seq)
        mark = handle.mark()
        expected = self._mac(self.incoming, handle, seq, message)
        status = self._compare(expected, signature)
        if status == SecStatus.SEC_E_OK:
            self._advance(self.incoming)
        else:
            handle.rewind(mark)
        return status

    def unseal(
        self,
        parts: list[bytes],
        signature: bytes,
        signed: list[bool] | None = None,
        encrypted: list[bool] | None = None,
        app_seqno: int = 0,
    ) -> tuple[SecStatus, list[bytes]]:
        """DecryptMessage / GSS_UnwrapEx (§3.4.7): decrypt the ``encrypted`` parts, MAC the
        ``signed`` plaintext parts and compare. On failure nothing is decrypted."""
        direction = self.incoming
        seq = self._sequence(direction, app_seqno)
        handle = self._handle(direction, seq)
        mark = handle.mark()
        encrypted = encrypted or [True] * len(parts)
        signed = signed or [True] * len(parts)
        plain = [handle.apply(p) if enc else p for p, enc in zip(parts, encrypted, strict=True)]
        covered = [p for p, s in zip(plain, signed, strict=True) if s]
        message = covered[0] if len(covered) == 1 else b"".join(covered)
        expected = self._mac(direction, handle, seq, message)
        status = self._compare(expected, signature)
        if status != SecStatus.SEC_E_OK:
            handle.rewind(mark)
            return status, parts
        self._advance(self.incoming)
        return status, plain

    def _compare(self, expected: bytes, received: bytes) -> SecStatus:
        """Match a received signature against the one computed locally.

        A wrong sequence number is reported as SEC_E_OUT_OF_SEQUENCE (VerifySignature: "The
        message was not received in the correct sequence"); any other difference as
        SEC_E_MESSAGE_ALTERED. Without ESS the RandomPad is not compared: §3.4.4.1 zeroes it,
        while the §4.2.2.4 example prints it encrypted.
        """
        if len(received) != SIGNATURE_SIZE:
            return SecStatus.SEC_E_INVALID_TOKEN
        if received[:4] != SIGNATURE_VERSION:
            return SecStatus.SEC_E_MESSAGE_ALTERED
        if received[12:16] != expected[12:16]:
            return SecStatus.SEC_E_OUT_OF_SEQUENCE
        if received[4:12] != expected[4:12] and (self.ess or received[8:12] != expected[8:12]):
            return SecStatus.SEC_E_MESSAGE_ALTERED
        return SecStatus.SEC_E_OK
