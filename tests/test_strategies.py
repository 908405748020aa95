"""The public strategies produce valid model objects (or, asked to, malformed ones), and
shrink to what their docstrings say."""

from __future__ import annotations

from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from harness.adapters.base import ContextOptions, ContextPair
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.package import _checked
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_ATTRMASK,
    SECBUFFER_VERSION,
    BufferType,
)
from harness.sspi.constants import SecStatus as S
from harness.strategies import (
    ATTRIBUTES,
    BUFFER_MUTATIONS,
    VARIANTS,
    Extend,
    Reorder,
    Replay,
    Truncate,
    XorByte,
    buffer_descriptors,
    buffer_flags,
    buffer_types,
    context_options,
    messages,
    mutations,
    negotiate_flags,
    sec_buffers,
)

SETTINGS = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
FIND = settings(database=None, max_examples=50)


def _pair(options: ContextOptions | None = None) -> tuple[ReferenceAdapter, ContextPair]:
    adapter = ReferenceAdapter()
    pair = adapter.establish(options or ContextOptions())
    assert isinstance(pair, ContextPair), pair
    return adapter, pair


def _contents(desc: SecBufferDesc) -> list[bytes | None]:
    return [None if b.data is None else bytes(b.data) for b in desc.buffers or []]


# -- buffers and descriptors ------------------------------------------------------------------


@SETTINGS
@given(known=buffer_types(), any_type=buffer_types(allow_unknown=True), flags=buffer_flags())
def test_types_and_flags(known: int, any_type: int, flags: int) -> None:
    assert known in set(BufferType)
    assert 0 <= any_type < 0x10000000  # never spills into the attribute bits
    assert flags in ATTRIBUTES and flags & ~SECBUFFER_ATTRMASK == 0


@SETTINGS
@given(
    plain=sec_buffers(kinds=[BufferType.DATA], max_size=8, allow_readonly=False),
    odd=sec_buffers(allow_null=True, allow_lying_length=True),
)
def test_sec_buffers(plain, odd) -> None:
    assert plain.buffer_type == BufferType.DATA and plain.data is not None
    assert len(plain.data) <= 8 and plain.declared_length is None
    assert odd.kind in set(BufferType)


@SETTINGS
@given(desc=buffer_descriptors(), signed=buffer_descriptors(require_token=True, max_buffers=4))
def test_well_formed_descriptors_pass_the_reference_checks(desc, signed) -> None:
    for d in (desc, signed):
        assert d.version == SECBUFFER_VERSION and d.declared_count is None
        assert all(b.data is not None and b.declared_length is None for b in d.buffers)
        status, buffers, _token, _data = _checked(d)
        assert status == S.SEC_E_OK and len(buffers) == len(d.buffers)
    assert len(signed.buffers) <= 4
    assert any(b.kind == BufferType.TOKEN and b.cb_buffer >= 16 for b in signed.buffers)
    if len(signed.buffers) >= 2:  # "contained too few buffers" otherwise
        adapter, pair = _pair()
        assert adapter.make_signature(pair.client, 0, signed, 0).status == S.SEC_E_OK


def _defects(desc: SecBufferDesc) -> list[str]:
    """What a malformed descriptor changed, as the model shows it."""
    out = []
    if desc.version != SECBUFFER_VERSION:
        out.append("version")
    if desc.buffers is None:
        out.append("null-array")
    elif desc.declared_count is not None and desc.declared_count != len(desc.buffers):
        out.append("count")
    for buf in desc.buffers or []:
        if buf.data is None:
            out.append("null-data")
        elif buf.declared_length is not None and buf.declared_length != len(buf.data):
            out.append("length")
    return out


@SETTINGS
@given(desc=buffer_descriptors(malformed=True, require_token=True))
def test_malformed_descriptors_have_a_defect(desc: SecBufferDesc) -> None:
    defects = _defects(desc)
    assert defects
    if "version" in defects or "null-array" in defects:
        adapter, pair = _pair()
        status = adapter.make_signature(pair.client, 0, desc, 0).status
        assert status == S.SEC_E_INVALID_TOKEN


@SETTINGS
@given(
    desc=messages(max_buffers=3, max_size=32, attributes=ATTRIBUTES),
    options=context_options(variants=("v2", "v1")),
)
def test_messages_sign_and_seal_on_the_reference(desc: SecBufferDesc, options) -> None:
    assert desc.buffers is not None
    *data, token = desc.buffers
    assert token.kind == BufferType.TOKEN and token.data == bytes(16)
    assert 1 <= len(data) <= 3 and all(b.kind == BufferType.DATA for b in data)
    assert all(b.flags in ATTRIBUTES and len(b.data or b"") <= 32 for b in data)
    adapter, pair = _pair(options)
    plain = _contents(desc)[:-1]
    signed = desc.copy()
    assert adapter.make_signature(pair.client, 0, signed, 0).status == S.SEC_E_OK
    assert adapter.verify_signature(pair.server, signed, 0).status == S.SEC_E_OK
    sealed = desc.copy()
    assert adapter.encrypt_message(pair.client, 0, sealed, 1).status == S.SEC_E_OK
    assert adapter.decrypt_message(pair.server, sealed, 1).status == S.SEC_E_OK
    assert _contents(sealed)[:-1] == plain


# -- contexts ---------------------------------------------------------------------------------


@SETTINGS
@given(flags=negotiate_flags(required=F.SIGN, excluded=F.SEAL | F.DATAGRAM))
def test_negotiate_flags(flags: F) -> None:
    assert isinstance(flags, F)
    assert flags & F.SIGN and not flags & (F.SEAL | F.DATAGRAM)


@SETTINGS
@given(
    options=context_options(
        integrity=(True, False), confidentiality=(True, False), key_bits=(128, 56, 40)
    )
)
def test_context_options_establish_on_the_reference(options: ContextOptions) -> None:
    assert options.ntlm_version in VARIANTS
    assert not (options.datagram and options.ntlm_version == "v1")  # datagram only with ESS
    assert options.integrity or not options.confidentiality
    _, pair = _pair(options)
    assert pair.exported_session_key is not None and pair.flags & F.DATAGRAM == (
        F.DATAGRAM if options.datagram else 0
    )


# -- mutations --------------------------------------------------------------------------------


@SETTINGS
@given(desc=messages(max_size=16), mutation=mutations(kinds=BUFFER_MUTATIONS))
def test_buffer_mutations_change_a_copy(desc: SecBufferDesc, mutation) -> None:
    before = _contents(desc)
    out = mutation.apply(desc)
    assert _contents(desc) == before  # the input is never modified
    after = _contents(out)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == 1  # the TOKEN is never empty, so there is always a target
    old, new = before[changed[0]], after[changed[0]]
    assert old is not None and new is not None
    if isinstance(mutation, XorByte):
        assert len(new) == len(old) and sum(a != b for a, b in zip(old, new, strict=True)) == 1
    elif isinstance(mutation, Truncate):
        assert new == old[: len(new)] and len(new) < len(old)
    else:
        assert isinstance(mutation, Extend) and new == old + mutation.extra


@SETTINGS
@given(
    stream=st.lists(messages(max_buffers=1, max_size=4), min_size=1, max_size=5),
    replay=mutations(kinds=("replay",)),
    reorder=mutations(kinds=("reorder",)),
)
def test_stream_mutations(stream: list[SecBufferDesc], replay, reorder) -> None:
    assert isinstance(replay, Replay) and isinstance(reorder, Reorder)
    replayed = replay.apply(stream)
    assert [_contents(d) for d in replayed[:-1]] == [_contents(d) for d in stream]
    assert _contents(replayed[-1]) == _contents(stream[replay.index % len(stream)])
    reordered = reorder.apply(stream)
    assert sorted(map(repr, map(_contents, reordered))) == sorted(map(repr, map(_contents, stream)))
    if len(stream) >= 2:
        moved = 1 + reorder.skip % (len(stream) - 1)
        assert _contents(reordered[0]) == _contents(stream[moved])


# -- shrinking, as the docstrings promise -----------------------------------------------------


def test_minimal_examples() -> None:
    message = find(messages(), lambda _: True, settings=FIND)
    assert [b.buffer_type for b in message.buffers or []] == [BufferType.DATA, BufferType.TOKEN]
    assert _contents(message) == [b"", bytes(16)]
    for kind, simplest in (
        ("xor", XorByte(0, 0, 1)),
        ("truncate", Truncate(0, 0)),
        ("extend", Extend(0, b"\0")),
        ("replay", Replay(0)),
        ("reorder", Reorder(0)),
    ):
        assert find(mutations(kinds=(kind,)), lambda _: True, settings=FIND) == simplest
    assert find(context_options(), lambda _: True, settings=FIND) == ContextOptions()
    assert find(buffer_flags(), lambda _: True, settings=FIND) == 0
    assert find(negotiate_flags(required=F.SIGN), lambda _: True, settings=FIND) == F.SIGN
    bad = find(buffer_descriptors(malformed=True), lambda _: True, settings=FIND)
    assert bad.buffers in ([], None) and len(_defects(bad)) == 1
