"""The reference client and server (MS-NLMP §3.1/§3.2) against each other and §4.2."""

from __future__ import annotations

import itertools

import pytest

from harness.adapters.base import ContextOptions
from harness.adapters.reference import requested_flags
from harness.ntlm import messages as m
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.handshake import (
    Credentials,
    HandshakeError,
    NtlmClient,
    NtlmServer,
    Randomness,
)
from harness.sspi.constants import SecStatus as S

H = bytes.fromhex
CREDS = Credentials("User", "Domain", "Password")  # MS-NLMP §4.2.1
USERS = {("User", "Domain"): "Password"}


def _flags(ess: bool, key_exchange: bool, bits: int) -> int:
    options = ContextOptions(
        ntlm_version="v1-ess" if ess else "v1", key_exchange=key_exchange, key_bits=bits
    )
    return requested_flags(options)


def _run(flags: int, ntlm_v2: bool, password: str = "Password") -> tuple[NtlmClient, NtlmServer]:
    client = NtlmClient(Credentials("User", "Domain", password), flags, ntlm_v2=ntlm_v2)
    server = NtlmServer(USERS)
    server.accept(client.authenticate(server.challenge(client.negotiate())))
    return client, server


MATRIX = [
    pytest.param(v2, ess, kx, bits, id=f"{'v2' if v2 else 'v1'}-{'ess' if ess else 'noess'}-"
                 f"{'kx' if kx else 'nokx'}-{bits}")
    for v2, ess, kx, bits in itertools.product(
        (True, False), (True, False), (True, False), (128, 56, 40)
    )
]


@pytest.mark.parametrize(("ntlm_v2", "ess", "key_exchange", "bits"), MATRIX)
def test_handshake_matrix(ntlm_v2: bool, ess: bool, key_exchange: bool, bits: int) -> None:
    requested = _flags(ess, key_exchange, bits)
    client, server = _run(requested, ntlm_v2)
    c, s = client.established, server.established
    assert c is not None and s is not None
    assert c.exported_session_key == s.exported_session_key
    assert len(c.exported_session_key) == 16
    assert c.flags == s.flags
    assert s.ntlm_v2 == ntlm_v2
    # What was asked for is what was negotiated.
    for bit in (F.EXTENDED_SESSIONSECURITY, F.KEY_EXCH, F.NEGOTIATE_128, F.NEGOTIATE_56,
                F.SIGN, F.SEAL):
        assert bool(c.flags & bit) == bool(requested & bit), bit

    cs, ss = c.session, s.session
    for i in range(3):
        msg = f"client message {i}".encode() * (i + 1)
        assert ss.verify(msg, cs.sign(msg)) == S.SEC_E_OK
        sealed, sig = cs.seal([msg, b"tail"])
        assert ss.unseal(sealed, sig) == (S.SEC_E_OK, [msg, b"tail"])
        reply = f"server reply {i}".encode()
        assert cs.verify(reply, ss.sign(reply)) == S.SEC_E_OK
        sealed, sig = ss.seal([reply])
        assert sealed != [reply]
        assert cs.unseal(sealed, sig) == (S.SEC_E_OK, [reply])
    # And a forged message is rejected at the end of all that.
    sig = cs.sign(b"genuine")
    assert ss.verify(b"forged!", sig) != S.SEC_E_OK


@pytest.mark.parametrize("key_exchange", [True, False])
def test_key_exchange_sends_encrypted_key(key_exchange: bool) -> None:
    client = NtlmClient(CREDS, _flags(True, key_exchange, 128))
    server = NtlmServer(USERS)
    auth = client.authenticate(server.challenge(client.negotiate()))
    assert len(m.decode_authenticate(auth).encrypted_session_key) == (16 if key_exchange else 0)
    server.accept(auth)
    assert server.established is not None and client.established is not None
    assert server.established.exported_session_key == client.established.exported_session_key


def test_key_exchange_keys_differ_per_session() -> None:
    flags = _flags(True, True, 128)
    keys = {_run(flags, True)[0].established.exported_session_key for _ in range(3)}
    assert len(keys) == 3


@pytest.mark.parametrize("ntlm_v2", [True, False])
@pytest.mark.parametrize("ess", [True, False])
def test_wrong_password(ntlm_v2: bool, ess: bool) -> None:
    with pytest.raises(HandshakeError) as info:
        _run(_flags(ess, True, 128), ntlm_v2, password="Passw0rd")
    assert info.value.status == 0x8009030C == S.SEC_E_LOGON_DENIED


def test_unknown_user() -> None:
    client = NtlmClient(Credentials("Nobody", "Domain", "Password"), _flags(True, True, 128))
    server = NtlmServer(USERS)
    with pytest.raises(HandshakeError) as info:
        server.accept(client.authenticate(server.challenge(client.negotiate())))
    assert info.value.status == S.SEC_E_LOGON_DENIED


def test_v2_sends_mic() -> None:
    # MS-NLMP §3.1.5.1.2: with MsvAvTimestamp in the CHALLENGE the client sets MsvAvFlags bit
    # 0x2, sends Z(24) as LmChallengeResponse and a MIC.
    client = NtlmClient(CREDS, _flags(True, True, 128))
    server = NtlmServer(USERS)
    challenge = server.challenge(client.negotiate())
    assert m.AvPairs.decode(m.decode_challenge(challenge).target_info).get(m.AV_TIMESTAMP)
    auth = m.decode_authenticate(client.authenticate(challenge))
    assert auth.lm_response == bytes(24)
    assert auth.mic != bytes(16)


@pytest.mark.parametrize("at", [0, 7, 15])
def test_tampered_mic(at: int) -> None:
    client = NtlmClient(CREDS, _flags(True, True, 128))
    server = NtlmServer(USERS)
    auth = bytearray(client.authenticate(server.challenge(client.negotiate())))
    auth[m.MIC_OFFSET + at] ^= 0x01
    with pytest.raises(HandshakeError) as info:
        server.accept(bytes(auth))
    assert info.value.status == S.SEC_E_MESSAGE_ALTERED


def test_tampered_negotiate_breaks_mic() -> None:
    # The MIC covers the NEGOTIATE message too (§3.1.5.1.2): the server must see a mismatch
    # when the NEGOTIATE it received differs from the one the client sent.
    client = NtlmClient(CREDS, _flags(True, True, 128))
    server = NtlmServer(USERS)
    negotiate = bytearray(client.negotiate())
    negotiate[32] ^= 0x01  # a Version byte: changes nothing the server decides on
    auth = client.authenticate(server.challenge(bytes(negotiate)))
    with pytest.raises(HandshakeError):
        server.accept(auth)


# -- §4.2 reproduced with fixed randomness -----------------------------------------------------

FIXED = Randomness(
    client_challenge=lambda: H("aaaaaaaaaaaaaaaa"),  # MS-NLMP §4.2.1 ClientChallenge
    server_challenge=lambda: H("0123456789abcdef"),  # MS-NLMP §4.2.1 ServerChallenge
    session_key=lambda: H("55555555555555555555555555555555"),  # §4.2.1 RandomSessionKey
    now=lambda: H("0000000000000000"),  # MS-NLMP §4.2.1 Time
)
PLAINTEXT = H("50006c00610069006e007400650078007400")  # MS-NLMP §4.2.x.4

SPEC = [
    pytest.param(
        False,
        # MS-NLMP §4.2.2.3 CHALLENGE_MESSAGE
        "4e544c4d53535000020000000c000c0038000000338202e20123456789abcdef0000000000000000000000"
        "0000000000060070170000000f530065007200760065007200",
        "98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13",  # §4.2.2.2.2
        "67c43011f30298a2ad35ece64f16331c44bdbed927841f94",  # §4.2.2.2.1
        "518822b1b3f350c8958682ecbb3e3cb7",  # §4.2.2.2.3
        "56fe04d861f9319af0d7238a2e3b4d457fb8",  # §4.2.2.4 Data
        id="4.2.2",
    ),
    pytest.param(
        False,
        # MS-NLMP §4.2.3.3 CHALLENGE_MESSAGE
        "4e544c4d53535000020000000c000c003800000033820a820123456789abcdef0000000000000000000000"
        "0000000000060070170000000f530065007200760065007200",
        "aaaaaaaaaaaaaaaa00000000000000000000000000000000",  # §4.2.3.2.1
        "7537f803ae367128ca458204bde7caf81e97ed2683267232",  # §4.2.3.2.2
        "",  # no KEY_EXCH
        "a02372f6530273f3aa1eb90190ce5200c99d",  # §4.2.3.4 Data
        id="4.2.3",
    ),
    pytest.param(
        True,
        # MS-NLMP §4.2.4.3 CHALLENGE_MESSAGE
        "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef0000000000000000240024"
        "0044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e000100"
        "0c0053006500720076006500720000000000",
        "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa",  # §4.2.4.2.1
        "68cd0ab851e51c96aabc927bebef6a1c"  # §4.2.4.2.2 NTProofStr, then §4.2.4.1.3 temp
        "01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e"
        "0001000c005300650072007600650072000000000000000000",
        "c5dad2544fc9799094ce1ce90bc9d03e",  # §4.2.4.2.3
        "54e50165bf1936dc996020c1811b0f06fb5f",  # §4.2.4.4 Data
        id="4.2.4",
    ),
]


@pytest.mark.parametrize(("v2", "challenge", "lm", "nt", "enc_key", "data"), SPEC)
def test_client_reproduces_spec(
    v2: bool, challenge: str, lm: str, nt: str, enc_key: str, data: str
) -> None:
    client = NtlmClient(CREDS, 0, ntlm_v2=v2, workstation="COMPUTER", randomness=FIXED)
    client.negotiate()
    auth = m.decode_authenticate(client.authenticate(H(challenge)))
    assert auth.lm_response.hex() == lm
    assert auth.nt_response.hex() == nt
    assert auth.encrypted_session_key.hex() == enc_key
    assert auth.workstation == "COMPUTER".encode("utf-16-le")
    assert client.established is not None
    sealed, _sig = client.established.session.seal([PLAINTEXT])
    assert b"".join(sealed).hex() == data


# MS-NLMP §4.2.x.3 AUTHENTICATE_MESSAGEs
SPEC_AUTHENTICATE = {
    "4.2.2": (
        "4e544c4d5353500003000000180018006c00000018001800840000000c000c00480000000800080054000000"
        "100010005c000000100010009c000000358280e20501280a0000000f44006f006d00610069006e0055007300"
        "6500720043004f004d005000550054004500520098def7b87f88aa5dafe2df779688a172def11c7d5ccdef13"
        "67c43011f30298a2ad35ece64f16331c44bdbed927841f94518822b1b3f350c8958682ecbb3e3cb7"
    ),
    "4.2.3": (
        "4e544c4d5353500003000000180018006c00000018001800840000000c000c00480000000800080054000000"
        "100010005c000000000000009c000000358208820501280a0000000f44006f006d00610069006e0055007300"
        "6500720043004f004d0050005500540045005200aaaaaaaaaaaaaaaa00000000000000000000000000000000"
        "7537f803ae367128ca458204bde7caf81e97ed2683267232"
    ),
    "4.2.4": (
        "4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000"
        "100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e0055007300"
        "6500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"
        "68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000"
        "02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad254"
        "4fc9799094ce1ce90bc9d03e"
    ),
}


@pytest.mark.parametrize(("v2", "challenge", "lm", "nt", "enc_key", "data"), SPEC)
def test_server_accepts_spec_authenticate(
    request: pytest.FixtureRequest,
    v2: bool, challenge: str, lm: str, nt: str, enc_key: str, data: str,
) -> None:
    section = request.node.callspec.id
    # A client asking for the flags the §4.2.x CHALLENGE shows; the server's challenge is fixed
    # to §4.2.1 ServerChallenge, so the spec's AUTHENTICATE_MESSAGE authenticates.
    flags = m.decode_challenge(H(challenge)).flags
    server = NtlmServer(USERS, randomness=FIXED)
    server.challenge(m.encode_negotiate(m.Negotiate(flags)))
    server.accept(H(SPEC_AUTHENTICATE[section]))
    assert server.established is not None and server.established.ntlm_v2 == v2
    client = NtlmClient(CREDS, 0, ntlm_v2=v2, randomness=FIXED)
    client.negotiate()
    client.authenticate(H(challenge))
    assert client.established is not None
    sealed, sig = client.established.session.seal([PLAINTEXT])
    assert b"".join(sealed).hex() == data
    assert server.established.session.unseal(sealed, sig) == (S.SEC_E_OK, [PLAINTEXT])


@pytest.mark.parametrize("length", [0, 3, 8, 30])
def test_short_or_long_v1_lm_response_is_an_invalid_token(length: int) -> None:
    # With LM_KEY the key exchange key comes from LmChallengeResponse[0:8] (§3.4.5.1); a
    # fuzzer found that a shorter one made DES and RC4 raise inside accept(). An NTLMv1
    # LM_RESPONSE is 24 bytes (§2.2.2.3): anything else is a malformed AUTHENTICATE.
    import dataclasses

    flags = requested_flags(ContextOptions(ntlm_version="v1", lm_key=True, key_exchange=True))
    client = NtlmClient(CREDS, flags, ntlm_v2=False)
    server = NtlmServer(USERS)
    auth = m.decode_authenticate(client.authenticate(server.challenge(client.negotiate())))
    forged = m.encode_authenticate(dataclasses.replace(auth, lm_response=b"\x01" * length))
    with pytest.raises(HandshakeError) as info:
        server._accept(forged)  # not through accept()'s ValueError guard
    assert info.value.status == S.SEC_E_INVALID_TOKEN and "not 24" in str(info.value)
