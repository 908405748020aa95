"""Structure-aware mutation of NTLM tokens with scapy's packet classes (scapy.layers.ntlm).

A token is parsed with the class of its MessageType (NTLM_NEGOTIATE, NTLM_CHALLENGE,
NTLM_AUTHENTICATE or NTLM_AUTHENTICATE_V2, by the NtChallengeResponse length), then edited field
by field: a fixed header field (flags, Len/MaxLen/BufferOffset triples, ServerChallenge,
Version, MIC…) gets a boundary or random value; a payload field (DomainName, TargetInfo,
NtChallengeResponse…) gets new contents, with the Len/MaxLen/BufferOffset fields recomputed by
scapy (a consistent message) or left as they were (a message whose lengths lie). Byte-level
edits (XOR, truncate, extend) come last, so every shape of malformed token stays reachable.
Tokens scapy cannot parse or build are mutated at the byte level only.
"""

from __future__ import annotations

import struct
from typing import Any

from harness.fuzzing.decode import Source, blob, pick, rare

MUTATIONS = ("field", "field", "payload", "flag", "bytes")
BYTE_EDITS = ("xor", "truncate", "extend")
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0xFFFFFFFF)
_LENGTHS = ("Len", "MaxLen", "BufferOffset")
# Where each Len/MaxLen/BufferOffset triple sits (MS-NLMP §2.2.1.1-§2.2.1.3), by MessageType.
# Lying values are written into the built bytes: scapy would pad the payload up to a lying
# BufferOffset (gigabytes of zeros for 0xFFFFFFFF).
TRIPLES = {
    1: {"DomainName": 16, "WorkstationName": 24},
    2: {"TargetName": 12, "TargetInfo": 40},
    3: {
        "LmChallengeResponse": 12,
        "NtChallengeResponse": 20,
        "DomainName": 28,
        "UserName": 36,
        "Workstation": 44,
        "EncryptedRandomSessionKey": 52,
    },
}
# AvId values of MS-NLMP §2.2.2.1 (0 MsvAvEOL … 10 MsvAvChannelBindings) and one undefined.
_AV_IDS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x7F)


def _classes() -> dict[int, Any]:
    from scapy.layers import ntlm

    return {1: ntlm.NTLM_NEGOTIATE, 2: ntlm.NTLM_CHALLENGE, 3: ntlm.NTLM_AUTHENTICATE}


def parse(token: bytes) -> Any | None:
    """The scapy packet for an NTLM token, or None when scapy cannot take it."""
    from scapy.layers import ntlm

    if len(token) < 12:
        return None
    (kind,) = struct.unpack_from("<I", token, 8)
    cls = _classes().get(kind)
    if cls is None:
        return None
    if kind == 3 and len(token) >= 24:
        (nt_len,) = struct.unpack_from("<H", token, 20)
        if nt_len > 24:
            cls = ntlm.NTLM_AUTHENTICATE_V2
    try:
        return cls(token)
    except Exception:  # noqa: BLE001 - scapy is a tool here, not the implementation under test
        return None


def _header_fields(packet: Any) -> list[Any]:
    return [f for f in packet.fields_desc if f.name not in ("Payload", "Signature")] + [
        f for f in packet.fields_desc if f.name == "Signature"
    ]


def _payload_names(packet: Any) -> list[str]:
    try:
        return [name for name, _value in packet.Payload]
    except Exception:  # noqa: BLE001
        return []


def _reset_lengths(packet: Any) -> None:
    for f in packet.fields_desc:
        if f.name.endswith(_LENGTHS):
            setattr(packet, f.name, None)


def _size(field: Any) -> int:
    """The width in bytes of a fixed-size integer field (4 when scapy does not say)."""
    inner = getattr(field, "fld", field)  # ConditionalField wraps the real field
    size = getattr(inner, "sz", 4)
    return max(int(size), 1) if isinstance(size, int | float) else 4


def _set_field(src: Source, packet: Any, field: Any) -> None:
    name = field.name
    current = packet.getfieldval(name)
    if isinstance(current, bytes | str):
        width = len(current) or 8
        if rare(src, "resize", 4):
            packet.setfieldval(name, blob(src, 24, "field-bytes"))
        else:
            packet.setfieldval(name, src.bytes(width, "field-bytes"))
        return
    bits = 8 * _size(field)
    mask = (1 << bits) - 1
    try:
        value = int(current)
    except (TypeError, ValueError):
        value = 0
    choice = src.int(0, 4, "field-how")
    if choice == 0:
        new = pick(src, _INTERESTING, "field-value") & mask
    elif choice == 1:
        new = (value + src.int(1, 16, "field-delta")) & mask
    elif choice == 2:
        new = (value - src.int(1, 16, "field-delta")) & mask
    elif choice == 3:
        new = value ^ (1 << src.int(0, bits - 1, "field-bit"))
    else:
        new = src.int(0, mask, "field-value")
    packet.setfieldval(name, new)


def _set_payload(src: Source, packet: Any, name: str) -> None:
    from scapy.layers.ntlm import AV_PAIR
    from scapy.packet import Raw

    if name == "TargetInfo":
        pairs = [
            AV_PAIR(AvId=pick(src, _AV_IDS, "av-id"), Value=blob(src, 40, "av-value"))
            for _ in range(src.int(0, 4, "av-count"))
        ]
        if not rare(src, "av-no-eol", 4):
            pairs.append(AV_PAIR(AvId=0))
        packet.setfieldval(name, pairs)
    elif name in ("DomainName", "UserName", "Workstation", "WorkstationName", "TargetName"):
        packet.setfieldval(name, blob(src, 40, "name").decode("latin-1"))
    else:  # responses, session key: raw bytes
        packet.setfieldval(name, Raw(blob(src, 96, "payload")))
    if not rare(src, "keep-lengths", 4):
        _reset_lengths(packet)


def _byte_edit(src: Source, data: bytes) -> bytes:
    edit = pick(src, BYTE_EDITS, "byte-edit")
    if edit == "xor" and data:
        at = src.int(0, 0xFFFF, "byte-at") % len(data)
        out = bytearray(data)
        out[at] ^= src.int(1, 255, "byte-xor")
        return bytes(out)
    if edit == "truncate" and data:
        return data[: src.int(0, 0xFFFF, "byte-keep") % len(data)]
    return data + src.bytes(src.int(1, 64, "byte-extra-len"), "byte-extra")


def _triple(packet: Any, name: str) -> tuple[int, str] | None:
    """(byte offset, struct format) of a Len/MaxLen/BufferOffset field in the header."""
    kind = int(packet.getfieldval("MessageType") or 0)
    for suffix, (delta, fmt) in (
        ("MaxLen", (2, "<H")),
        ("BufferOffset", (4, "<I")),
        ("Len", (0, "<H")),
    ):
        if name.endswith(suffix):
            base = TRIPLES.get(kind, {}).get(name[: -len(suffix)])
            return None if base is None else (base + delta, fmt)
    return None


def _lie(src: Source, packet: Any, field: Any) -> tuple[int, str, int] | None:
    """A value for a Len/MaxLen/BufferOffset field, to be written after the build."""
    where = _triple(packet, field.name)
    if where is None:
        return None
    offset, fmt = where
    mask = 0xFFFF if fmt == "<H" else 0xFFFFFFFF
    current = int(packet.getfieldval(field.name) or 0)
    choice = src.int(0, 3, "lie-how")
    if choice == 0:
        value = pick(src, _INTERESTING, "field-value") & mask
    elif choice == 1:
        value = (current + src.int(1, 16, "field-delta")) & mask
    elif choice == 2:
        value = (current - src.int(1, 16, "field-delta")) & mask
    else:
        value = src.int(0, mask, "field-value")
    return offset, fmt, value


def _patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    size = struct.calcsize(fmt)
    if offset + size > len(data):
        return data
    return data[:offset] + struct.pack(fmt, value) + data[offset + size :]


def mutate_token(src: Source, token: bytes, which: str) -> bytes:
    """``token`` with 0-3 structure-aware edits (``which`` names the message, for labels)."""
    count = src.int(0, 3, f"{which}-mutations")
    if not count:
        return token
    packet = parse(token)
    late: list[int] = []
    patches: list[tuple[int, str, int]] = []
    for _ in range(count):
        kind = pick(src, MUTATIONS, f"{which}-mutation")
        if packet is None or kind == "bytes":
            late.append(1)
            continue
        try:
            if kind == "field":
                field = pick(src, _header_fields(packet), "field")
                if field.name.endswith(_LENGTHS):
                    patch = _lie(src, packet, field)
                    if patch is not None:
                        patches.append(patch)
                    continue
                _set_field(src, packet, field)
            elif kind == "flag":
                flags = int(packet.getfieldval("NegotiateFlags") or 0)
                packet.setfieldval("NegotiateFlags", flags ^ (1 << src.int(0, 31, "flag-bit")))
            else:
                names = _payload_names(packet)
                if names:
                    _set_payload(src, packet, pick(src, names, "payload-field"))
        except Exception:  # noqa: BLE001 - a value scapy refuses: keep what we have
            continue
    out = token
    if packet is not None:
        try:
            out = bytes(packet)
        except Exception:  # noqa: BLE001 - scapy cannot build it: fall back to bytes
            out = token
    for offset, fmt, value in patches:
        out = _patch(out, offset, fmt, value)
    for _ in late:
        out = _byte_edit(src, out)
    return out
