"""Public Hypothesis strategies for the SSPI model, NTLM flags and tampering.

Plural-noun factories with keyword-only options, as Hypothesis's own strategies are. Every
strategy shrinks toward the plainest value: the first of each choice listed (a DATA buffer,
no attribute bits, NTLMv2, 128-bit keys), empty or short byte strings, few buffers, index 0
(Hypothesis prefers fewer choices first, so where alternatives draw different numbers of
values, the docstring says which wins).

- ``buffer_types()``, ``buffer_flags()``, ``sec_buffers()`` and ``buffer_descriptors()`` build
  SecBuffer / SecBufferDesc models (harness.sspi), well-formed or deliberately malformed;
- ``messages()`` builds what MakeSignature and EncryptMessage take: DATA buffers and a TOKEN
  of cbMaxSignature (16) bytes, the layout of the SSPI pages' examples;
- ``negotiate_flags()`` and ``context_options()`` describe contexts;
- ``mutations()`` describes a tamper with a message in flight, as small dataclasses whose
  ``apply`` returns a changed copy (the input is never modified).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hypothesis import strategies as st

from harness.adapters.base import ContextOptions
from harness.ntlm.flags import NegotiateFlags
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECBUFFER_VERSION,
    BufferType,
)

__all__ = [
    "ATTRIBUTES",
    "BUFFER_MUTATIONS",
    "DEFECTS",
    "KINDS",
    "MUTATION_KINDS",
    "SIGNATURE_SIZE",
    "STREAM_MUTATIONS",
    "VARIANTS",
    "BufferMutation",
    "Extend",
    "Mutation",
    "Reorder",
    "Replay",
    "StreamMutation",
    "Truncate",
    "XorByte",
    "buffer_descriptors",
    "buffer_flags",
    "buffer_types",
    "context_options",
    "messages",
    "mutations",
    "negotiate_flags",
    "sec_buffers",
]

SIGNATURE_SIZE: Final = 16  # NTLMSSP_MESSAGE_SIGNATURE (MS-NLMP §2.2.2.9): cbMaxSignature
UINT32_MAX: Final = 0xFFFFFFFF

# Buffer types in shrink order: DATA and TOKEN first, as every message has them.
KINDS: Final[tuple[BufferType, ...]] = (
    BufferType.DATA,
    BufferType.TOKEN,
    BufferType.EMPTY,
    BufferType.PADDING,
    BufferType.PKG_PARAMS,
    BufferType.MISSING,
    BufferType.EXTRA,
    BufferType.STREAM_TRAILER,
    BufferType.STREAM_HEADER,
    BufferType.NEGOTIATION_INFO,
    BufferType.STREAM,
)

# The attribute combinations of sspi.h a buffer can carry, plainest first.
ATTRIBUTES: Final[tuple[int, ...]] = (
    0,
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM,
)

# ContextOptions.ntlm_version values, plainest first.
VARIANTS: Final[tuple[str, ...]] = ("v2", "v1-ess", "v1")

# What ``buffer_descriptors(malformed=True)`` can do to a descriptor.
DEFECTS: Final[tuple[str, ...]] = ("version", "count", "null-array", "null-data", "length")


# -- the SSPI model ---------------------------------------------------------------------------


def buffer_types(*, allow_unknown: bool = False) -> st.SearchStrategy[int]:
    """SecBuffer types of sspi.h (EMPTY 0 … STREAM 10), without attribute bits.

    With ``allow_unknown`` also values no header defines (11 up to the attribute bits).
    Shrinks toward DATA, then TOKEN, then the order of ``KINDS``.
    """
    known: st.SearchStrategy[int] = st.sampled_from(KINDS)
    if allow_unknown:
        return known | st.integers(11, 0x0FFFFFFF)
    return known


def buffer_flags() -> st.SearchStrategy[int]:
    """SECBUFFER_ATTRMASK bits sspi.h defines: none, READONLY, READONLY_WITH_CHECKSUM, both.

    Shrinks toward 0 (no attribute).
    """
    return st.sampled_from(ATTRIBUTES)


def _lie(real: int) -> st.SearchStrategy[int]:
    """A cbBuffer that differs from the real length: larger (the dangerous lie) or smaller."""
    larger = st.integers(real + 1, UINT32_MAX)
    if real == 0:
        return larger
    return larger | st.integers(0, real - 1)


@st.composite
def sec_buffers(
    draw: st.DrawFn,
    *,
    kinds: Sequence[int] = KINDS,
    min_size: int = 0,
    max_size: int = 64,
    allow_readonly: bool = True,
    allow_null: bool = False,
    allow_lying_length: bool = False,
) -> SecBuffer:
    """One SecBuffer of one of ``kinds`` holding ``min_size``..``max_size`` bytes.

    ``allow_readonly`` adds attribute bits (``buffer_flags()``); ``allow_null`` a NULL
    ``pvBuffer`` (whose ``cbBuffer`` may still claim bytes); ``allow_lying_length`` a
    ``cbBuffer`` that differs from the bytes really there. Shrinks toward the first kind, no
    attributes, and short all-zero contents with an honest length.
    """
    kind = draw(st.sampled_from(list(kinds)))
    flags = draw(buffer_flags()) if allow_readonly else 0
    data = bytearray(draw(st.binary(min_size=min_size, max_size=max_size)))
    buffer = SecBuffer(int(kind) | flags, data)
    if allow_null and draw(st.booleans()):
        buffer.data = None
        buffer.declared_length = draw(st.sampled_from([0, len(data)]))
    if allow_lying_length and draw(st.booleans()):
        buffer.declared_length = draw(_lie(len(data) if buffer.data is not None else 0))
    return buffer


def _token(draw: st.DrawFn) -> SecBuffer:
    """A TOKEN buffer large enough for an NTLM signature (cbMaxSignature, 16 bytes)."""
    size = draw(st.integers(SIGNATURE_SIZE, 2 * SIGNATURE_SIZE))
    return SecBuffer(int(BufferType.TOKEN), bytearray(size))


def _damage(draw: st.DrawFn, desc: SecBufferDesc, defect: str) -> None:
    """Apply one of ``DEFECTS`` to ``desc`` in place."""
    if defect == "version":
        desc.version = draw(st.integers(SECBUFFER_VERSION + 1, UINT32_MAX))
        return
    if defect == "count":
        desc.declared_count = draw(_lie(desc.c_buffers))
        return
    if defect == "null-array":
        desc.buffers = None
        return
    assert desc.buffers is not None
    if not desc.buffers:
        desc.buffers.append(SecBuffer(int(BufferType.DATA), bytearray(draw(st.binary()))))
    target = desc.buffers[draw(st.integers(0, len(desc.buffers) - 1))]
    real = 0 if target.data is None else len(target.data)
    if defect == "null-data":
        target.data = None
        target.declared_length = draw(st.integers(0, UINT32_MAX))  # NULL with a length
    else:
        target.declared_length = draw(_lie(real))


@st.composite
def buffer_descriptors(
    draw: st.DrawFn,
    *,
    max_buffers: int = 8,
    allow_readonly: bool = True,
    require_token: bool = False,
    malformed: bool = False,
    kinds: Sequence[int] = KINDS,
    max_size: int = 64,
) -> SecBufferDesc:
    """A SecBufferDesc of up to ``max_buffers`` buffers of ``kinds`` (``sec_buffers()``).

    ``require_token`` makes the first TOKEN (the one a package writes the signature into)
    hold at least cbMaxSignature bytes.
    Without ``malformed`` the descriptor is well-formed: ``ulVersion`` SECBUFFER_VERSION,
    ``cBuffers`` the array's length, every ``pvBuffer`` set, every ``cbBuffer`` honest.
    ``malformed=True`` adds at least one of ``DEFECTS``: a bad ``ulVersion``, a ``cBuffers``
    that lies (up or down), a NULL ``pBuffers``, a NULL ``pvBuffer`` and a ``cbBuffer`` that
    lies (up or down). A downward lie is still a legal descriptor (a package just sees fewer
    buffers or bytes); the others are not. Shrinks toward few short DATA buffers, the TOKEN
    first, and a single defect.
    """
    count = max_buffers - 1 if require_token else max_buffers
    buffers = draw(
        st.lists(
            sec_buffers(kinds=kinds, max_size=max_size, allow_readonly=allow_readonly),
            max_size=max(count, 0),
        )
    )
    if require_token:
        tokens = [i for i, b in enumerate(buffers) if b.kind == BufferType.TOKEN]
        buffers.insert(draw(st.integers(0, tokens[0] if tokens else len(buffers))), _token(draw))
    desc = SecBufferDesc(buffers)
    if malformed:
        for defect in draw(st.lists(st.sampled_from(DEFECTS), min_size=1, unique=True)):
            if desc.buffers is None and defect in ("null-data", "length"):
                continue  # nothing left to damage
            _damage(draw, desc, defect)
    return desc


@st.composite
def messages(
    draw: st.DrawFn,
    *,
    max_buffers: int = 4,
    max_size: int = 1024,
    attributes: Sequence[int] = (0,),
) -> SecBufferDesc:
    """What MakeSignature and EncryptMessage take: 1..``max_buffers`` DATA buffers of up to
    ``max_size`` bytes each, then a TOKEN of cbMaxSignature (16) zero bytes.

    ``attributes`` are the attribute bits a DATA buffer may carry (``ATTRIBUTES`` for all of
    them). Shrinks toward one empty DATA buffer without attributes.
    """
    data = draw(
        st.lists(
            st.tuples(st.binary(max_size=max_size), st.sampled_from(list(attributes))),
            min_size=1,
            max_size=max(max_buffers, 1),
        )
    )
    buffers = [SecBuffer.of(BufferType.DATA, payload, flags) for payload, flags in data]
    buffers.append(SecBuffer.of(BufferType.TOKEN, SIGNATURE_SIZE))
    return SecBufferDesc(buffers)


# -- contexts ---------------------------------------------------------------------------------


def negotiate_flags(*, required: int = 0, excluded: int = 0) -> st.SearchStrategy[NegotiateFlags]:
    """NEGOTIATE flags of MS-NLMP §2.2.2.5 (harness.ntlm.flags): every combination of the
    defined bits that contains ``required`` and none of ``excluded``. Shrinks toward
    ``required`` alone."""
    free = [f for f in NegotiateFlags if not f & (required | excluded)]
    base = NegotiateFlags(required)
    return st.lists(st.sampled_from(free), unique=True).map(
        lambda bits: functools.reduce(operator.or_, bits, base)
    )


@st.composite
def context_options(
    draw: st.DrawFn,
    *,
    variants: Sequence[str] = VARIANTS,
    datagram: Sequence[bool] = (False, True),
    key_exchange: Sequence[bool] = (True, False),
    key_bits: Sequence[int] = (128, 56, 40),
    lm_key: Sequence[bool] = (False, True),
    integrity: Sequence[bool] = (True,),
    confidentiality: Sequence[bool] = (True,),
) -> ContextOptions:
    """ContextOptions the reference SSP supports, from the allowed values of each field.

    Datagram (connectionless) contexts are drawn only with extended session security: without
    it "message confidentiality is available in connectionless mode only if the client
    configures extended session security" (MS-NLMP §3.4.3) fails sealing, so ``v1`` contexts
    are always connection-oriented. By default contexts sign and seal; pass
    ``integrity=(True, False)`` / ``confidentiality=(True, False)`` for the others.
    Shrinks toward the first value of each option: NTLMv2, connection-oriented, KEY_EXCH,
    128-bit keys, no LM_KEY.
    """
    # Every field is drawn whatever the others are, so that the simplest choice sequence
    # (Hypothesis shrinks toward fewer and smaller choices) is the first value of each.
    version = draw(st.sampled_from(list(variants)))
    confidential = draw(st.sampled_from(list(confidentiality)))
    signing = draw(st.sampled_from(list(integrity)))
    connectionless = draw(st.sampled_from(list(datagram)))
    return ContextOptions(
        ntlm_version=version,
        integrity=confidential or signing,
        confidentiality=confidential,
        key_exchange=draw(st.sampled_from(list(key_exchange))),
        key_bits=draw(st.sampled_from(list(key_bits))),
        datagram=connectionless and version != "v1",
        lm_key=draw(st.sampled_from(list(lm_key))),
    )


# -- mutations --------------------------------------------------------------------------------


def _nonempty(desc: SecBufferDesc) -> list[int]:
    """Indexes of the buffers that hold at least one byte."""
    return [i for i, b in enumerate(desc.buffers or []) if b.data]


@dataclass(frozen=True)
class XorByte:
    """XOR one byte with ``value``: of the ``buffer``-th non-empty buffer (modulo their
    count, so -1 is the last), at ``offset`` (modulo its length)."""

    buffer: int
    offset: int
    value: int

    def where(self, desc: SecBufferDesc) -> tuple[int, int] | None:
        """(buffer index, byte offset) in ``desc``, or None when every buffer is empty."""
        candidates = _nonempty(desc)
        if not candidates:
            return None
        index = candidates[self.buffer % len(candidates)]
        data = (desc.buffers or [])[index].data
        assert data is not None
        return index, self.offset % len(data)

    def apply(self, desc: SecBufferDesc) -> SecBufferDesc:
        out = desc.copy()
        spot = self.where(out)
        if spot is not None:
            data = (out.buffers or [])[spot[0]].data
            assert data is not None
            data[spot[1]] ^= self.value
        return out


@dataclass(frozen=True)
class Truncate:
    """Cut the ``buffer``-th non-empty buffer (modulo their count, so -1 is the last) to
    ``keep`` bytes (modulo its length, so it always loses at least one byte); ``cbBuffer``
    follows."""

    buffer: int
    keep: int

    def where(self, desc: SecBufferDesc) -> tuple[int, int] | None:
        """(buffer index, new length), or None when every buffer is empty."""
        candidates = _nonempty(desc)
        if not candidates:
            return None
        index = candidates[self.buffer % len(candidates)]
        data = (desc.buffers or [])[index].data
        assert data is not None
        return index, self.keep % len(data)

    def apply(self, desc: SecBufferDesc) -> SecBufferDesc:
        out = desc.copy()
        spot = self.where(out)
        if spot is not None:
            target = (out.buffers or [])[spot[0]]
            assert target.data is not None
            del target.data[spot[1] :]
            target.declared_length = None
        return out


@dataclass(frozen=True)
class Extend:
    """Append ``extra`` bytes to the ``buffer``-th buffer (modulo their count, so -1 is the
    last); ``cbBuffer`` follows. Extending the TOKEN past cbMaxSignature leaves the signature
    itself intact."""

    buffer: int
    extra: bytes

    def where(self, desc: SecBufferDesc) -> int | None:
        """The buffer index, or None for an empty array."""
        buffers = desc.buffers or []
        return self.buffer % len(buffers) if buffers else None

    def apply(self, desc: SecBufferDesc) -> SecBufferDesc:
        out = desc.copy()
        index = self.where(out)
        if index is not None:
            target = (out.buffers or [])[index]
            target.data = bytearray(target.data or b"") + self.extra
            target.declared_length = None
        return out


@dataclass(frozen=True)
class Replay:
    """Deliver again the ``index``-th (modulo) of the messages already delivered."""

    index: int

    def apply(self, stream: Sequence[SecBufferDesc]) -> list[SecBufferDesc]:
        """The stream with a copy of the chosen message appended."""
        out = [d.copy() for d in stream]
        if out:
            out.append(out[self.index % len(out)].copy())
        return out


@dataclass(frozen=True)
class Reorder:
    """Deliver a later message first: the one ``1 + skip % (n - 1)`` places after the next
    of ``n`` messages in flight moves to the front."""

    skip: int

    def apply(self, stream: Sequence[SecBufferDesc]) -> list[SecBufferDesc]:
        """The stream with the chosen later message first (unchanged with fewer than two)."""
        out = [d.copy() for d in stream]
        if len(out) >= 2:
            out.insert(0, out.pop(1 + self.skip % (len(out) - 1)))
        return out


BufferMutation = XorByte | Truncate | Extend  # apply(desc) -> desc
StreamMutation = Replay | Reorder  # apply(stream of descs) -> stream
Mutation = BufferMutation | StreamMutation

BUFFER_MUTATIONS: Final[tuple[str, ...]] = ("xor", "truncate", "extend")
STREAM_MUTATIONS: Final[tuple[str, ...]] = ("replay", "reorder")
MUTATION_KINDS: Final[tuple[str, ...]] = BUFFER_MUTATIONS + STREAM_MUTATIONS

# Buffer indexes: negative ones count from the end (-1 is the TOKEN of ``messages()``).
_INDEX = st.integers(-8, 255)
_OFFSET = st.integers(0, 15) | st.integers(0, 1 << 16)  # often within a signature


def _mutation(kind: str) -> st.SearchStrategy[Mutation]:
    if kind == "xor":
        return st.builds(XorByte, _INDEX, _OFFSET, st.integers(1, 255))
    if kind == "truncate":
        return st.builds(Truncate, _INDEX, _OFFSET)
    if kind == "extend":
        return st.builds(Extend, _INDEX, st.binary(min_size=1, max_size=32))
    if kind == "replay":
        return st.builds(Replay, st.integers(0, 255))
    if kind == "reorder":
        return st.builds(Reorder, st.integers(0, 255))
    raise ValueError(f"unknown mutation kind {kind!r} (known: {', '.join(MUTATION_KINDS)})")


def mutations(*, kinds: Sequence[str] = MUTATION_KINDS) -> st.SearchStrategy[Mutation]:
    """Descriptions of a tamper with messages in flight, of the given ``kinds``.

    Buffer mutations (``XorByte``, ``Truncate``, ``Extend``; ``BUFFER_MUTATIONS``) change one
    descriptor: ``apply(desc)``. Stream mutations (``Replay``, ``Reorder``;
    ``STREAM_MUTATIONS``) change the order of messages: ``apply(stream)``. Indexes and offsets
    are taken modulo what the message holds, so a description applies to any message. Shrinks
    toward the kinds with the fewest fields (Replay, Reorder, then Truncate, Extend, XorByte),
    and within a kind toward buffer 0, offset 0, XOR value 1, one extra zero byte.
    """
    if not kinds:
        raise ValueError("mutations() needs at least one kind")
    return st.one_of([_mutation(k) for k in kinds])
