"""pcap files of the NTLM handshake tokens a failing case carries, for Wireshark.

The tokens travel as HTTP NTLM authentication (RFC 4559 §4: ``Authorization: NTLM <base64>``
from the client, ``WWW-Authenticate: NTLM <base64>`` in a 401 from the server) over one TCP
connection from 127.0.0.1:49152 to 127.0.0.1:80, with a proper three-way handshake and
sequence numbers: Wireshark's HTTP dissector hands these headers to its NTLMSSP dissector,
so each token opens field by field there.

What a record carries today: the bytes of the call that killed or hung a worker
(``actual.fatal_call``, e.g. ``party.step(3, 4e544c4d…)``). A record may also list the whole
exchange as ``handshake``: ``[{"from": "client"|"server", "token": "<hex>"}, …]`` (top level
or under ``actual``); both are used when present.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.report.dissect import NTLMSSP_HEX, hex_runs, message_type

CLIENT = ("127.0.0.1", 49152)
SERVER = ("127.0.0.1", 80)
#: TCP payload per segment: well under the loopback MTU, so no IP fragmentation.
SEGMENT = 1460
FAILING = frozenset({"FAIL", "CRASH", "TIMEOUT", "ERROR"})

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, *, limit: int = 120) -> str:
    """A file name made of ``[A-Za-z0-9._-]`` only, never empty, never starting with a dot."""
    name = _UNSAFE.sub("_", text).strip("._") or "case"
    return name[:limit]


def _sender(token: bytes, position: int) -> str:
    kind = message_type(token)
    if kind == 2:
        return "server"
    if kind in (1, 3):
        return "client"
    return "client" if position % 2 == 0 else "server"


def _listed(value: Any) -> list[tuple[str, bytes]]:
    """Tokens from a ``handshake`` list, in order."""
    out: list[tuple[str, bytes]] = []
    if not isinstance(value, list):
        return out
    for item in value:
        raw = item.get("token") if isinstance(item, dict) else item
        if not isinstance(raw, str):
            continue
        try:
            token = bytes.fromhex(raw)
        except ValueError:
            continue
        side = item.get("from") if isinstance(item, dict) else None
        out.append((side if side in ("client", "server") else _sender(token, len(out)), token))
    return out


def tokens_of(record: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(sender, NTLMSSP token) pairs a record carries, in order, without duplicates."""
    actual = record.get("actual")
    actual = actual if isinstance(actual, dict) else {}
    found = _listed(record.get("handshake")) or _listed(actual.get("handshake"))
    seen = {token for _, token in found}
    texts = [actual.get("fatal_call"), record.get("message")]
    for text in texts:
        if not isinstance(text, str) or NTLMSSP_HEX not in text.lower():
            continue
        for run in hex_runs(text):
            start = run.find(NTLMSSP_HEX)
            if start < 0 or start % 2:
                continue
            token = bytes.fromhex(run[start:])
            if token not in seen:
                seen.add(token)
                found.append((_sender(token, len(found)), token))
    return found


def wants_pcap(record: dict[str, Any]) -> bool:
    """A failing case with handshake tokens to show."""
    return record.get("outcome") in FAILING and bool(tokens_of(record))


def _request(token: bytes | None, case: str) -> bytes:
    label = re.sub(r"[^\x21-\x7e]", "_", case)[:200]  # header-safe: no spaces, CR or LF
    head = ["GET /sspi-harness HTTP/1.1", "Host: 127.0.0.1", f"X-SSPI-Harness-Case: {label}"]
    if token is not None:
        head.append(f"Authorization: NTLM {base64.b64encode(token).decode('ascii')}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii")


def _response(token: bytes) -> bytes:
    head = [
        "HTTP/1.1 401 Unauthorized",
        f"WWW-Authenticate: NTLM {base64.b64encode(token).decode('ascii')}",
        "Content-Length: 0",
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii")


def _segments(
    tokens: Sequence[tuple[str, bytes]], case: str
) -> list[tuple[str, str, int, int, bytes]]:
    """(sender, TCP flags, seq, ack, payload) of one TCP connection carrying ``tokens``."""
    seq = {"client": 1000, "server": 5000}
    out = []

    def emit(side: str, flags: str, payload: bytes = b"") -> None:
        other = "server" if side == "client" else "client"
        ack = seq[other] if "A" in flags else 0
        out.append((side, flags, seq[side], ack, payload))
        seq[side] += len(payload) + (1 if ("S" in flags or "F" in flags) else 0)

    emit("client", "S")
    emit("server", "SA")
    emit("client", "A")
    previous = "server"
    for side, token in tokens:
        if side == "server" and previous == "server":  # a challenge answers a request
            emit("client", "PA", _request(None, case))
            emit("server", "A")
        body = _request(token, case) if side == "client" else _response(token)
        for offset in range(0, len(body), SEGMENT):
            emit(side, "PA", body[offset : offset + SEGMENT])
        emit("server" if side == "client" else "client", "A")
        previous = side
    emit("client", "FA")
    emit("server", "FA")
    emit("client", "A")
    return out


def packets(
    tokens: Sequence[tuple[str, bytes]], *, case: str = "", start: float | None = None
) -> list[Any]:
    """The scapy packets of one TCP connection carrying ``tokens`` as HTTP NTLM auth."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    ends = {"client": CLIENT, "server": SERVER}
    clock = time.time() if start is None else start
    out = []
    for side, flags, seq, ack, payload in _segments(tokens, case):
        other = "server" if side == "client" else "client"
        (src, sport), (dst, dport) = ends[side], ends[other]
        pkt = (
            Ether(src=_MAC[side], dst=_MAC[other])
            / IP(src=src, dst=dst)
            / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535)
        )
        if payload:
            pkt = pkt / Raw(payload)
        pkt.time = clock
        clock += 0.001
        out.append(pkt)
    return out


_MAC = {"client": "02:00:00:00:00:01", "server": "02:00:00:00:00:02"}
_MAC_BYTES = {side: bytes.fromhex(mac.replace(":", "")) for side, mac in _MAC.items()}
_MAC_BYTES = {side: bytes.fromhex(mac.replace(":", "")) for side, mac in _MAC.items()}
_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frames(tokens: Sequence[tuple[str, bytes]], *, case: str = "") -> list[bytes]:
    """The same connection as ``packets``, as Ethernet frames built directly: byte for byte
    what scapy builds for those packets (a test holds the two equal), at a fiftieth of the
    cost, which matters for a report with thousands of failing cases."""
    ends = {"client": CLIENT, "server": SERVER}
    out = []
    for side, flags, seq, ack, payload in _segments(tokens, case):
        other = "server" if side == "client" else "client"
        (src, sport), (dst, dport) = ends[side], ends[other]
        src_ip, dst_ip = socket.inet_aton(src), socket.inet_aton(dst)
        bits = sum(_TCP_FLAGS[f] for f in flags)
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, 65535, 0, 0)
        pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
        tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + payload)) + tcp[18:]
        length = 40 + len(payload)
        length = 40 + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 1, 0, 64, 6, 0, src_ip, dst_ip)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        ether = _MAC_BYTES[other] + _MAC_BYTES[side] + b"\x08\x00"
        out.append(ether + ip + tcp + payload)
    return out


def write_pcap(
    tokens: Sequence[tuple[str, bytes]], path: Path, *, case: str = "", start: float | None = None
) -> Path:
    """Write one pcap (Ethernet link type) with ``tokens`` through scapy's PcapWriter;
    returns ``path``."""
    from scapy.utils import PcapWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    clock = time.time() if start is None else start
    with PcapWriter(str(tmp), linktype=1, sync=False) as writer:
        writer.write_header(None)
        for index, frame in enumerate(frames(tokens, case=case)):
            at = clock + index * 0.001
            writer.write_packet(frame, sec=int(at), usec=int(round((at % 1) * 1e6)) % 1_000_000)
    tmp.replace(path)
    return path


def write_pcaps(records: Iterable[dict[str, Any]], directory: Path) -> dict[int, str]:
    """A pcap per failing record with tokens, as ``directory/<adapter>/<case>.pcap``.

    Returns {record position: path relative to ``directory.parent``} for the report's links.
    pcaps left in ``directory`` by an earlier run are removed, so none is stale.
    """
    links: dict[int, str] = {}
    written: set[Path] = set()
    for index, record in enumerate(records):
        if not isinstance(record, dict) or record.get("outcome") not in FAILING:
            continue
        tokens = tokens_of(record)
        if not tokens:
            continue
        case, adapter = str(record.get("case") or "case"), str(record.get("adapter") or "")
        path = directory / safe_name(adapter or "adapter") / f"{safe_name(case)}.pcap"
        if path in written:  # two ids that differ only in unsafe characters
            digest = hashlib.sha256(f"{adapter}\0{case}\0{index}".encode()).hexdigest()[:10]
            path = path.with_name(f"{path.stem}-{digest}.pcap")
        write_pcap(tokens, path, case=case)
        written.add(path)
        links[index] = path.relative_to(directory.parent).as_posix()
    if directory.is_dir():
        for old in directory.glob("*/*.pcap"):
            if old not in written:
                old.unlink()
        for folder in directory.iterdir():
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    return links


__all__ = ["frames", "packets", "safe_name", "tokens_of", "wants_pcap", "write_pcap", "write_pcaps"]
