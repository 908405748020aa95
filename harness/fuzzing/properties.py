"""A Hypothesis property that is also a fuzz target (``fuzz_one_input``).

``roundtrip_property(adapter_name)`` is an ordinary ``@given`` test, built from
``harness.strategies``: a message (``messages()``) signed or sealed by the adapter's client is
verified or unsealed by its server; a copy changed by a ``XorByte`` or ``Truncate`` mutation
must be rejected first, and the original must then be accepted with its plaintext back.

The same test runs three ways:
- in the ordinary test run (``tests/test_fuzzing.py`` calls it);
- under atheris (``fuzz/fuzz_properties.py``), through ``test.hypothesis.fuzz_one_input``;
- replaying: a failure found by ``fuzz_one_input`` is saved in the Hypothesis example database
  (``.hypothesis/examples`` at the repository root, or ``SSPI_HYPOTHESIS_DB``) under this
  test's key, and the next ordinary run of the test replays it first.

The database key includes the adapter name, so failures stay with the adapter that had them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

from harness.adapters.base import Adapter, CannotExpress, ContextOptions, ContextPair
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import BufferType, SecStatus, status_name
from harness.strategies import messages, mutations

REPO = Path(__file__).resolve().parents[2]
_PAIRS: dict[int, tuple[Adapter, ContextPair]] = {}


def default_database() -> ExampleDatabase:
    """The example database fuzz_one_input writes to and the test run reads from."""
    path = os.environ.get("SSPI_HYPOTHESIS_DB") or str(REPO / ".hypothesis" / "examples")
    return DirectoryBasedExampleDatabase(path)


def forget(adapter: Adapter) -> None:
    """Drop the cached context pair of ``adapter`` (after a failure its state is unknown)."""
    _PAIRS.pop(id(adapter), None)


def _pair(adapter: Adapter) -> ContextPair | None:
    cached = _PAIRS.get(id(adapter))
    if cached is not None:
        return cached[1]
    try:
        pair = adapter.establish(ContextOptions())
    except CannotExpress:
        return None
    if not isinstance(pair, ContextPair):
        return None
    _PAIRS[id(adapter)] = (adapter, pair)
    return pair


def _contents(desc: SecBufferDesc) -> list[bytes]:
    return [bytes(b.data or b"") for b in desc.buffers or []]


def roundtrip_property(
    adapter_name: str,
    *,
    adapter: Adapter | None = None,
    database: ExampleDatabase | None = None,
    max_examples: int = 50,
) -> Any:
    """The round-trip property of ``adapter_name`` as a Hypothesis test (call it to run it,
    or use ``.hypothesis.fuzz_one_input``). ``adapter`` is an instance to drive (for example
    one isolated in a worker); by default one is made from the registry."""
    if adapter is None:
        from harness.adapters.registry import load_adapter

        adapter = load_adapter(adapter_name)()
    the_adapter = adapter

    def sign_seal_roundtrip(op: str, message: SecBufferDesc, mutation: Any) -> None:
        pair = _pair(the_adapter)
        if pair is None:
            reject()
        assert pair is not None
        try:
            _roundtrip(the_adapter, pair, op, message, mutation)
        except CannotExpress:
            reject()
        except BaseException:
            forget(the_adapter)
            raise

    sign_seal_roundtrip._hypothesis_internal_add_digest = adapter_name.encode()  # type: ignore[attr-defined]
    test = settings(
        database=database if database is not None else default_database(),
        max_examples=max_examples,
        deadline=None,
        phases=[p for p in Phase if p is not Phase.explain],
        suppress_health_check=list(HealthCheck),
    )(
        given(
            op=st.sampled_from(["sign", "seal"]),
            message=messages(max_buffers=3, max_size=256),
            mutation=mutations(kinds=("xor", "truncate")),
        )(sign_seal_roundtrip)
    )
    return test


def _roundtrip(
    adapter: Adapter, pair: ContextPair, op: str, message: SecBufferDesc, mutation: Any
) -> None:
    sent = message.copy()
    protect = adapter.make_signature if op == "sign" else adapter.encrypt_message
    check = adapter.verify_signature if op == "sign" else adapter.decrypt_message
    result = protect(pair.client, 0, sent, 0)
    assert result.status == SecStatus.SEC_E_OK, (
        f"{op}: the sender returned {status_name(result.status)} {result.detail}"
    )
    tampered = mutation.apply(sent)
    if _contents(tampered) != _contents(sent):
        refused = check(pair.server, tampered.copy(), 0)
        assert refused.status != SecStatus.SEC_E_OK, (
            f"{op}: a message changed by {mutation} was accepted"
        )
    delivered = sent.copy()
    accepted = check(pair.server, delivered, 0)
    assert accepted.status == SecStatus.SEC_E_OK, (
        f"{op}: the original message was refused with {status_name(accepted.status)} "
        f"after the changed one"
    )
    if op == "seal":
        plain = [bytes(b.data or b"") for b in message.of_kind(BufferType.DATA)]
        got = [bytes(b.data or b"") for b in delivered.of_kind(BufferType.DATA)]
        assert got == plain, f"seal: the unsealed data differs from the plaintext: {got!r}"
