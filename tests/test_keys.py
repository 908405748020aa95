"""Every MS-NLMP §4.2 value reachable through harness.ntlm.keys (and rc4k for §x.2.3)."""

from __future__ import annotations

import pytest

from harness.ntlm import keys as k
from harness.ntlm.crypto import rc4k
from harness.ntlm.flags import NegotiateFlags as F

H = bytes.fromhex

# MS-NLMP §4.2.1 Common Values
USER, DOMAIN, PASSWORD = "User", "Domain", "Password"
RANDOM_SESSION_KEY = H("55555555555555555555555555555555")
TIME = H("0000000000000000")
CLIENT_CHALLENGE = H("aaaaaaaaaaaaaaaa")
SERVER_CHALLENGE = H("0123456789abcdef")

# MS-NLMP §4.2.2 and §4.2.3: the challenge flags of the two NTLM v1 examples.
V1_FLAGS = 0xE2028233
V1_ESS_FLAGS = 0x820A8233
# MS-NLMP §4.2.4: challenge flags of the NTLMv2 example.
V2_FLAGS = 0xE28A8233
# MS-NLMP §4.2.4: TargetInfo as in the CHALLENGE_MESSAGE (the "ServerName" of §3.3.2).
V2_TARGET_INFO = H(
    "02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000"
)


def test_unicode_common_values() -> None:
    # MS-NLMP §4.2.1
    assert k.unicode(USER) == H("5500730065007200")
    assert k.unicode(USER.upper()) == H("5500530045005200")
    assert k.unicode(DOMAIN) == H("44006f006d00610069006e00")
    assert k.unicode(PASSWORD) == H("500061007300730077006f0072006400")


def test_lmowf_v1() -> None:
    # MS-NLMP §4.2.2.1.1
    assert k.lmowf_v1(PASSWORD).hex() == "e52cac67419a9a224a3b108f3fa6cb6d"


def test_lmowf_v1_is_case_insensitive() -> None:
    # MS-NLMP §3.3.1: LMOWFv1 uses UpperCase(Passwd), so case variants share the value
    # printed in §4.2.2.1.1.
    assert k.lmowf_v1("pAsSwOrD").hex() == "e52cac67419a9a224a3b108f3fa6cb6d"


def test_ntowf_v1() -> None:
    # MS-NLMP §4.2.2.1.2 and §4.2.3.1.1
    assert k.ntowf_v1(PASSWORD).hex() == "a4f49c406510bdcab6824ee7c30fd852"


def test_ntowf_v2() -> None:
    # MS-NLMP §4.2.4.1.1
    assert k.ntowf_v2(PASSWORD, USER, DOMAIN).hex() == "0c868a403bfd7a93a3001ef22ef02e3f"


def test_ntowf_v2_uppercases_user_only() -> None:
    # MS-NLMP §3.3.2: NTOWFv2 = HMAC_MD5(MD4(UNICODE(Passwd)), UNICODE(ConcatenationOf(
    # Uppercase(User), UserDom))): the user's case does not matter, the domain's does.
    assert k.ntowf_v2(PASSWORD, "uSeR", DOMAIN).hex() == "0c868a403bfd7a93a3001ef22ef02e3f"
    assert k.ntowf_v2(PASSWORD, USER, "DOMAIN").hex() != "0c868a403bfd7a93a3001ef22ef02e3f"


def _v1(flags: int) -> k.Responses:
    return k.compute_response_v1(
        flags, k.ntowf_v1(PASSWORD), k.lmowf_v1(PASSWORD), SERVER_CHALLENGE, CLIENT_CHALLENGE
    )


def test_v1_responses_without_ess() -> None:
    r = _v1(V1_FLAGS)
    # MS-NLMP §4.2.2.2.1
    assert r.nt_challenge_response.hex() == "67c43011f30298a2ad35ece64f16331c44bdbed927841f94"
    # MS-NLMP §4.2.2.2.2
    assert r.lm_challenge_response.hex() == "98def7b87f88aa5dafe2df779688a172def11c7d5ccdef13"
    # MS-NLMP §4.2.2.1.3
    assert r.session_base_key.hex() == "d87262b0cde4b1cb7499becccdf10784"


def test_v1_no_lm_response_copies_nt() -> None:
    # MS-NLMP §3.3.1: with NoLMResponseNTLMv1, LmChallengeResponse = NtChallengeResponse
    # (the §4.2.2.2.1 value).
    r = k.compute_response_v1(
        V1_FLAGS, k.ntowf_v1(PASSWORD), k.lmowf_v1(PASSWORD), SERVER_CHALLENGE,
        CLIENT_CHALLENGE, no_lm_response=True,
    )
    assert r.lm_challenge_response.hex() == "67c43011f30298a2ad35ece64f16331c44bdbed927841f94"


def test_v1_responses_with_ess() -> None:
    r = _v1(V1_ESS_FLAGS)
    # MS-NLMP §4.2.3.2.2
    assert r.nt_challenge_response.hex() == "7537f803ae367128ca458204bde7caf81e97ed2683267232"
    # MS-NLMP §4.2.3.2.1
    assert r.lm_challenge_response.hex() == "aaaaaaaaaaaaaaaa00000000000000000000000000000000"
    # MS-NLMP §4.2.3.1.2
    assert r.session_base_key.hex() == "d87262b0cde4b1cb7499becccdf10784"


def _kx(flags: int) -> bytes:
    r = _v1(flags)
    return k.kxkey(
        flags, r.session_base_key, r.lm_challenge_response, SERVER_CHALLENGE,
        k.lmowf_v1(PASSWORD), ntlm_v2=False,
    )


def test_kxkey_v1_default_is_session_base_key() -> None:
    # MS-NLMP §4.2.2.1.3 remark / §3.4.5.1: without LM_KEY or NON_NT_SESSION_KEY the
    # KeyExchangeKey is the SessionBaseKey; §4.2.2.2.3 EncryptedRandomSessionKey follows.
    kx = _kx(V1_FLAGS)
    assert kx.hex() == "d87262b0cde4b1cb7499becccdf10784"
    assert rc4k(kx, RANDOM_SESSION_KEY).hex() == "518822b1b3f350c8958682ecbb3e3cb7"


def test_kxkey_v1_ess() -> None:
    # MS-NLMP §4.2.3.1.3
    assert _kx(V1_ESS_FLAGS).hex() == "eb93429a8bd952f8b89c55b87f475edc"


def test_kxkey_v1_lm_key() -> None:
    kx = _kx(V1_FLAGS | F.LM_KEY)
    # MS-NLMP §4.2.2.2.2: "KeyExchangeKey if NTLMSSP_NEGOTIATE_LM_KEY is set"
    assert kx.hex() == "b09e379f7fbecb1eaf0afdcb0383c8a0"
    # MS-NLMP §4.2.2.2.3: EncryptedRandomSessionKey if NTLMSSP_NEGOTIATE_LM_KEY is set
    assert rc4k(kx, RANDOM_SESSION_KEY).hex() == "4cd7bb57d697ef9b549f02b8f9b37864"


def test_kxkey_v1_non_nt_session_key() -> None:
    kx = _kx(V1_FLAGS | F.REQUEST_NON_NT_SESSION_KEY)
    # MS-NLMP §4.2.2.2.3: EncryptedRandomSessionKey if REQUEST_NON_NT_SESSION_KEY is set
    assert rc4k(kx, RANDOM_SESSION_KEY).hex() == "7452ca55c225a1ca04b48fae32cf56fc"


def test_kxkey_ess_takes_precedence_over_lm_key() -> None:
    # MS-NLMP §3.4.5.1 tests EXTENDED_SESSIONSECURITY first: §4.2.3.1.3 value again.
    assert _kx(V1_ESS_FLAGS | F.LM_KEY).hex() == "eb93429a8bd952f8b89c55b87f475edc"


def _v2() -> k.Responses:
    key = k.ntowf_v2(PASSWORD, USER, DOMAIN)
    return k.compute_response_v2(
        key, key, SERVER_CHALLENGE, CLIENT_CHALLENGE, TIME, V2_TARGET_INFO
    )


# MS-NLMP §4.2.4.1.3
V2_TEMP = (
    "01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e00"
    "01000c005300650072007600650072000000000000000000"
)


def test_ntlmv2_temp() -> None:
    assert k.ntlmv2_temp(TIME, CLIENT_CHALLENGE, V2_TARGET_INFO).hex() == V2_TEMP


def test_ntlmv2_nt_response() -> None:
    nt = _v2().nt_challenge_response
    # MS-NLMP §4.2.4.2.2: NTProofStr, then temp (as the §4.2.4.3 AUTHENTICATE carries it)
    assert nt[:16].hex() == "68cd0ab851e51c96aabc927bebef6a1c"
    assert nt[16:].hex() == V2_TEMP


def test_lmv2_response() -> None:
    # MS-NLMP §4.2.4.2.1
    assert _v2().lm_challenge_response.hex() == "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"


def test_ntlmv2_session_base_key_and_encrypted_key() -> None:
    r = _v2()
    # MS-NLMP §4.2.4.1.2
    assert r.session_base_key.hex() == "8de40ccadbc14a82f15cb0ad0de95ca3"
    kx = k.kxkey(
        V2_FLAGS, r.session_base_key, r.lm_challenge_response, SERVER_CHALLENGE,
        k.lmowf_v1(PASSWORD), ntlm_v2=True,
    )
    # MS-NLMP §3.4.5.1: NTLMv2 KXKEY is the SessionBaseKey; §4.2.4.2.3 EncryptedRandomSessionKey
    assert kx == r.session_base_key
    assert rc4k(kx, RANDOM_SESSION_KEY).hex() == "c5dad2544fc9799094ce1ce90bc9d03e"


def test_seal_and_sign_keys_v1_ess_56_bit() -> None:
    # MS-NLMP §4.2.3.4: client-to-server keys from the §4.2.3.1.3 KeyExchangeKey (no KEY_EXCH,
    # so the exported session key is the KeyExchangeKey), 56-bit.
    exported = H("eb93429a8bd952f8b89c55b87f475edc")
    seal = k.sealkey(V1_ESS_FLAGS, exported, client_to_server=True)
    sign = k.signkey(V1_ESS_FLAGS, exported, client_to_server=True)
    assert seal.hex() == "04dd7f014d8504d265a25cc86a3a7c06"
    assert sign is not None and sign.hex() == "60e799be5c72fc92922ae8ebe961fb8d"


def test_seal_and_sign_keys_v2_128_bit() -> None:
    # MS-NLMP §4.2.4.4: client-to-server keys from RandomSessionKey (KEY_EXCH), 128-bit.
    seal = k.sealkey(V2_FLAGS, RANDOM_SESSION_KEY, client_to_server=True)
    sign = k.signkey(V2_FLAGS, RANDOM_SESSION_KEY, client_to_server=True)
    assert seal.hex() == "59f600973cc4960a25480a7c196e4c58"
    assert sign is not None and sign.hex() == "4788dc861b4782f35d43fd98fe1a2d39"


def test_server_to_client_keys_differ_from_client_to_server() -> None:
    # MS-NLMP §3.4.5.2/§3.4.5.3: the two directions use different magic constants.
    for flags in (V1_ESS_FLAGS, V2_FLAGS):
        c2s = k.sealkey(flags, RANDOM_SESSION_KEY, client_to_server=True)
        s2c = k.sealkey(flags, RANDOM_SESSION_KEY, client_to_server=False)
        assert c2s != s2c and len(s2c) == 16
        assert k.signkey(flags, RANDOM_SESSION_KEY, client_to_server=True) != k.signkey(
            flags, RANDOM_SESSION_KEY, client_to_server=False
        )


def test_no_signing_key_without_ess() -> None:
    # MS-NLMP §3.4.5.2: SIGNKEY is defined only with EXTENDED_SESSIONSECURITY.
    assert k.signkey(V1_FLAGS, RANDOM_SESSION_KEY, client_to_server=True) is None


KEY = bytes(range(0x10, 0x20))
BITS = {128: F.NEGOTIATE_128 | F.NEGOTIATE_56, 56: F.NEGOTIATE_56, 40: 0}


@pytest.mark.parametrize("bits", [128, 56, 40])
def test_sealkey_ess_key_strength(bits: int) -> None:
    # MS-NLMP §3.4.5.3: with ESS, SealKey = MD5(ExportedSessionKey[0..n] ‖ magic) where n
    # covers 16, 7 or 5 bytes. Only those bytes may influence the key.
    flags = F.EXTENDED_SESSIONSECURITY | BITS[bits]
    used = {128: 16, 56: 7, 40: 5}[bits]
    seal = k.sealkey(flags, KEY, client_to_server=True)
    assert len(seal) == 16
    for i in range(16):
        changed = bytearray(KEY)
        changed[i] ^= 0x01
        other = k.sealkey(flags, bytes(changed), client_to_server=True)
        assert (other != seal) == (i < used), i


def test_sealkey_ess_56_uses_seven_bytes_as_in_spec() -> None:
    # MS-NLMP §4.2.3.4: "KeyExchangeKey cut to 56 bits" = eb93429a8bd952; any key with those
    # 7 leading bytes yields the printed SealKey.
    exported = H("eb93429a8bd952") + bytes(9)
    assert k.sealkey(V1_ESS_FLAGS, exported, client_to_server=True).hex() == (
        "04dd7f014d8504d265a25cc86a3a7c06"
    )


@pytest.mark.parametrize("extra", [F.LM_KEY, F.DATAGRAM])
def test_sealkey_lm_key_56_bit(extra: int) -> None:
    # MS-NLMP §3.4.5.3: LM_KEY (or DATAGRAM) with NEGOTIATE_56:
    # SealKey = ConcatenationOf(ExportedSessionKey[0..6], 0xA0)
    seal = k.sealkey(F.NEGOTIATE_56 | extra, KEY, client_to_server=True)
    assert len(seal) == 8
    assert seal[:7] == KEY[:7]
    assert seal[7:] == b"\xa0"


@pytest.mark.parametrize("extra", [F.LM_KEY, F.DATAGRAM])
def test_sealkey_lm_key_40_bit(extra: int) -> None:
    # MS-NLMP §3.4.5.3: LM_KEY (or DATAGRAM) without NEGOTIATE_56:
    # SealKey = ConcatenationOf(ExportedSessionKey[0..4], 0xE5, 0x38, 0xB0)
    seal = k.sealkey(extra, KEY, client_to_server=True)
    assert len(seal) == 8
    assert seal[:5] == KEY[:5]
    assert seal[5:] == b"\xe5\x38\xb0"


def test_sealkey_without_ess_or_lm_key_is_exported_key() -> None:
    # MS-NLMP §3.4.5.3 final Else: SealKey = ExportedSessionKey (used for the §4.2.2.4 example).
    for bits in BITS.values():
        assert k.sealkey(int(bits), KEY, client_to_server=True) == KEY
        assert k.sealkey(int(bits), KEY, client_to_server=False) == KEY
