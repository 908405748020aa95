"""The NTLM client (§3.1) and server (§3.2) in connection-oriented form.

NEGOTIATE → CHALLENGE → AUTHENTICATE; both ends then hold the negotiated flags, the exported
session key and a ``SessionSecurity``. Random values can be fixed, which is how the §4.2
examples are reproduced.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.ntlm import messages as m
from harness.ntlm.crypto import hmac_md5, rc4k
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.keys import (
    Responses,
    compute_response_v1,
    compute_response_v2,
    kxkey,
    lmowf_v1,
    ntowf_v1,
    ntowf_v2,
    unicode,
)
from harness.ntlm.session import SessionSecurity

# The flags whose value the server takes from the client's request (§3.2.5.1.1).
ECHOED = (
    F.UNICODE
    | F.SIGN
    | F.SEAL
    | F.DATAGRAM
    | F.ALWAYS_SIGN
    | F.KEY_EXCH
    | F.NEGOTIATE_128
    | F.NEGOTIATE_56
    | F.VERSION
    | F.EXTENDED_SESSIONSECURITY
    | F.LM_KEY
    | F.IDENTIFY
    | F.REQUEST_NON_NT_SESSION_KEY
)


class HandshakeError(Exception):
    """The handshake failed; ``status`` is the SSPI status an SSP would return."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Credentials:
    user: str
    domain: str
    password: str


def filetime_now() -> bytes:
    """The current time as a little-endian FILETIME (100 ns since 1601)."""
    return struct.pack("<Q", int((time.time() + 11644473600) * 10_000_000))


@dataclass
class Randomness:
    """Where the random values of a handshake come from; fixed in tests and vectors."""

    client_challenge: Callable[[], bytes] = field(default=lambda: os.urandom(8))
    server_challenge: Callable[[], bytes] = field(default=lambda: os.urandom(8))
    session_key: Callable[[], bytes] = field(default=lambda: os.urandom(16))
    now: Callable[[], bytes] = field(default=filetime_now)


@dataclass
class Established:
    """What both ends know after the handshake."""

    flags: int
    exported_session_key: bytes
    ntlm_v2: bool
    session: SessionSecurity


def _keys(
    flags: int, creds: Credentials, responses: Responses, server_challenge: bytes, v2: bool
) -> bytes:
    """KXKEY for these responses (§3.4.5.1)."""
    return kxkey(
        flags,
        responses.session_base_key,
        responses.lm_challenge_response,
        server_challenge,
        lmowf_v1(creds.password),
        ntlm_v2=v2,
    )


def _wants_key_exchange(flags: int) -> bool:
    return bool(flags & F.KEY_EXCH and flags & (F.SIGN | F.SEAL))


class NtlmClient:
    """The client of §3.1.5: ``negotiate()``, then ``authenticate(challenge)``."""

    def __init__(
        self,
        creds: Credentials,
        flags: int,
        *,
        ntlm_v2: bool = True,
        workstation: str = "WORKSTATION",
        randomness: Randomness | None = None,
    ) -> None:
        self.creds = creds
        self.flags = flags
        self.ntlm_v2 = ntlm_v2
        self.workstation = workstation
        self.random = randomness or Randomness()
        self._negotiate = b""
        self.established: Established | None = None

    def negotiate(self) -> bytes:
        msg = m.Negotiate(
            self.flags, version=m.DEFAULT_VERSION if self.flags & F.VERSION else b"\0" * 8
        )
        self._negotiate = m.encode_negotiate(msg)
        return self._negotiate

    def authenticate(self, challenge_bytes: bytes) -> bytes:
        challenge = m.decode_challenge(challenge_bytes)
        flags = challenge.flags
        creds = self.creds
        client_challenge = self.random.client_challenge()
        mic_wanted = False
        if self.ntlm_v2:
            pairs = (
                m.AvPairs.decode(challenge.target_info) if challenge.target_info else m.AvPairs()
            )
            timestamp = pairs.get(m.AV_TIMESTAMP)
            if timestamp is not None:
                mic_wanted = True
                old = pairs.get(m.AV_FLAGS)
                av_flags = struct.unpack("<I", old)[0] if old else 0
                pairs.set(m.AV_FLAGS, struct.pack("<I", av_flags | m.AV_FLAG_MIC_PRESENT))
            key = ntowf_v2(creds.password, creds.user, creds.domain)
            responses = compute_response_v2(
                key,
                key,
                challenge.server_challenge,
                client_challenge,
                timestamp or self.random.now(),
                pairs.encode(),
            )
            if mic_wanted:  # §3.1.5.1.2: with MsvAvTimestamp the client sends Z(24) as LM.
                responses = Responses(
                    responses.nt_challenge_response, b"\x00" * 24, responses.session_base_key
                )
        else:
            responses = compute_response_v1(
                flags,
                ntowf_v1(creds.password),
                lmowf_v1(creds.password),
                challenge.server_challenge,
                client_challenge,
            )
        key_exchange_key = _keys(flags, creds, responses, challenge.server_challenge, self.ntlm_v2)
        if _wants_key_exchange(flags):
            exported = self.random.session_key()
            encrypted = rc4k(key_exchange_key, exported)
        else:
            exported, encrypted = key_exchange_key, b""
        auth = m.Authenticate(
            flags,
            lm_response=responses.lm_challenge_response,
            nt_response=responses.nt_challenge_response,
            domain=unicode(creds.domain),
            user=unicode(creds.user),
            workstation=unicode(self.workstation),
            encrypted_session_key=encrypted,
            version=m.DEFAULT_VERSION if flags & F.VERSION else b"\0" * 8,
        )
        out = m.encode_authenticate(auth)
        if mic_wanted:
            mic = hmac_md5(exported, self._negotiate + challenge_bytes + out)
            out = out[: m.MIC_OFFSET] + mic + out[m.MIC_OFFSET + 16 :]
        self.established = Established(
            flags, exported, self.ntlm_v2, SessionSecurity(flags, exported, is_client=True)
        )
        return out


class NtlmServer:
    """The server of §3.2.5: ``challenge(negotiate)``, then ``accept(authenticate)``."""

    def __init__(
        self,
        users: dict[tuple[str, str], str],
        *,
        supported: int = ~0,
        server_name: str = "SERVER",
        domain: str = "DOMAIN",
        dns_domain: str | None = "domain.test",
        randomness: Randomness | None = None,
    ) -> None:
        self.dns_domain = dns_domain
        self.users = {(u.upper(), d.upper()): p for (u, d), p in users.items()}
        self.supported = supported
        self.server_name = server_name
        self.domain = domain
        self.random = randomness or Randomness()
        self._negotiate = b""
        self._challenge = b""
        self._server_challenge = b""
        self.flags = 0
        self.established: Established | None = None

    def challenge(self, negotiate_bytes: bytes) -> bytes:
        request = m.decode_negotiate(negotiate_bytes)
        flags = (request.flags & ECHOED & self.supported) | F.NTLM | F.TARGET_INFO
        if flags & F.EXTENDED_SESSIONSECURITY:
            flags &= ~F.LM_KEY  # §3.2.5.1.1: ESS takes precedence over LM_KEY.
        if not flags & F.UNICODE:
            flags |= F.OEM
        if request.flags & F.REQUEST_TARGET:
            flags |= F.REQUEST_TARGET | F.TARGET_TYPE_SERVER
        self.flags = int(flags)
        self._server_challenge = self.random.server_challenge()
        # The pairs a Windows server sends (§2.2.2.1): NetBIOS and DNS names, and the time.
        # The DNS pairs are optional (None leaves them out, as the §4.2.4 example does).
        pairs = [
            (m.AV_NB_DOMAIN, unicode(self.domain)),
            (m.AV_NB_COMPUTER, unicode(self.server_name)),
        ]
        if self.dns_domain is not None:
            dns_computer = f"{self.server_name}.{self.dns_domain}".lower()
            pairs += [
                (m.AV_DNS_DOMAIN, unicode(self.dns_domain)),
                (m.AV_DNS_COMPUTER, unicode(dns_computer)),
            ]
        info = m.AvPairs([*pairs, (m.AV_TIMESTAMP, self.random.now())])
        msg = m.Challenge(
            self.flags,
            self._server_challenge,
            target_name=unicode(self.server_name) if request.flags & F.REQUEST_TARGET else b"",
            target_info=info.encode(),
            version=m.DEFAULT_VERSION if self.flags & F.VERSION else b"\0" * 8,
        )
        self._negotiate = negotiate_bytes
        self._challenge = m.encode_challenge(msg)
        return self._challenge

    def prime(self, challenge_bytes: bytes, negotiate_bytes: bytes = b"") -> None:
        """Start from a CHALLENGE made elsewhere (the §4.2 examples), as if we had sent it."""
        challenge = m.decode_challenge(challenge_bytes)
        self.flags = challenge.flags
        self._server_challenge = challenge.server_challenge
        self._negotiate = negotiate_bytes
        self._challenge = challenge_bytes

    def accept(self, authenticate_bytes: bytes) -> None:
        """Verify an AUTHENTICATE; any defect is a HandshakeError or MessageError, never a
        crypto library exception escaping (a fuzzer found key-size errors on odd flags)."""
        try:
            self._accept(authenticate_bytes)
        except (m.MessageError, HandshakeError):
            raise
        except ValueError as exc:
            raise HandshakeError(0x80090308, f"AUTHENTICATE cannot be processed: {exc}") from exc

    def _accept(self, authenticate_bytes: bytes) -> None:
        auth = m.decode_authenticate(authenticate_bytes)
        user = auth.user.decode("utf-16-le", "replace")
        domain = auth.domain.decode("utf-16-le", "replace")
        password = self.users.get((user.upper(), domain.upper()))
        if password is None and not domain:  # a client may omit the domain (local account)
            password = next((p for (u, _d), p in self.users.items() if u == user.upper()), None)
        if password is None:
            raise HandshakeError(0x8009030C, f"unknown user {domain}\\{user}")
        creds = Credentials(user, domain, password)
        flags = self.flags
        v2 = len(auth.nt_response) > 24
        mic_present = False
        if v2:
            # §3.3.2: NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge ‖ temp), with temp
            # exactly as the client sent it (the blob after the 16-byte NTProofStr).
            nt = auth.nt_response
            if len(nt) < 44:
                raise HandshakeError(0x80090308, "NTLMv2 response is too short")
            try:
                pairs = m.AvPairs.decode(nt[44:])
            except m.MessageError as exc:
                raise HandshakeError(0x80090308, str(exc)) from exc
            raw_flags = pairs.get(m.AV_FLAGS)
            mic_present = bool(
                raw_flags and struct.unpack("<I", raw_flags)[0] & m.AV_FLAG_MIC_PRESENT
            )
            key = ntowf_v2(password, user, domain)
            nt_proof = hmac_md5(key, self._server_challenge + nt[16:])
            if nt_proof != nt[:16]:
                raise HandshakeError(0x8009030C, "NTProofStr does not match")
            responses = Responses(nt, auth.lm_response, hmac_md5(key, nt_proof))
        else:
            # §2.2.2.3: an NTLMv1 LM_RESPONSE is 24 bytes; ESS takes the client challenge and
            # LM_KEY the key exchange key from its first 8 (a fuzzer found that a shorter one
            # reached DES and RC4 with a short key).
            if len(auth.lm_response) != 24:
                raise HandshakeError(
                    0x80090308,
                    f"NTLMv1 LmChallengeResponse is {len(auth.lm_response)} bytes, not 24",
                )
            client_challenge = auth.lm_response[:8]
            responses = compute_response_v1(
                flags,
                ntowf_v1(password),
                lmowf_v1(password),
                self._server_challenge,
                client_challenge,
            )
            if responses.nt_challenge_response != auth.nt_response:
                raise HandshakeError(0x8009030C, "NTLMv1 response does not match")
            responses = Responses(auth.nt_response, auth.lm_response, responses.session_base_key)
        key_exchange_key = _keys(flags, creds, responses, self._server_challenge, v2)
        if _wants_key_exchange(flags):
            if len(auth.encrypted_session_key) != 16:
                raise HandshakeError(0x80090308, "EncryptedRandomSessionKey is not 16 bytes")
            exported = rc4k(key_exchange_key, auth.encrypted_session_key)
        else:
            exported = key_exchange_key
        if mic_present:
            zeroed = authenticate_bytes[: m.MIC_OFFSET] + b"\x00" * 16
            zeroed += authenticate_bytes[m.MIC_OFFSET + 16 :]
            mic = hmac_md5(exported, self._negotiate + self._challenge + zeroed)
            if mic != auth.mic:
                raise HandshakeError(0x8009030F, "MIC does not match")
        self.established = Established(
            flags, exported, v2, SessionSecurity(flags, exported, is_client=False)
        )
