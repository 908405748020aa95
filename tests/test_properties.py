"""Hypothesis properties of the reference adapter's SSPI message functions.

For any negotiated options and any message layout: MakeSignature/VerifySignature and
EncryptMessage/DecryptMessage round-trip, read-only buffers are never altered, and a change to
any signed byte or to the compared signature bytes is detected.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.adapters.base import ContextOptions, ContextPair
from harness.adapters.reference import ReferenceAdapter
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    BufferType,
)
from harness.sspi.constants import SecStatus as S

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def options(draw: st.DrawFn) -> ContextOptions:
    version = draw(st.sampled_from(["v1", "v1-ess", "v2"]))
    return ContextOptions(
        ntlm_version=version,
        key_exchange=draw(st.booleans()),
        key_bits=draw(st.sampled_from([128, 56, 40])),
        # connectionless confidentiality needs extended session security (§3.4.3)
        datagram=version != "v1" and draw(st.booleans()),
    )


FLAG_CHOICES = [0, 0, SECBUFFER_READONLY, SECBUFFER_READONLY_WITH_CHECKSUM,
                SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM]

layouts = st.lists(
    st.tuples(st.binary(min_size=0, max_size=300), st.sampled_from(FLAG_CHOICES)),
    min_size=1,
    max_size=4,
)


def _establish(opts: ContextOptions) -> tuple[ReferenceAdapter, ContextPair]:
    adapter = ReferenceAdapter()
    pair = adapter.establish(opts)
    assert isinstance(pair, ContextPair), pair
    return adapter, pair


def _message(layout: list[tuple[bytes, int]], token: bytes | int = 16) -> SecBufferDesc:
    buffers = [SecBuffer.of(BufferType.DATA, data, flags) for data, flags in layout]
    buffers.append(SecBuffer.of(BufferType.TOKEN, token))
    return SecBufferDesc(buffers)


def _signed(flags: int) -> bool:
    # A READONLY DATA buffer is not signed unless READONLY_WITH_CHECKSUM is also set.
    return not flags & SECBUFFER_READONLY or bool(flags & SECBUFFER_READONLY_WITH_CHECKSUM)


def _readonly(flags: int) -> bool:
    return bool(flags & (SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM))


def _tamper_positions(layout: list[tuple[bytes, int]]) -> list[tuple[int, int]]:
    """(buffer index, byte index) for every byte the signature covers, plus the signature
    bytes 0-3 and 8-15 (4-7 are the RandomPad without ESS, never compared)."""
    out = [(i, j) for i, (data, flags) in enumerate(layout) if _signed(flags)
           for j in range(len(data))]
    out += [(len(layout), j) for j in (*range(4), *range(8, 16))]
    return out


def _flip(desc: SecBufferDesc, where: tuple[int, int]) -> SecBufferDesc:
    out = desc.copy()
    assert out.buffers is not None
    buf = out.buffers[where[0]].data
    assert buf is not None
    buf[where[1]] ^= 0x01
    return out


@SETTINGS
@given(opts=options(), layout=layouts, seqno=st.integers(0, 2**32 - 1), data=st.data())
def test_sign_verify(opts: ContextOptions, layout, seqno: int, data: st.DataObject) -> None:
    adapter, pair = _establish(opts)
    client, server = (pair.client, pair.server)
    if data.draw(st.booleans(), label="server signs"):
        client, server = server, client
    desc = _message(layout)
    assert adapter.make_signature(client, 0, desc, seqno).status == S.SEC_E_OK
    assert [bytes(b.data) for b in desc.buffers[:-1]] == [d for d, _ in layout]
    assert len(desc.buffers[-1].data) == 16

    # A tampered copy fails, and leaves the receiver able to take the genuine message.
    where = data.draw(st.sampled_from(_tamper_positions(layout)), label="flip")
    assert adapter.verify_signature(server, _flip(desc, where), seqno).status != S.SEC_E_OK
    assert adapter.verify_signature(server, desc.copy(), seqno).status == S.SEC_E_OK

    # READONLY buffers without READONLY_WITH_CHECKSUM are not signed: changing them is allowed.
    unsigned = [(i, j) for i, (d, f) in enumerate(layout) if not _signed(f) for j in range(len(d))]
    if unsigned:
        next_seqno = (seqno + 1) & 0xFFFFFFFF
        desc = _message(layout)
        assert adapter.make_signature(client, 0, desc, next_seqno).status == S.SEC_E_OK
        changed = _flip(desc, data.draw(st.sampled_from(unsigned), label="unsigned flip"))
        assert adapter.verify_signature(server, changed, next_seqno).status == S.SEC_E_OK


@SETTINGS
@given(opts=options(), layout=layouts, seqno=st.integers(0, 2**32 - 1), data=st.data())
def test_encrypt_decrypt(opts: ContextOptions, layout, seqno: int, data: st.DataObject) -> None:
    adapter, pair = _establish(opts)
    client, server = (pair.client, pair.server)
    if data.draw(st.booleans(), label="server seals"):
        client, server = server, client
    desc = _message(layout)
    assert adapter.encrypt_message(client, 0, desc, seqno).status == S.SEC_E_OK
    for (plain, flags), buf in zip(layout, desc.buffers[:-1], strict=True):
        assert len(buf.data) == len(plain)
        if _readonly(flags):
            assert bytes(buf.data) == plain  # read-only buffers are never encrypted

    where = data.draw(st.sampled_from(_tamper_positions(layout)), label="flip")
    tampered = _flip(desc, where)
    before = [bytes(b.data) for b in tampered.buffers]
    assert adapter.decrypt_message(server, tampered, seqno).status != S.SEC_E_OK
    assert [bytes(b.data) for b in tampered.buffers] == before  # nothing released on failure

    received = desc.copy()
    assert adapter.decrypt_message(server, received, seqno).status == S.SEC_E_OK
    assert [bytes(b.data) for b in received.buffers[:-1]] == [d for d, _ in layout]


@SETTINGS
@given(opts=options(), messages=st.lists(layouts, min_size=2, max_size=4))
def test_stream_of_messages_both_ways(opts: ContextOptions, messages) -> None:
    # Several messages alternating direction, each sealed then signed, all round-trip.
    adapter, pair = _establish(opts)
    for n, layout in enumerate(messages):
        sender, receiver = (pair.client, pair.server) if n % 2 == 0 else (pair.server, pair.client)
        desc = _message(layout)
        assert adapter.encrypt_message(sender, 0, desc, 2 * n).status == S.SEC_E_OK
        assert adapter.decrypt_message(receiver, desc, 2 * n).status == S.SEC_E_OK
        assert [bytes(b.data) for b in desc.buffers[:-1]] == [d for d, _ in layout]
        desc = _message(layout)
        assert adapter.make_signature(sender, 0, desc, 2 * n + 1).status == S.SEC_E_OK
        assert adapter.verify_signature(receiver, desc, 2 * n + 1).status == S.SEC_E_OK
