"""Field-by-field views of the NTLM bytes a record carries, for the HTML report's drill-down.

Handshake tokens (NEGOTIATE/CHALLENGE/AUTHENTICATE, MS-NLMP §2.2.1) are dissected with
``scapy.layers.ntlm``; 16-byte signatures that start with Version 1 (MS-NLMP §2.2.2.9) with
scapy's ``NTLMSSP_MESSAGE_SIGNATURE``, plus the layout without extended session security
(RandomPad ‖ CRC32 checksum ‖ SeqNum, §2.2.2.9.1), which scapy does not model.

Everything returned is plain text (the report escapes it). Scapy is imported on first use so
importing the report package stays light.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

NTLMSSP_SIGNATURE = b"NTLMSSP\x00"
NTLMSSP_HEX = NTLMSSP_SIGNATURE.hex()
SIGNATURE_SIZE = 16

#: Tokens longer than this are not dissected (fuzzed inputs can be large; the hex is kept).
MAX_DISSECT = 64 * 1024
#: A value longer than this is cut in the view.
MAX_VALUE = 240
#: At most this many rows per dissection (AV pairs of a hostile token can be many).
MAX_ROWS = 400

_MESSAGE_TYPES = {1: "NEGOTIATE_MESSAGE", 2: "CHALLENGE_MESSAGE", 3: "AUTHENTICATE_MESSAGE"}
_HEX_RUN = re.compile(r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{2}){8,}(?![0-9a-fA-F])")


@dataclass
class Dissection:
    """What a run of bytes is, and its fields as (depth, name, value) rows."""

    title: str
    rows: list[tuple[int, str, str]] = field(default_factory=list)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"title": self.title, "rows": [list(r) for r in self.rows]}
        if self.error:
            out["error"] = self.error
        return out


def _cut(text: str) -> str:
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def message_type(data: bytes) -> int | None:
    """The MessageType of an NTLMSSP message (1, 2, 3, or anything a hostile token says)."""
    if len(data) >= 12 and data.startswith(NTLMSSP_SIGNATURE):
        return int(struct.unpack_from("<I", data, 8)[0])
    return None


def is_signature(data: bytes) -> bool:
    """A 16-byte NTLMSSP_MESSAGE_SIGNATURE: Version 0x00000001 first (MS-NLMP §2.2.2.9)."""
    return len(data) == SIGNATURE_SIZE and data[:4] == b"\x01\x00\x00\x00"


def _walk(pkt: Any, depth: int, rows: list[tuple[int, str, str]]) -> None:
    """Rows for the fields of a scapy packet, mirroring what ``Packet.show`` prints."""
    from scapy.fields import ConditionalField
    from scapy.packet import NoPayload, Packet, Padding, Raw

    pending = [(f, depth) for f in pkt.fields_desc]
    while pending and len(rows) < MAX_ROWS:
        fld, level = pending.pop(0)
        if isinstance(fld, ConditionalField) and not fld._evalcond(pkt):
            continue
        subfields = getattr(fld, "fields", None)
        if isinstance(subfields, list):  # the NTLM payload: one field per buffer it holds
            rows.append((level, fld.name, ""))
            present = [(sub, level + 1) for sub in subfields if hasattr(pkt, sub.name)]
            pending[:0] = present
            continue
        value = pkt.getfieldval(fld.name)
        if isinstance(value, Packet) or (
            isinstance(value, list) and value and all(isinstance(v, Packet) for v in value)
        ):
            rows.append((level, fld.name, ""))
            for sub in value if isinstance(value, list) else [value]:
                rows.append((level + 1, str(sub.name), ""))
                _walk(sub, level + 2, rows)
            continue
        try:
            shown = fld.i2repr(pkt, value)
        except Exception as exc:  # a field scapy cannot show still gets a row
            shown = f"<{type(exc).__name__}>"
        rows.append((level, fld.name, _cut(str(shown))))
    payload = pkt.payload
    if isinstance(payload, NoPayload) or len(rows) >= MAX_ROWS:
        return
    if isinstance(payload, Padding | Raw):
        rows.append((depth, "trailing bytes", _cut(bytes(payload).hex())))
        return
    rows.append((depth, str(payload.name), ""))
    _walk(payload, depth + 1, rows)


def dissect_token(data: bytes) -> Dissection:
    """An NTLMSSP handshake message, field by field (scapy's ``NTLM_Header`` dispatches on
    MessageType to NTLM_NEGOTIATE, NTLM_CHALLENGE or NTLM_AUTHENTICATE[_V2])."""
    kind = message_type(data)
    name = _MESSAGE_TYPES.get(kind or 0, f"unknown MessageType {kind}")
    title = f"NTLMSSP {name} ({len(data)} bytes)"
    if len(data) > MAX_DISSECT:
        return Dissection(title, error=f"not dissected: longer than {MAX_DISSECT} bytes")
    try:
        from scapy.layers.ntlm import NTLM_Header

        pkt = NTLM_Header(data)
        rows: list[tuple[int, str, str]] = []
        _walk(pkt, 0, rows)
    except Exception as exc:  # hostile bytes: say so and keep the hex
        return Dissection(title, error=_cut(f"scapy could not dissect it: {exc!r}"))
    return Dissection(title, rows)


def dissect_signature(data: bytes, *, ess: bool | None = None) -> Dissection:
    """A 16-byte signature. With extended session security (MS-NLMP §2.2.2.9.2): Version ‖
    Checksum (first 8 bytes of the HMAC_MD5) ‖ SeqNum, as scapy's NTLMSSP_MESSAGE_SIGNATURE
    parses it; without it (§2.2.2.9.1): Version ‖ RandomPad ‖ Checksum (CRC32) ‖ SeqNum.
    ``ess`` None shows both readings."""
    rows: list[tuple[int, str, str]] = []
    error = ""
    if ess is not False:
        try:
            from scapy.layers.ntlm import NTLMSSP_MESSAGE_SIGNATURE

            _walk(NTLMSSP_MESSAGE_SIGNATURE(data), 0, rows)
        except Exception as exc:
            error = _cut(f"scapy could not dissect it: {exc!r}")
    if ess is not True:
        version, pad, crc, seq = struct.unpack("<I4s4sI", data)
        if rows:
            rows.append((0, "without extended session security", ""))
        depth = 1 if rows else 0
        rows += [
            (depth, "Version", str(version)),
            (depth, "RandomPad", pad.hex()),
            (depth, "Checksum (CRC32)", crc.hex()),
            (depth, "SeqNum", str(seq)),
        ]
    which = {True: "with ESS", False: "without ESS", None: "ESS unknown"}[ess]
    return Dissection(f"NTLMSSP_MESSAGE_SIGNATURE ({which})", rows, error)


def dissect(data: bytes, *, ess: bool | None = None) -> Dissection | None:
    """Dissect ``data`` if it is an NTLMSSP message or a signature; None otherwise."""
    if data.startswith(NTLMSSP_SIGNATURE):
        return dissect_token(data)
    if is_signature(data):
        return dissect_signature(data, ess=ess)
    return None


@lru_cache(maxsize=8192)
def dissect_hex(hex_text: str, ess: bool | None = None) -> dict[str, Any] | None:
    """Cached ``dissect`` of a hex string, as JSON-ready data (records repeat their bytes)."""
    try:
        data = bytes.fromhex(hex_text)
    except ValueError:
        return None
    found = dissect(data, ess=ess)
    return None if found is None else found.to_json()


def hex_runs(text: str) -> list[str]:
    """Hex strings of at least 8 bytes in free text (a fatal call, a message), lower-cased."""
    return [m.group(0).lower() for m in _HEX_RUN.finditer(text)]


def ess_of(variant: Any) -> bool | None:
    """Whether a case variant negotiates extended session security, when its name says so."""
    if not isinstance(variant, str):
        return None
    if "no-ess" in variant:
        return False
    if "ess" in variant or variant.startswith("ntlmv2"):
        return True
    if variant.startswith("ntlmv1"):
        return False
    return None


__all__ = [
    "Dissection",
    "dissect",
    "dissect_hex",
    "dissect_signature",
    "dissect_token",
    "ess_of",
    "hex_runs",
    "is_signature",
    "message_type",
]
