"""The reference SSP's sign / verify / seal / unseal throughput against pyspnego's, for 64 B
and 64 KiB messages.

Each side is driven through its own API: the reference through its SSPI interface
(``NtlmPackage``: MakeSignature, VerifySignature, EncryptMessage, DecryptMessage over a DATA +
TOKEN SecBufferDesc), pyspnego through its public one (``sign``/``verify``/``wrap``/
``unwrap``). Every measurement gets a fresh NTLMv2 context pair (extended session security,
128-bit keys, key exchange) from a real handshake. Verify and unseal consume, in order,
messages the client made before the clock started, and every one of them must be accepted:
a benchmark of rejections would measure the wrong path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.adapters.base import ContextOptions, ContextPair
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import BufferType

SIZES = (64, 64 * 1024)
OPS = ("sign", "verify", "seal", "unseal")


@dataclass
class Throughput:
    op: str
    size: int
    reference_per_s: float
    pyspnego_per_s: float

    @property
    def ratio(self) -> float:
        return self.reference_per_s / self.pyspnego_per_s if self.pyspnego_per_s else 0.0


def _desc(data: bytes) -> SecBufferDesc:
    return SecBufferDesc(
        [SecBuffer.of(BufferType.DATA, data), SecBuffer.of(BufferType.TOKEN, 16)]
    )


def _timed(count: int, calls: Callable[[], Sequence[Any]]) -> tuple[float, Sequence[Any]]:
    start = time.perf_counter()
    results = calls()
    return count / (time.perf_counter() - start), results


def reference_rate(op: str, size: int, count: int) -> float:
    from harness.adapters.reference import ReferenceAdapter

    adapter = ReferenceAdapter()
    pair = adapter.establish(ContextOptions())
    assert isinstance(pair, ContextPair), pair
    package = adapter.package
    client = (pair.client.lower, pair.client.upper)  # the package's own handle form
    server = (pair.server.lower, pair.server.upper)
    data = bytes(size)
    messages = [_desc(data) for _ in range(count)]
    if op in ("sign", "seal"):
        call = package.make_signature if op == "sign" else package.encrypt_message
        rate, statuses = _timed(count, lambda: [call(client, 0, m, 0) for m in messages])
    else:
        make = package.make_signature if op == "verify" else package.encrypt_message
        check = package.verify_signature if op == "verify" else package.decrypt_message
        for message in messages:
            make(client, 0, message, 0)
        rate, results = _timed(count, lambda: [check(server, m, 0) for m in messages])
        statuses = [status for status, _qop in results]
    if any(statuses):
        raise AssertionError(f"reference {op}: a call failed ({statuses[0]:#x}...)")
    return rate


def pyspnego_rate(op: str, size: int, count: int) -> float:
    from harness.adapters.spnego_ntlm import PyspnegoAdapter

    adapter = PyspnegoAdapter()
    try:
        pair = adapter.establish(ContextOptions())
        assert isinstance(pair, ContextPair), pair
        client: Any = adapter._lookup(pair.client)
        server: Any = adapter._lookup(pair.server)
        c, s = client.proxy, server.proxy
        data = bytes(size)
        if op == "sign":
            rate, _ = _timed(count, lambda: [c.sign(data) for _ in range(count)])
        elif op == "seal":
            rate, _ = _timed(count, lambda: [c.wrap(data) for _ in range(count)])
        elif op == "verify":
            signatures = [c.sign(data) for _ in range(count)]
            rate, _ = _timed(count, lambda: [s.verify(data, sig) for sig in signatures])
        else:
            wrapped = [c.wrap(data).data for _ in range(count)]
            rate, results = _timed(count, lambda: [s.unwrap(w) for w in wrapped])
            if results[-1].data != data:
                raise AssertionError("pyspnego unwrap returned other data")
        return rate
    finally:
        adapter.close()


def measure_throughput(
    sizes: Sequence[int] = SIZES, ops: Sequence[str] = OPS, rounds: int = 5
) -> list[Throughput]:
    """Best of ``rounds`` per (op, size), the two implementations alternating round by round
    so that noise on a shared machine hits both; each timing covers about 50-100 ms."""
    rows = []
    for size in sizes:
        count = 5000 if size <= 1024 else 200
        for op in ops:
            ours, theirs = 0.0, 0.0
            for _ in range(rounds):
                ours = max(ours, reference_rate(op, size, count))
                theirs = max(theirs, pyspnego_rate(op, size, count))
            rows.append(Throughput(op, size, ours, theirs))
    return rows
