"""NTLM messages of [MS-NLMP] §2.2.1 and AV pairs of §2.2.2.1, encoded and decoded.

Kept apart from the crypto (like every wire-format layer): these functions only move bytes.
Decoding raises ``MessageError`` with a one-line reason for any malformed message.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE_TYPE, CHALLENGE_TYPE, AUTHENTICATE_TYPE = 1, 2, 3
NEGOTIATE_HEADER, CHALLENGE_HEADER, AUTHENTICATE_HEADER = 40, 56, 88
MIC_OFFSET = 72

# AvId values of §2.2.2.1
AV_EOL, AV_NB_COMPUTER, AV_NB_DOMAIN, AV_DNS_COMPUTER, AV_DNS_DOMAIN = 0, 1, 2, 3, 4
AV_DNS_TREE, AV_FLAGS, AV_TIMESTAMP, AV_SINGLE_HOST, AV_TARGET_NAME = 5, 6, 7, 8, 9
AV_CHANNEL_BINDINGS = 10
AV_FLAG_MIC_PRESENT = 0x00000002

# The VERSION structure of §2.2.2.10: major, minor, build, 3 reserved bytes, revision 15.
DEFAULT_VERSION = bytes([10, 0]) + struct.pack("<H", 19041) + b"\x00\x00\x00\x0f"


class MessageError(ValueError):
    """A malformed NTLM message; the text names the field at fault."""


@dataclass
class Negotiate:
    flags: int
    domain: bytes = b""
    workstation: bytes = b""
    version: bytes = b"\x00" * 8


@dataclass
class Challenge:
    flags: int
    server_challenge: bytes
    target_name: bytes = b""
    target_info: bytes = b""
    version: bytes = b"\x00" * 8


@dataclass
class Authenticate:
    flags: int
    lm_response: bytes = b""
    nt_response: bytes = b""
    domain: bytes = b""
    user: bytes = b""
    workstation: bytes = b""
    encrypted_session_key: bytes = b""
    version: bytes = b"\x00" * 8
    mic: bytes = b"\x00" * 16


def _fields(length: int, offset: int) -> bytes:
    """A (Len, MaxLen, BufferOffset) triple as §2.2.1 lays them out."""
    return struct.pack("<HHI", length, length, offset)


def _pack_payload(header_size: int, items: list[bytes]) -> tuple[list[bytes], bytes]:
    descriptors, payload, offset = [], b"", header_size
    for item in items:
        descriptors.append(_fields(len(item), offset))
        payload += item
        offset += len(item)
    return descriptors, payload


def encode_negotiate(msg: Negotiate) -> bytes:
    (dom, ws), payload = _pack_payload(NEGOTIATE_HEADER, [msg.domain, msg.workstation])
    head = SIGNATURE + struct.pack("<II", NEGOTIATE_TYPE, msg.flags) + dom + ws + msg.version
    return head + payload


def encode_challenge(msg: Challenge) -> bytes:
    (name, info), payload = _pack_payload(CHALLENGE_HEADER, [msg.target_name, msg.target_info])
    head = (
        SIGNATURE
        + struct.pack("<I", CHALLENGE_TYPE)
        + name
        + struct.pack("<I", msg.flags)
        + msg.server_challenge
        + b"\x00" * 8
        + info
        + msg.version
    )
    return head + payload


def encode_authenticate(msg: Authenticate) -> bytes:
    items = [
        msg.lm_response,
        msg.nt_response,
        msg.domain,
        msg.user,
        msg.workstation,
        msg.encrypted_session_key,
    ]
    descriptors, payload = _pack_payload(AUTHENTICATE_HEADER, items)
    head = (
        SIGNATURE
        + struct.pack("<I", AUTHENTICATE_TYPE)
        + b"".join(descriptors)
        + struct.pack("<I", msg.flags)
        + msg.version
        + msg.mic
    )
    return head + payload


def _check_header(data: bytes, expected_type: int, minimum: int) -> None:
    if len(data) < minimum:
        raise MessageError(f"message is {len(data)} bytes, shorter than its {minimum}-byte header")
    if data[:8] != SIGNATURE:
        raise MessageError("Signature is not 'NTLMSSP\\0'")
    (kind,) = struct.unpack_from("<I", data, 8)
    if kind != expected_type:
        raise MessageError(f"MessageType is {kind}, expected {expected_type}")


def _field(data: bytes, at: int, name: str) -> bytes:
    length, _max, offset = struct.unpack_from("<HHI", data, at)
    if offset + length > len(data):
        raise MessageError(f"{name} runs past the end of the message")
    return data[offset : offset + length]


def decode_negotiate(data: bytes) -> Negotiate:
    _check_header(data, NEGOTIATE_TYPE, 32)
    (flags,) = struct.unpack_from("<I", data, 12)
    version = data[32:40] if len(data) >= 40 else b"\x00" * 8
    return Negotiate(
        flags, _field(data, 16, "DomainName"), _field(data, 24, "Workstation"), version
    )


def decode_challenge(data: bytes) -> Challenge:
    _check_header(data, CHALLENGE_TYPE, 48)
    (flags,) = struct.unpack_from("<I", data, 20)
    info = _field(data, 40, "TargetInfo") if len(data) >= 48 else b""
    version = data[48:56] if len(data) >= 56 else b"\x00" * 8
    return Challenge(flags, data[24:32], _field(data, 12, "TargetName"), info, version)


def decode_authenticate(data: bytes) -> Authenticate:
    _check_header(data, AUTHENTICATE_TYPE, 64)
    (flags,) = struct.unpack_from("<I", data, 60)
    names = ["LmChallengeResponse", "NtChallengeResponse", "DomainName", "UserName"]
    names += ["Workstation", "EncryptedRandomSessionKey"]
    values = [_field(data, 12 + 8 * i, name) for i, name in enumerate(names)]
    # Version and MIC are there only when the payload starts after them: older senders (and
    # every §4.2 example) put the payload right after the flags or the Version.
    offsets = [struct.unpack_from("<HHI", data, 12 + 8 * i) for i in range(len(names))]
    payload_start = min((off for length, _max, off in offsets if length), default=len(data))
    version = data[64:72] if payload_start >= 72 else b"\x00" * 8
    mic = data[72:88] if payload_start >= AUTHENTICATE_HEADER else b"\x00" * 16
    lm, nt, domain, user, workstation, key = values
    return Authenticate(flags, lm, nt, domain, user, workstation, key, version, mic)


@dataclass
class AvPairs:
    """An ordered AV_PAIR list (§2.2.2.1) without its MsvAvEOL terminator."""

    pairs: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, av_id: int) -> bytes | None:
        for key, value in self.pairs:
            if key == av_id:
                return value
        return None

    def set(self, av_id: int, value: bytes) -> None:
        for i, (key, _old) in enumerate(self.pairs):
            if key == av_id:
                self.pairs[i] = (av_id, value)
                return
        self.pairs.append((av_id, value))

    def encode(self) -> bytes:
        out = b"".join(struct.pack("<HH", k, len(v)) + v for k, v in self.pairs)
        return out + struct.pack("<HH", AV_EOL, 0)

    @classmethod
    def decode(cls, data: bytes) -> AvPairs:
        pairs: list[tuple[int, bytes]] = []
        at = 0
        while True:
            if at + 4 > len(data):
                raise MessageError("AV_PAIR list has no MsvAvEOL")
            av_id, length = struct.unpack_from("<HH", data, at)
            at += 4
            if av_id == AV_EOL:
                return cls(pairs)
            if at + length > len(data):
                raise MessageError(f"AV_PAIR {av_id} runs past the end of TargetInfo")
            pairs.append((av_id, data[at : at + length]))
            at += length
