"""The seed corpora of ``fuzz/corpus/<target>/``, written from readable scripts.

Each seed is a script of choices (harness.fuzzing.decode.ScriptSource): "deliver a signed
message, then replay it", "MakeSignature with an 8-byte TOKEN", "AUTHENTICATE with one MIC byte
changed"… encoded into the bytes FuzzedDataProvider decodes back into those choices. Seeds
therefore reach every operation of every target from the first execution, and libFuzzer
mutates from there. Regenerate with

    python -m harness.fuzzing.seeds            # writes fuzz/corpus/*/
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from harness.fuzzing.decode import ScriptSource

Script = dict[str, list[int | bytes]]
REPO = Path(__file__).resolve().parents[2]

# indexes into the targets' choice tuples (harness.fuzzing.targets)
V2, V1_ESS, V1, V2_NO_KEX, V2_DATAGRAM, V1_ESS_56 = range(6)
SERVER, CLIENT = 0, 1
FRESH, REPLAY, REORDER, RAW = 0, 3, 4, 5
XOR, TRUNCATE, EXTEND, RETYPE, REFLAG, SWAP, DROP, INSERT = 0, 2, 3, 4, 5, 6, 7, 8
CB_LIE, NULL_DATA, VERSION, COUNT, NULL_ARRAY, SEQNO = 9, 10, 11, 12, 13, 14
SIGN, VERIFY, SEAL, UNSEAL, SIZES = 0, 1, 2, 3, 4
DATA, TOKEN, EMPTY, PADDING = 0, 1, 2, 3  # TYPE_VALUES indexes (KINDS order)
READONLY, READONLY_WITH_CHECKSUM, BOTH = 1, 2, 3  # ATTRIBUTES indexes

HELLO = b"hello world"


def _msg(**extra: list[int | bytes]) -> Script:
    script: Script = {"data-count": [1], "data-len": [len(HELLO)], "data": [HELLO]}
    script.update(extra)
    return script


def _receive_seeds() -> dict[str, Script]:
    seeds: dict[str, Script] = {
        "fresh-v2": {"ops": [1], "op": [FRESH], **_msg()},
        "fresh-as-client": {"role": [CLIENT], "ops": [1], "op": [FRESH], **_msg()},
        "replay": {"ops": [2], "op": [FRESH, REPLAY], **_msg()},
        "reorder": {"ops": [2], "op": [REORDER, REPLAY], **_msg()},
        "delete-then-use": {"ops": [1], "op": [FRESH], **_msg(), "delete": [15]},
        "xor-signature": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [XOR],
            "at": [1],
            "offset": [6],
            "xor": [0x80],
        },
        "xor-version": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [XOR],
            "at": [1],
            "offset": [0],
            "xor": [1],
        },
        "xor-data": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [XOR],
            "at": [0],
            "offset": [3],
            "xor": [0x20],
        },
        "truncate-token": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [TRUNCATE],
            "at": [1],
            "keep": [12],
        },
        "extend-token": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [EXTEND],
            "at": [1],
            "extra-len": [4],
            "extra": [b"\xff\xff\xff\xff"],
        },
        "retype-token": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [RETYPE],
            "at": [1],
            "type": [EMPTY],
        },
        "drop-data": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [DROP],
            "at": [0],
        },
        "swap-buffers": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [SWAP],
            "at": [0],
            "with": [1],
        },
        "insert-padding": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [INSERT],
            "at": [1],
            "type": [PADDING],
            "contents-len": [4],
            "contents": [b"pad!"],
        },
        "lying-cb": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [CB_LIE],
            "at": [0],
            "cb": [2],
        },
        "null-data": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [NULL_DATA],
            "at": [0],
        },
        "bad-version": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [VERSION],
            "version": [1],
        },
        "count-lie": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [COUNT],
            "count": [2],
        },
        "null-array": {
            "ops": [1],
            "op": [FRESH],
            **_msg(),
            "mutations": [1],
            "mutation": [NULL_ARRAY],
        },
        "readonly-data": {
            "ops": [1],
            "op": [FRESH],
            "data-count": [2],
            "data-flags": [READONLY, 0],
            "data-len": [6, 5],
            "data": [b"header", b"hello"],
        },
        "readonly-with-checksum": {
            "ops": [1],
            "op": [FRESH],
            "data-count": [2],
            "data-flags": [READONLY_WITH_CHECKSUM, 0],
            "data-len": [6, 5],
            "data": [b"header", b"hello"],
        },
        "three-data-token-first": {
            "ops": [1],
            "op": [FRESH],
            "data-count": [3],
            "data-len": [1, 2, 3],
            "data": [b"a", b"bc", b"def"],
            "token-at": [0],
        },
        "raw-descriptor": {
            "ops": [1],
            "op": [RAW],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 3],
            "contents-len": [5],
            "contents": [b"hello", b"\x01" + b"\x00" * 15],
        },
        "datagram-seqno": {
            "variant": [V2_DATAGRAM],
            "ops": [2],
            "op": [FRESH, REPLAY],
            **_msg(),
            "seqno": [3],
            "mutations": [0, 1],
            "mutation": [SEQNO],
            "seqno-value": [7],
        },
    }
    for name, variant in (
        ("v1-ess", V1_ESS),
        ("v1", V1),
        ("v2-no-kex", V2_NO_KEX),
        ("v1-ess-56", V1_ESS_56),
        ("v2-datagram", V2_DATAGRAM),
    ):
        seeds[f"fresh-{name}"] = {
            "variant": [variant],
            "ops": [2],
            "op": [FRESH, FRESH],
            **_msg(),
            "data-count": [1, 1],
            "data-len": [11, 0],
        }
        seeds[f"replay-{name}"] = {
            "variant": [variant],
            "ops": [2],
            "op": [FRESH, REPLAY],
            **_msg(),
        }
    return seeds


def _descriptor_seeds() -> dict[str, Script]:
    seeds: dict[str, Script] = {}
    for fname, fn in (("sign", SIGN), ("verify", VERIFY), ("seal", SEAL), ("unseal", UNSEAL)):
        seeds[f"{fname}-data-token"] = {
            "ops": [1],
            "function": [fn],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 3],
            "contents-len": [5],
            "contents": [b"hello", b"\x00" * 16],
        }
        seeds[f"{fname}-short-token"] = {
            "ops": [1],
            "function": [fn],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 0],
            "contents-len": [4, 8],
            "contents": [b"data", b"12345678"],
        }
        seeds[f"{fname}-empty"] = {"ops": [1], "function": [fn]}
        seeds[f"{fname}-null-descriptor"] = {"ops": [1], "function": [fn], "null-desc": [31]}
        seeds[f"{fname}-zero-handle"] = {
            "ops": [1],
            "function": [fn],
            "handle": [13],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 3],
            "contents-len": [2],
            "contents": [b"hi", b"\x00" * 16],
        }
        seeds[f"{fname}-deleted-handle"] = {
            "ops": [1],
            "function": [fn],
            "handle": [15],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 3],
            "contents-len": [2],
            "contents": [b"hi", b"\x00" * 16],
        }
        seeds[f"{fname}-readonly-token"] = {
            "ops": [1],
            "function": [fn],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "flags": [0, READONLY],
            "size-class": [0, 3],
            "contents-len": [2],
            "contents": [b"hi", b"\x00" * 16],
        }
        seeds[f"{fname}-null-data-zero-length"] = {
            "ops": [1],
            "function": [fn],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 3],
            "contents-len": [4],
            "contents": [b"data", b"\x00" * 16],
            "null-data": [15, 0],
            "null-cb": [0],
        }
        seeds[f"{fname}-lying-cb"] = {
            "ops": [1],
            "function": [fn],
            "buffers": [2],
            "type": [DATA, TOKEN],
            "size-class": [0, 3],
            "contents-len": [4],
            "contents": [b"data", b"\x00" * 16],
            "cb-lie": [15, 0],
            "cb": [4],
        }
        seeds[f"{fname}-bad-version-and-count"] = {
            "ops": [1],
            "function": [fn],
            "buffers": [1],
            "type": [TOKEN],
            "size-class": [3],
            "contents": [b"\x00" * 16],
            "version-lie": [15],
            "version": [2],
            "count-lie": [15],
            "count": [4],
        }
    seeds["all-four-in-a-row"] = {
        "ops": [3],
        "function": [SEAL, UNSEAL, SIGN],
        "buffers": [2, 2, 2],
        "type": [DATA, TOKEN, DATA, TOKEN, DATA, TOKEN],
        "size-class": [0, 3, 0, 3, 0, 3],
        "contents-len": [3, 3, 3],
        "contents": [b"abc", b"\x00" * 16] * 3,
    }
    seeds["wrap-no-encrypt"] = {
        "ops": [1],
        "function": [SEAL],
        "buffers": [2],
        "type": [DATA, TOKEN],
        "size-class": [0, 3],
        "contents-len": [3],
        "contents": [b"abc", b"\x00" * 16],
        "qop": [3],
    }
    return seeds


def _differential_seeds() -> dict[str, Script]:
    seeds: dict[str, Script] = {}
    for fname, fn in (("sign", SIGN), ("seal", SEAL), ("verify", VERIFY), ("unseal", UNSEAL)):
        seeds[f"{fname}"] = {"ops": [1], "function": [fn], **_msg()}
        seeds[f"{fname}-two-data"] = {
            "ops": [2],
            "function": [fn, fn],
            "data-count": [2, 1],
            "data-len": [3, 4, 5],
            "data": [b"abc", b"defg", b"hijkl"],
        }
        seeds[f"{fname}-as-client"] = {"role": [CLIENT], "ops": [1], "function": [fn], **_msg()}
        seeds[f"{fname}-readonly"] = {
            "ops": [1],
            "function": [fn],
            "data-count": [2],
            "data-flags": [READONLY, 0],
            "data-len": [3, 3],
            "data": [b"hdr", b"abc"],
        }
    seeds["sizes"] = {"ops": [1], "function": [SIZES]}
    seeds["seal-wrap-no-encrypt"] = {"ops": [1], "function": [SEAL], **_msg(), "qop": [3]}
    seeds["unseal-tampered"] = {
        "ops": [1],
        "function": [UNSEAL],
        **_msg(),
        "mutations": [1],
        "mutation": [XOR],
        "at": [0],
        "offset": [1],
        "xor": [1],
    }
    for name, variant in (("v1-ess", V1_ESS), ("v1", V1), ("v2-datagram", V2_DATAGRAM)):
        seeds[f"seal-{name}"] = {"variant": [variant], "ops": [1], "function": [SEAL], **_msg()}
    return seeds


def _field(cls_name: str, name: str) -> int:
    """The index of a header field in harness.fuzzing.tokens' choice list for a scapy class."""
    from scapy.layers import ntlm

    from harness.fuzzing.tokens import _header_fields

    packet = getattr(ntlm, cls_name)()
    return [f.name for f in _header_fields(packet)].index(name)


def _handshake_seeds() -> dict[str, Script]:
    field, payload, flag = 0, 2, 3  # tokens.MUTATIONS indexes
    auth, chal = "NTLM_AUTHENTICATE_V2", "NTLM_CHALLENGE"
    return {
        "server-plain": {"role": [SERVER]},
        "client-plain": {"role": [CLIENT]},
        "server-v1": {"variant": [V1], "role": [SERVER]},
        "client-v1-ess": {"variant": [V1_ESS], "role": [CLIENT]},
        "server-negotiate-flag": {
            "negotiate-mutations": [1],
            "negotiate-mutation": [flag],
            "flag-bit": [19],
        },
        "server-negotiate-lying-domain": {
            "negotiate-mutations": [1],
            "negotiate-mutation": [field],
            "field": [_field("NTLM_NEGOTIATE", "DomainNameLen")],
            "lie-how": [0],
            "field-value": [7],
        },
        "server-authenticate-user": {
            "authenticate-mutations": [1],
            "authenticate-mutation": [payload],
            "payload-field": [3],
            "name-len": [5],
            "name": [b"Admin"],
        },
        "server-authenticate-nt-response": {
            "authenticate-mutations": [1],
            "authenticate-mutation": [payload],
            "payload-field": [1],
            "payload-len": [24],
            "payload": [b"\x00" * 24],
        },
        "server-authenticate-lying-length": {
            "authenticate-mutations": [1],
            "authenticate-mutation": [field],
            "field": [_field(auth, "LmChallengeResponseLen")],
            "lie-how": [0],
            "field-value": [7],
        },
        "server-authenticate-mic": {
            "authenticate-mutations": [1],
            "authenticate-mutation": [field],
            "field": [_field(auth, "MIC")],
            "field-bytes": [b"\x00" * 16],
        },
        "server-authenticate-flag": {
            "authenticate-mutations": [1],
            "authenticate-mutation": [flag],
            "flag-bit": [4],
        },
        "server-authenticate-truncated": {
            "authenticate-mutations": [1],
            "authenticate-mutation": [4],
            "byte-edit": [1],
            "byte-keep": [70],
        },
        "client-challenge-target-info": {
            "role": [CLIENT],
            "challenge-mutations": [1],
            "challenge-mutation": [payload],
            "payload-field": [1],
            "av-count": [1],
            "av-id": [7],
            "av-value-len": [3],
            "av-value": [b"\x01\x02\x03"],
        },
        "client-challenge-no-eol": {
            "role": [CLIENT],
            "challenge-mutations": [1],
            "challenge-mutation": [payload],
            "payload-field": [1],
            "av-count": [1],
            "av-id": [2],
            "av-value-len": [2],
            "av-value": [b"A\x00"],
            "av-no-eol": [3],
        },
        "client-challenge-lying-offset": {
            "role": [CLIENT],
            "challenge-mutations": [1],
            "challenge-mutation": [field],
            "field": [_field(chal, "TargetInfoBufferOffset")],
            "lie-how": [0],
            "field-value": [8],
        },
        "client-challenge-flags": {
            "role": [CLIENT],
            "challenge-mutations": [2],
            "challenge-mutation": [flag, flag],
            "flag-bit": [3, 29],
        },
        "client-challenge-server-challenge": {
            "role": [CLIENT],
            "challenge-mutations": [1],
            "challenge-mutation": [field],
            "field": [_field(chal, "ServerChallenge")],
            "field-bytes": [b"\x00" * 8],
        },
        "client-challenge-xor": {
            "role": [CLIENT],
            "challenge-mutations": [1],
            "challenge-mutation": [4],
            "byte-edit": [0],
            "byte-at": [40],
            "byte-xor": [0xFF],
        },
    }


def _properties_seeds() -> dict[str, bytes]:
    """Hypothesis choice buffers (fuzz_one_input): any bytes are valid input."""
    out = {"empty": b""}
    for n in (8, 32, 128, 512):
        out[f"counter-{n}"] = bytes(i % 251 for i in range(n))
        out[f"ones-{n}"] = b"\x01" * n
    return out


def corpora() -> dict[str, dict[str, bytes]]:
    """target → seed name → bytes."""

    def encode(scripts: dict[str, Script], target: str) -> dict[str, bytes]:
        from harness.fuzzing import targets

        cls = targets.TARGETS[target]
        out = {}
        for name, script in scripts.items():
            src = ScriptSource(script)
            # run the decoder against the script to record every answer in order
            _decode_only(cls, src)
            out[name] = src.encode()
        return out

    receive = _receive_seeds()
    return {
        "verify": encode(receive, "verify"),
        "decrypt": encode(receive, "decrypt"),
        "descriptor": encode(_descriptor_seeds(), "descriptor"),
        "differential": encode(_differential_seeds(), "differential"),
        "handshake": encode(_handshake_seeds(), "handshake"),
        "properties": _properties_seeds(),
    }


def _decode_only(cls: type[Any], src: ScriptSource) -> None:
    """Drive a target's program against the reference so that the script's answers are
    recorded in the order the target asks for them."""
    target = _CACHE.get(cls.name)
    if target is None:
        target = cls("reference")
        _CACHE[cls.name] = target
    target.reset()
    target._result = type(target._result)()
    try:
        target.program(src)
    except Exception:  # noqa: BLE001 - a seed's finding does not matter here
        pass


_CACHE: dict[str, Any] = {}


def write(root: Path | None = None) -> dict[str, int]:
    """Write every corpus under ``root`` (default fuzz/corpus); returns counts per target."""
    base = (REPO / "fuzz" / "corpus") if root is None else root
    counts = {}
    for target, seeds in corpora().items():
        folder = base / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        counts[target] = len(seeds)
    return counts


def digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


if __name__ == "__main__":
    for target, count in write(Path(sys.argv[1]) if len(sys.argv) > 1 else None).items():
        print(f"{target}: {count} seeds")
