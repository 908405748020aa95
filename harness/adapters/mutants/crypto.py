"""Mutants that compute the signature or the ciphertext wrongly: keys, MAC input, RC4."""

from __future__ import annotations

import struct

from harness.adapters.mutants._base import MutantAdapter
from harness.ntlm.crypto import RC4Stream, hmac_md5
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.keys import sealkey, signkey
from harness.ntlm.session import SIGNATURE_VERSION, Direction, SessionSecurity
from harness.sspi.constants import SecStatus


class _OneMagicConstantSession(SessionSecurity):
    def _direction(self, *, client_to_server: bool) -> Direction:
        return super()._direction(client_to_server=True)


class WrongDirectionKey(MutantAdapter):
    """Bug: derives the keys of both directions with the client-to-server magic constants
    (a copy-paste of SIGNKEY/SEALKEY), so the server signs and seals with the client's keys
    and a message reflected back to its sender verifies.

    Breaks MS-NLMP §3.4.5.2 SIGNKEY: "Set SignKey to MD5(ConcatenationOf(ExportedSessionKey,
    "session key to server-to-client signing key magic constant"))" for the server's
    direction, and §3.4.2: "If the client is sending the message, the signing key is the one
    that the client calculated." """

    name = "mutant-wrong-direction-key"
    session_class = _OneMagicConstantSession


class _CiphertextMacSession(SessionSecurity):
    def seal(
        self, parts: list[bytes], signed: bytes | bytearray | None = None, app_seqno: int = 0
    ) -> tuple[list[bytes], bytes]:
        seq = self._sequence(self.outgoing, app_seqno)
        handle = self._handle(self.outgoing, seq)
        sealed = [handle.apply(part) for part in parts]
        signature = self._mac(self.outgoing, handle, seq, b"".join(sealed))
        self._advance(self.outgoing)
        return sealed, signature

    def unseal(
        self,
        parts: list[bytes],
        signature: bytes,
        signed: list[bool] | None = None,
        encrypted: list[bool] | None = None,
        app_seqno: int = 0,
    ) -> tuple[SecStatus, list[bytes]]:
        seq = self._sequence(self.incoming, app_seqno)
        handle = self._handle(self.incoming, seq)
        mark = handle.mark()
        flags = encrypted or [True] * len(parts)
        plain = [handle.apply(p) if enc else p for p, enc in zip(parts, flags, strict=True)]
        ciphertext = b"".join(p for p, enc in zip(parts, flags, strict=True) if enc)
        status = self._compare(self._mac(self.incoming, handle, seq, ciphertext), signature)
        if status != SecStatus.SEC_E_OK:
            handle.rewind(mark)
            return status, parts
        self._advance(self.incoming)
        return status, plain


class MacOverCiphertext(MutantAdapter):
    """Bug: EncryptMessage and DecryptMessage compute the MAC over the ciphertext (what is in
    the buffers after RC4) instead of over the plaintext message (encrypt-then-MAC habits).
    Two such peers agree; the reference does not.

    Breaks MS-NLMP §3.4.3: "Set Sealed message to RC4(Handle, Message) Set Signature to
    MAC(Handle, SigningKey, SeqNum, Message)" — the MAC is over Message, the plaintext."""

    name = "mutant-mac-over-ciphertext"
    session_class = _CiphertextMacSession


class _ClearChecksumSession(SessionSecurity):
    def _mac(
        self, direction: Direction, handle: RC4Stream, seq: int, message: bytes | bytearray
    ) -> bytes:
        if not self.ess:
            return super()._mac(direction, handle, seq, message)
        assert direction.signing_key is not None
        seq_bytes = struct.pack("<I", seq)
        checksum = hmac_md5(direction.signing_key, seq_bytes + message)[:8]
        return SIGNATURE_VERSION + checksum + seq_bytes


class NoChecksumRc4(MutantAdapter):
    """Bug: with extended session security and NTLMSSP_NEGOTIATE_KEY_EXCH, leaves the HMAC
    checksum in clear instead of RC4-encrypting it with the sealing handle. Two such peers
    agree; the reference does not.

    Breaks MS-NLMP §3.4.4.2, with key exchange: "Set NTLMSSP_MESSAGE_SIGNATURE.Checksum to
    RC4(Handle, HMAC_MD5(SigningKey, ConcatenationOf(SeqNum, Message))[0..7])"."""

    name = "mutant-no-checksum-rc4"
    session_class = _ClearChecksumSession


class _FullStrengthSealKeySession(SessionSecurity):
    def _direction(self, *, client_to_server: bool) -> Direction:
        flags = self.flags | F.NEGOTIATE_128 if self.ess else self.flags
        key = self.exported_session_key
        seal = sealkey(flags, key, client_to_server=client_to_server)
        sign = signkey(self.flags, key, client_to_server=client_to_server)
        return Direction(sign, seal, RC4Stream(seal))


class SealKeyIgnoresStrength(MutantAdapter):
    """Bug: with extended session security, derives the sealing key from the whole 128-bit
    exported session key even when only 56 or 40 bits were negotiated. Two such peers agree;
    the reference (and any peer that follows SEALKEY) does not.

    Breaks MS-NLMP §3.4.5.3 SEALKEY: "If ( NTLMSSP_NEGOTIATE_128 is set in NegFlg) Set SealKey
    to ExportedSessionKey ElseIf ( NTLMSSP_NEGOTIATE_56 flag is set in NegFlg) Set SealKey to
    ExportedSessionKey[0..6]", else ExportedSessionKey[0..4]."""

    name = "mutant-seal-key-ignores-strength"
    session_class = _FullStrengthSealKeySession
