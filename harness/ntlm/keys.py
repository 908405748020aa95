"""Response and key functions of [MS-NLMP] §3.3 (NTLM v1 and v2) and §3.4.5 (KXKEY, SIGNKEY,
SEALKEY), each written from the pseudocode of the section named in its docstring."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from harness.ntlm.crypto import des, desl, hmac_md5, md5
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.md4 import md4

LM_MAGIC = b"KGS!@#$%"
CLIENT_SIGN_MAGIC = b"session key to client-to-server signing key magic constant\x00"
SERVER_SIGN_MAGIC = b"session key to server-to-client signing key magic constant\x00"
CLIENT_SEAL_MAGIC = b"session key to client-to-server sealing key magic constant\x00"
SERVER_SEAL_MAGIC = b"session key to server-to-client sealing key magic constant\x00"


def unicode(text: str) -> bytes:
    """UNICODE(S) of §6: UTF-16LE without a terminator."""
    return text.encode("utf-16-le")


# The one-way functions depend on the credentials alone, and a run makes thousands of
# handshakes with the same few: computing each once saves most of the DES and MD4 work.
@functools.lru_cache(maxsize=256)
def lmowf_v1(password: str) -> bytes:
    """LMOWFv1 of §3.3.1: DES of "KGS!@#$%" under the upper-cased 14-byte OEM password."""
    oem = password.upper().encode("latin-1", "replace")[:14].ljust(14, b"\x00")
    return des(oem[:7], LM_MAGIC) + des(oem[7:], LM_MAGIC)


@functools.lru_cache(maxsize=256)
def ntowf_v1(password: str) -> bytes:
    """NTOWFv1 of §3.3.1: MD4(UNICODE(Passwd))."""
    return md4(unicode(password))


@functools.lru_cache(maxsize=256)
def ntowf_v2(password: str, user: str, domain: str) -> bytes:
    """NTOWFv2 of §3.3.2 (LMOWFv2 is the same function)."""
    return hmac_md5(ntowf_v1(password), unicode(user.upper() + domain))


@dataclass(frozen=True)
class Responses:
    """What ComputeResponse (§3.3.1 / §3.3.2) returns."""

    nt_challenge_response: bytes
    lm_challenge_response: bytes
    session_base_key: bytes


def compute_response_v1(
    flags: int,
    response_key_nt: bytes,
    response_key_lm: bytes,
    server_challenge: bytes,
    client_challenge: bytes,
    *,
    no_lm_response: bool = False,
) -> Responses:
    """ComputeResponse of §3.3.1 (NTLM v1, with or without extended session security)."""
    if flags & F.EXTENDED_SESSIONSECURITY:
        nt = desl(response_key_nt, md5(server_challenge + client_challenge)[:8])
        lm = client_challenge + b"\x00" * 16
    else:
        nt = desl(response_key_nt, server_challenge)
        lm = nt if no_lm_response else desl(response_key_lm, server_challenge)
    return Responses(nt, lm, md4(response_key_nt))


def ntlmv2_temp(time: bytes, client_challenge: bytes, server_name: bytes) -> bytes:
    """The ``temp`` blob of §3.3.2 (an NTLMv2_CLIENT_CHALLENGE, §2.2.2.7)."""
    return (
        b"\x01\x01"
        + b"\x00" * 6
        + time
        + client_challenge
        + b"\x00" * 4
        + server_name
        + b"\x00" * 4
    )


def compute_response_v2(
    response_key_nt: bytes,
    response_key_lm: bytes,
    server_challenge: bytes,
    client_challenge: bytes,
    time: bytes,
    server_name: bytes,
) -> Responses:
    """ComputeResponse of §3.3.2 (NTLM v2); ``server_name`` is the AV_PAIR list."""
    temp = ntlmv2_temp(time, client_challenge, server_name)
    nt_proof = hmac_md5(response_key_nt, server_challenge + temp)
    lm = hmac_md5(response_key_lm, server_challenge + client_challenge) + client_challenge
    return Responses(nt_proof + temp, lm, hmac_md5(response_key_nt, nt_proof))


def kxkey(
    flags: int,
    session_base_key: bytes,
    lm_challenge_response: bytes,
    server_challenge: bytes,
    lmowf: bytes,
    *,
    ntlm_v2: bool,
) -> bytes:
    """KXKEY of §3.4.5.1. NTLM v2 always uses the session base key."""
    if ntlm_v2:
        return session_base_key
    if flags & F.EXTENDED_SESSIONSECURITY:
        return hmac_md5(session_base_key, server_challenge + lm_challenge_response[:8])
    if flags & F.LM_KEY:
        return des(lmowf[:7], lm_challenge_response[:8]) + des(
            lmowf[7:8] + b"\xbd" * 6, lm_challenge_response[:8]
        )
    if flags & F.REQUEST_NON_NT_SESSION_KEY:
        return lmowf[:8] + b"\x00" * 8
    return session_base_key


def signkey(flags: int, exported_session_key: bytes, *, client_to_server: bool) -> bytes | None:
    """SIGNKEY of §3.4.5.2: only extended session security has signing keys."""
    if not flags & F.EXTENDED_SESSIONSECURITY:
        return None
    magic = CLIENT_SIGN_MAGIC if client_to_server else SERVER_SIGN_MAGIC
    return md5(exported_session_key + magic)


def sealkey(flags: int, exported_session_key: bytes, *, client_to_server: bool) -> bytes:
    """SEALKEY of §3.4.5.3, with its 128/56/40-bit and LM_KEY/DATAGRAM branches."""
    if flags & F.EXTENDED_SESSIONSECURITY:
        if flags & F.NEGOTIATE_128:
            seal = exported_session_key
        elif flags & F.NEGOTIATE_56:
            seal = exported_session_key[:7]
        else:
            seal = exported_session_key[:5]
        magic = CLIENT_SEAL_MAGIC if client_to_server else SERVER_SEAL_MAGIC
        return md5(seal + magic)
    if flags & (F.LM_KEY | F.DATAGRAM):
        if flags & F.NEGOTIATE_56:
            return exported_session_key[:7] + b"\xa0"
        return exported_session_key[:5] + b"\xe5\x38\xb0"
    return exported_session_key
