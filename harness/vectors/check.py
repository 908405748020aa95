"""Replay golden vectors against an adapter and say, per vector, PASS, FAIL, UNSUPPORTED or ERROR.

Key and message vectors exercise the NTLM functions themselves (``harness.ntlm``), so only an
adapter declaring ``Capability.NTLM_PRIMITIVES`` runs them; seal vectors go through the adapter's
EncryptMessage/DecryptMessage on contexts built from a session key (``Capability.SESSION_KEY``),
which is how an implementation under test is compared with the spec's bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.adapters.base import Adapter, Capability, Handle
from harness.ntlm import messages as m
from harness.ntlm.crypto import rc4k
from harness.ntlm.handshake import HandshakeError, NtlmServer
from harness.ntlm.keys import (
    Responses,
    compute_response_v1,
    compute_response_v2,
    kxkey,
    lmowf_v1,
    ntlmv2_temp,
    ntowf_v1,
    ntowf_v2,
    sealkey,
    signkey,
)
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import BufferType, SecStatus, status_name

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors"

Json = dict[str, Any]


@dataclass(frozen=True)
class VectorResult:
    """The outcome of one vector; ``result`` is the vector's expected class."""

    file: str
    tcId: int  # noqa: N815 - the Wycheproof field name
    comment: str
    result: str
    outcome: str  # "PASS" | "FAIL" | "UNSUPPORTED" | "ERROR"
    detail: str


def default_vector_paths() -> list[Path]:
    """Every ``*_test.json`` under the repository's vectors/ folder, in a stable order."""
    return sorted(VECTORS_DIR.rglob("*_test.json"))


def _hex(text: str) -> bytes:
    return bytes.fromhex(text)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _judge(expected_class: str, ok: bool, detail: str) -> tuple[str, str]:
    """PASS/FAIL from a runner's verdict; ``ok`` already means "behaved as the vector says".

    An ``acceptable`` vector passes either way, but a difference is named in the detail.
    """
    if expected_class == "acceptable":
        return "PASS", detail if ok else f"acceptable: differs ({detail})"
    return ("PASS", detail) if ok else ("FAIL", detail)


# ---------------------------------------------------------------- keys


def _key_function(group: Json, test: Json) -> bytes:
    """Compute what ``test["function"]`` names from the group's inputs with harness.ntlm.keys."""
    flags = int(test["negotiateFlags"] if "negotiateFlags" in test else group["negotiateFlags"], 16)
    password, user, domain = group["password"], group["user"], group["domain"]
    server_challenge = _hex(group["serverChallenge"])
    client_challenge = _hex(group["clientChallenge"])
    v2 = group["ntlmVersion"] == "v2"
    target_info = _hex(group.get("targetInfo", ""))
    time = _hex(group.get("time", "00" * 8))
    client_to_server = group["direction"] == "client-to-server"
    exported = _hex(group["exportedSessionKey"])

    def responses() -> Responses:
        if v2:
            key = ntowf_v2(password, user, domain)
            return compute_response_v2(
                key, key, server_challenge, client_challenge, time, target_info
            )
        return compute_response_v1(
            flags, ntowf_v1(password), lmowf_v1(password), server_challenge, client_challenge
        )

    def key_exchange_key() -> bytes:
        r = responses()
        return kxkey(
            flags,
            r.session_base_key,
            r.lm_challenge_response,
            server_challenge,
            lmowf_v1(password),
            ntlm_v2=v2,
        )

    functions: dict[str, Callable[[], bytes | None]] = {
        "LMOWFv1": lambda: lmowf_v1(password),
        "NTOWFv1": lambda: ntowf_v1(password),
        "NTOWFv2": lambda: ntowf_v2(password, user, domain),
        "SessionBaseKey": lambda: responses().session_base_key,
        "KeyExchangeKey": key_exchange_key,
        "NTLMv1Response": lambda: responses().nt_challenge_response,
        "NTLMv2Response": lambda: responses().nt_challenge_response,
        "NTProofStr": lambda: responses().nt_challenge_response[:16],
        "LMv1Response": lambda: responses().lm_challenge_response,
        "LMv2Response": lambda: responses().lm_challenge_response,
        "temp": lambda: ntlmv2_temp(time, client_challenge, target_info),
        "EncryptedRandomSessionKey": lambda: rc4k(
            key_exchange_key(), _hex(group["randomSessionKey"])
        ),
        "SealKey": lambda: sealkey(flags, exported, client_to_server=client_to_server),
        "SignKey": lambda: signkey(flags, exported, client_to_server=client_to_server),
    }
    name = test["function"]
    if name not in functions:
        raise ValueError(f"unknown function {name!r}")
    value = functions[name]()
    return b"" if value is None else value


def _check_keys(adapter: Adapter, group: Json, test: Json) -> tuple[bool, str]:
    got = _key_function(group, test).hex()
    expected, function = test["expected"], test["function"]
    if test["result"] == "invalid":  # the vector's value is a wrong one: it must not come out
        if got == expected:
            return False, f"{function} produced the invalid value {expected}"
        return True, f"{function} = {got}, not the invalid {expected}"
    if got == expected:
        return True, f"{function} = {expected}"
    return False, f"{function}: expected {expected}, got {got}"


# ---------------------------------------------------------------- messages


def _field_diffs(what: str, expected: Json, actual: Json) -> list[str]:
    return [
        f"{what}.{name}: expected {want}, got {actual.get(name)}"
        for name, want in expected.items()
        if actual.get(name) != want
    ]


def _decoded_challenge(msg: m.Challenge) -> Json:
    return {
        "negotiateFlags": f"{msg.flags:08x}",
        "serverChallenge": msg.server_challenge.hex(),
        "targetName": msg.target_name.hex(),
        "targetInfo": msg.target_info.hex(),
        "version": msg.version.hex(),
    }


def _decoded_authenticate(msg: m.Authenticate) -> Json:
    return {
        "negotiateFlags": f"{msg.flags:08x}",
        "lmChallengeResponse": msg.lm_response.hex(),
        "ntChallengeResponse": msg.nt_response.hex(),
        "domainName": msg.domain.hex(),
        "userName": msg.user.hex(),
        "workstation": msg.workstation.hex(),
        "encryptedRandomSessionKey": msg.encrypted_session_key.hex(),
        "version": msg.version.hex(),
    }


def _accept(group: Json, challenge: bytes, authenticate: bytes) -> tuple[bytes | None, str]:
    """Prime a reference server with the CHALLENGE and feed it the AUTHENTICATE.

    Returns the exported session key, or None and why it was rejected.
    """
    try:
        m.decode_challenge(challenge)
    except m.MessageError as exc:
        return None, f"CHALLENGE_MESSAGE does not decode: {exc}"
    server = NtlmServer({(group["user"], group["domain"]): group["password"]})
    server.prime(challenge)
    try:
        server.accept(authenticate)
    except HandshakeError as exc:
        return None, f"rejected with {status_name(exc.status)}: {exc}"
    except m.MessageError as exc:
        return None, f"rejected as malformed: {exc}"
    assert server.established is not None
    return server.established.exported_session_key, "accepted"


def _check_messages(adapter: Adapter, group: Json, test: Json) -> tuple[bool, str]:
    challenge, authenticate = _hex(test["challenge"]), _hex(test["authenticate"])
    diffs: list[str] = []
    if "expectedChallenge" in test:
        try:
            actual = _decoded_challenge(m.decode_challenge(challenge))
            diffs += _field_diffs("challenge", test["expectedChallenge"], actual)
        except m.MessageError as exc:
            diffs.append(f"CHALLENGE_MESSAGE does not decode: {exc}")
    if "expectedAuthenticate" in test:
        try:
            actual = _decoded_authenticate(m.decode_authenticate(authenticate))
            diffs += _field_diffs("authenticate", test["expectedAuthenticate"], actual)
        except m.MessageError as exc:
            diffs.append(f"AUTHENTICATE_MESSAGE does not decode: {exc}")
    key, how = _accept(group, challenge, authenticate)
    if test["result"] == "invalid":
        if key is not None:
            diffs.append("server accepted a tampered AUTHENTICATE_MESSAGE")
        return not diffs, "; ".join(diffs) or how
    if key is None:
        diffs.append(f"server {how}")
    elif key.hex() != group["exportedSessionKey"]:
        diffs.append(
            f"exported session key: expected {group['exportedSessionKey']}, got {key.hex()}"
        )
    return not diffs, "; ".join(diffs) or f"decoded and accepted, exported key {key and key.hex()}"


# ---------------------------------------------------------------- seal


def _message(data: bytes, token: bytes | int) -> SecBufferDesc:
    buffers = [SecBuffer.of(BufferType.DATA, data), SecBuffer.of(BufferType.TOKEN, token)]
    return SecBufferDesc(buffers)


def _check_seal(adapter: Adapter, group: Json, test: Json) -> tuple[bool, str]:
    """EncryptMessage on the sender and DecryptMessage on the receiver, fresh contexts each."""
    flags = int(group["negotiateFlags"], 16)
    key = _hex(group["exportedSessionKey"])
    seqno = int(group["seqNum"])
    sender_is_client = group["direction"] == "client-to-server"
    plaintext, sealed = _hex(test["plaintext"]), _hex(test["sealed"])
    signature = _hex(test["signature"])
    handles: list[Handle] = []
    diffs: list[str] = []
    try:
        if test["result"] != "invalid":
            sender = adapter.from_session_key(flags, key, client=sender_is_client)
            handles.append(sender)
            desc = _message(plaintext, 16)
            call = adapter.encrypt_message(sender, 0, desc, seqno)
            if call.status != SecStatus.SEC_E_OK:
                diffs.append(f"EncryptMessage returned {status_name(call.status)}")
            else:
                data, token = desc.first(BufferType.DATA), desc.first(BufferType.TOKEN)
                got_data = bytes(data.data or b"") if data else b""
                got_sig = bytes(token.data or b"") if token else b""
                if got_data != sealed:
                    diffs.append(f"sealed: expected {sealed.hex()}, got {got_data.hex()}")
                if got_sig != signature:
                    diffs.append(f"signature: expected {signature.hex()}, got {got_sig.hex()}")
        receiver = adapter.from_session_key(flags, key, client=not sender_is_client)
        handles.append(receiver)
        desc = _message(sealed, signature)
        call = adapter.decrypt_message(receiver, desc, seqno)
        status = status_name(call.status)
        if test["result"] == "invalid":
            if call.status == SecStatus.SEC_E_OK:
                diffs.append("DecryptMessage accepted a tampered message (SEC_E_OK)")
            elif call.status != SecStatus.SEC_E_MESSAGE_ALTERED:
                return True, f"rejected with {status} (SEC_E_MESSAGE_ALTERED expected)"
            else:
                return True, f"rejected with {status}"
        elif call.status != SecStatus.SEC_E_OK:
            diffs.append(f"DecryptMessage returned {status}")
        else:
            data = desc.first(BufferType.DATA)
            got = bytes(data.data or b"") if data else b""
            if got != plaintext:
                diffs.append(f"decrypted: expected {plaintext.hex()}, got {got.hex()}")
    finally:
        for handle in handles:
            try:
                adapter.delete_context(handle)
            except Exception:  # noqa: BLE001 - cleanup must not hide the vector's outcome
                pass
    return not diffs, "; ".join(diffs) or "sealed, signed and unsealed as expected"


# ---------------------------------------------------------------- driver

Runner = Callable[[Adapter, Json, Json], tuple[bool, str]]

RUNNERS: dict[str, tuple[Capability, Runner]] = {
    "NTLM-keys": (Capability.NTLM_PRIMITIVES, _check_keys),
    "NTLM-messages": (Capability.NTLM_PRIMITIVES, _check_messages),
    "NTLM-seal": (Capability.SESSION_KEY, _check_seal),
}


def _load(path: Path) -> tuple[Json | None, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"malformed JSON: {_one_line(exc)}"
    if not isinstance(doc, dict) or not isinstance(doc.get("testGroups"), list):
        return None, "not a vector file (no testGroups)"
    return doc, ""


def check_file(path: Path, adapter: Adapter) -> list[VectorResult]:
    """Results for every vector of one file; a file that cannot be used is one ERROR (tcId 0)."""
    name = str(path)
    doc, why = _load(path)
    if doc is None:
        return [VectorResult(name, 0, "", "", "ERROR", why)]
    algorithm = doc.get("algorithm")
    if algorithm not in RUNNERS:
        return [VectorResult(name, 0, "", "", "ERROR", f"unknown algorithm {algorithm!r}")]
    needed, runner = RUNNERS[algorithm]
    missing = needed not in adapter.capabilities
    results = []
    for group in doc["testGroups"]:
        for test in group.get("tests", []):
            tc_id, comment = test.get("tcId", 0), test.get("comment", "")
            expected = test.get("result", "")
            if missing:
                detail = (
                    f"adapter {adapter.name or type(adapter).__name__} lacks "
                    f"Capability.{needed.name} needed by {algorithm} vectors"
                )
                results.append(VectorResult(name, tc_id, comment, expected, "UNSUPPORTED", detail))
                continue
            try:
                ok, detail = runner(adapter, group, test)
            except Exception as exc:  # noqa: BLE001 - any failure of the call is an ERROR case
                results.append(
                    VectorResult(name, tc_id, comment, expected, "ERROR", _one_line(exc))
                )
                continue
            outcome, detail = _judge(expected, ok, detail)
            results.append(VectorResult(name, tc_id, comment, expected, outcome, detail))
    return results


def check(paths: Iterable[Path | str], adapter: Adapter) -> list[VectorResult]:
    """Replay every vector of the given files against ``adapter``."""
    results: list[VectorResult] = []
    for path in paths:
        results.extend(check_file(Path(path), adapter))
    return results
