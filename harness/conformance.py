"""The conformance test: an adapter driven through SSPI message flows by a Hypothesis
rule-based state machine, and compared with the reference SSP.

An SSP author calls it in one line from their own suite (docs/conformance-test.md)::

    def test_conformance():
        run_conformance_test(MyAdapter)

The machine establishes a context pair (the adapter alone, or one role against a peer that is
the reference by default), then interleaves: sign or seal a random message at either end,
verify or unseal the next one in flight at the other, tamper with it first, replay one already
delivered, deliver a later one first, query the sizes, use a forged handle, delete a context
and use its handle (then start a fresh pair). When the exported session key is known
(``ContextPair.exported_session_key`` and the negotiated flags), a shadow pair in the reference
(``ReferenceAdapter.from_session_key``) repeats every call: the adapter's signatures,
ciphertexts and plaintexts must equal the shadow's byte for byte, and it must accept and reject
what the shadow does. When the key is unknown, round trips and the rules of MS-NLMP §3.4 that
need no key are checked. On every call: read-only buffers are never written, and a failed
DecryptMessage changes nothing.

Statuses: a failing call must fail where the reference fails, but the failure status itself is
compared only with ``strict_statuses=True``: the catalogue (harness/scenarios) judges exact
statuses per profile with their evidence. A deleted or forged handle must give
SEC_E_INVALID_HANDLE in either mode (the message-function pages name no other status for it).

Left to the catalogue, because the documents or Windows disagree or say nothing: contexts
without integrity or confidentiality, fQOP other than 0, bare SECBUFFER_READONLY buffers,
TOKENs longer than 16 bytes, malformed descriptors.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from hypothesis import HealthCheck, Phase, event, note
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from harness.adapters.base import (
    Adapter,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    ContextPair,
    Handle,
    HandleTable,
    Party,
    handshake,
)
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm.flags import NegotiateFlags as F
from harness.ntlm.flags import flag_names
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    BufferType,
    SecStatus,
    status_name,
)
from harness.strategies import (
    BUFFER_MUTATIONS,
    SIGNATURE_SIZE,
    VARIANTS,
    BufferMutation,
    Extend,
    Reorder,
    Replay,
    Truncate,
    XorByte,
    context_options,
    messages,
    mutations,
)

__all__ = [
    "AdapterRaised",
    "ConformanceError",
    "ConformanceFailure",
    "Unsupported",
    "conformance_machine",
    "isolated_property_phase",
    "property_phase",
    "run_conformance_test",
]

ROLES = ("client", "server")
OTHER = {"client": "server", "server": "client"}
MAX_DATA_SIZE = 64  # bytes per DATA buffer: enough for every code path, keeps runs fast
DEFAULT_EXAMPLES = 100


class ConformanceError(AssertionError):
    """The adapter did not conform; ``outcome`` is the results.jsonl outcome it maps to."""

    outcome: ClassVar[str] = "FAIL"

    def __init__(self, message: str, *, steps: str = "") -> None:
        super().__init__(message)
        self.steps = steps  # the minimal failing sequence, once Hypothesis has shrunk it


class ConformanceFailure(ConformanceError):
    """A call disagreed with the reference or broke a rule of MS-NLMP §3.4 / the SSPI pages."""


class AdapterRaised(ConformanceError):
    """An exception escaped the adapter: adapters return statuses (DESIGN.md §2.1)."""

    outcome = "ERROR"


class Unsupported(ConformanceError):
    """The adapter cannot be tested this way here (not available, cannot play the role, or
    can express none of the contexts the machine asks for)."""

    outcome = "UNSUPPORTED"


# -- one call, its mirror in the shadow, and the checks that need no state ---------------------


def _invoke(adapter: Adapter, op: str, handle: Handle, desc: SecBufferDesc, seqno: int) -> Any:
    if op == "sign":
        return adapter.make_signature(handle, 0, desc, seqno)
    if op == "verify":
        return adapter.verify_signature(handle, desc, seqno)
    if op == "seal":
        return adapter.encrypt_message(handle, 0, desc, seqno)
    if op == "unseal":
        return adapter.decrypt_message(handle, desc, seqno)
    if op == "delete":
        return adapter.delete_context(handle)
    if op == "sizes":
        return adapter.query_sizes(handle)[0]
    raise ValueError(op)


METHOD = {
    "sign": "make_signature",
    "verify": "verify_signature",
    "seal": "encrypt_message",
    "unseal": "decrypt_message",
    "delete": "delete_context",
    "sizes": "query_sizes",
}


def _contents(desc: SecBufferDesc) -> list[bytes | None]:
    return [None if b.data is None else bytes(b.data) for b in desc.buffers or []]


def _data(desc: SecBufferDesc) -> list[bytes]:
    return [bytes(b.data or b"") for b in desc.buffers or [] if b.kind == BufferType.DATA]


def _readonly(buf: SecBuffer) -> bool:
    return bool(buf.flags & (SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM))


def _signed(buf: SecBuffer) -> bool:
    """Covered by the signature: DATA not READONLY, or READONLY_WITH_CHECKSUM (what the
    reference signs; see harness/ntlm/package.py)."""
    return buf.kind == BufferType.DATA and (
        not buf.buffer_type & SECBUFFER_READONLY or buf.readonly_with_checksum
    )


def _name(adapter: Adapter) -> str:
    return adapter.name or type(adapter).__name__


def _hex(value: bytes | None) -> str:
    return "NULL" if value is None else value.hex() or "(empty)"


@dataclass
class _End:
    """One end of the context pair and its shadow in the reference."""

    role: str
    adapter: Adapter
    handle: Handle
    tested: bool  # an end of the adapter under test, not of the peer
    shadow: Handle | None = None
    alive: bool = True


@dataclass
class _Message:
    """A message as it left its sender, waiting for (or past) its receiver."""

    number: int
    op: str  # "sign" or "seal"
    sent: SecBufferDesc
    plain: list[bytes]
    seqno: int
    sender: str

    def __str__(self) -> str:
        return f"message #{self.number} ({self.op}ed by the {self.sender})"


def _options_for(caps: Capability) -> st.SearchStrategy[ContextOptions]:
    """The contexts the machine asks an adapter with these capabilities for."""
    variants = [
        v
        for v, cap in (
            ("v2", Capability.NTLMV2),
            ("v1-ess", Capability.NTLMV1),
            ("v1", Capability.NTLMV1_NO_ESS),
        )
        if cap in caps
    ]
    datagram = (False, True) if Capability.DATAGRAM in caps else (False,)
    return context_options(variants=variants or ["v2"], datagram=datagram)


def _attributes(caps: Capability, *, sealing: bool) -> tuple[int, ...]:
    """The DATA attribute bits messages carry: READONLY_WITH_CHECKSUM where the adapter says it
    honours it. Windows signs such buffers and does not encrypt them (Wine's ntlm.c four-buffer
    vectors). A bare SECBUFFER_READONLY is left out: the seed says such a buffer "will not be
    signed", MS-NLMP §3.4.6 that "for NTLMv2, all input data buffers are included in the
    message signature", and no public test shows what Windows does (docs/divergences.md §4);
    the catalogue covers both readings."""
    needed = Capability.READONLY_WITH_CHECKSUM if sealing else Capability.SIGN_READONLY
    return (0, SECBUFFER_READONLY_WITH_CHECKSUM) if needed in caps else (0,)


def _fallbacks(opts: ContextOptions) -> list[ContextOptions]:
    """``opts``, then plainer contexts to try when the adapter cannot express it: the same
    variant with common options, then each variant with the defaults."""
    out: list[ContextOptions] = [opts]
    for version in dict.fromkeys((opts.ntlm_version, *VARIANTS)):
        plain = replace(
            opts,
            ntlm_version=version,
            key_exchange=True,
            key_bits=128,
            datagram=False,
            lm_key=version == "v1",  # NTLMv1 clients commonly ask for LM_KEY without ESS
        )
        if plain not in out:
            out.append(plain)
    return out


def conformance_machine(
    adapter_cls: type[Adapter],
    *,
    peer_cls: type[Adapter] = ReferenceAdapter,
    role: str | None = None,
    options: ContextOptions | st.SearchStrategy[ContextOptions] | None = None,
    strict_statuses: bool = False,
) -> type[RuleBasedStateMachine]:
    """A RuleBasedStateMachine class that drives ``adapter_cls`` and compares it with the
    reference.

    ``role`` None: the adapter plays both ends. ``"client"`` / ``"server"``: it plays that end
    and a ``peer_cls`` instance the other. ``options`` fixes the context, or is a strategy of
    them (default: ``context_options()`` limited to the adapter's declared capabilities; a
    drawn context it cannot express falls back to plainer ones). Rules the adapter's
    ``capabilities`` exclude are never run, and a call raising ``CannotExpress`` is skipped as
    not applicable. ``strict_statuses`` also compares failure statuses with the reference.
    """
    if role not in (None, *ROLES):
        raise ValueError(f"role must be None, 'client' or 'server', not {role!r}")
    caps = adapter_cls.capabilities
    fixed = isinstance(options, ContextOptions)
    if isinstance(options, ContextOptions):
        options_strategy: st.SearchStrategy[ContextOptions] = st.just(options)
    else:
        options_strategy = options if options is not None else _options_for(caps)
    max_buffers = 4 if Capability.MULTIPLE_DATA in caps else 1
    # Empty messages (one empty DATA buffer) get a share of their own: the edge case where a
    # signature covers nothing but the sequence number.
    empty = messages(max_buffers=1, max_size=0)
    sign_messages = empty | messages(
        max_buffers=max_buffers,
        max_size=MAX_DATA_SIZE,
        attributes=_attributes(caps, sealing=False),
    )
    seal_messages = empty | messages(
        max_buffers=max_buffers,
        max_size=MAX_DATA_SIZE,
        attributes=_attributes(caps, sealing=True),
    )
    seqnos = st.integers(0, 0xFFFFFFFF)
    ends = st.sampled_from(ROLES)  # who signs or seals
    # Tampering, replays and reordering are aimed at the adapter's own ends; the peer (the
    # reference) still signs, seals and receives to keep the conversation going.
    # Any buffer mutation, or a byte of the signature itself (the last buffer of a message):
    # each of its fields (Version, checksum, SeqNum) then gets the same share of tampers.
    tampers = mutations(kinds=BUFFER_MUTATIONS) | st.builds(
        XorByte, st.just(-1), st.integers(0, SIGNATURE_SIZE - 1), st.integers(1, 255)
    )
    targets = ROLES if role is None else (role,)
    tested = st.sampled_from(targets)
    # A deleted handle reaches the implementation only where it has handles of its own
    # (Capability.BAD_HANDLES) or the adapter answers for it (HandleTable).
    use_after_delete = Capability.BAD_HANDLES in caps or issubclass(adapter_cls, HandleTable)
    where = "alone" if role is None else f"as {role} against {peer_cls.name or peer_cls.__name__}"
    subject = adapter_cls.name or adapter_cls.__name__  # for establishment, before instances

    class Conformance(RuleBasedStateMachine):
        """Sign, verify, seal, unseal, tamper, replay, reorder and delete, with invariants
        that compare every call with the reference."""

        runs: ClassVar[int] = 0  # how many examples started (shrinking included)

        def __init__(self) -> None:
            super().__init__()
            self.adapter: Adapter | None = None
            self.peer: Adapter | None = None
            self.shadow: ReferenceAdapter | None = None
            self.ends: dict[str, _End] = {}
            self.pending: dict[str, deque[_Message]] = {r: deque() for r in ROLES}
            self.delivered: dict[str, list[_Message]] = {r: [] for r in ROLES}
            self.blocked: set[str] = set()  # receivers that cannot take what is sent to them
            self.numbers = 0
            self.options: ContextOptions | None = None
            self.forged = False  # forged_handle ran
            self.datagram = self.half_duplex = self.ess = False
            self.integrity = self.confidentiality = False

        # -- establishment ------------------------------------------------------------------

        @initialize(opts=options_strategy)
        def establish(self, opts: ContextOptions) -> None:
            type(self).runs += 1
            self.adapter = adapter_cls()
            self.peer = peer_cls() if role is not None else None
            tried: list[str] = []
            for candidate in [opts] if fixed else _fallbacks(opts):
                try:
                    pair = self._handshake(candidate)
                except CannotExpress as exc:
                    tried.append(f"{candidate}: {exc}")
                    note(f"cannot express {candidate}: {exc}")
                    continue
                except ConformanceError:
                    raise
                except Exception as exc:
                    raise AdapterRaised(
                        f"establishing {candidate} {where}: {type(exc).__name__}: {exc}"
                    ) from exc
                if candidate != opts:
                    event("context options fell back to plainer ones")
                self.options = candidate
                self._start(candidate, pair)
                return
            raise Unsupported(f"{subject} {where} can express none of: " + "; ".join(tried))

        def _handshake(self, opts: ContextOptions) -> ContextPair:
            assert self.adapter is not None
            if role is None:
                pair = self.adapter.establish(opts)
            elif role == "client":
                assert self.peer is not None
                pair = handshake(self.adapter.client(opts), self.peer.server(opts))
            else:
                assert self.peer is not None
                pair = handshake(self.peer.client(opts), self.adapter.server(opts))
            if isinstance(pair, CallResult):
                raise ConformanceFailure(
                    f"establishing {opts} {where} failed with {status_name(pair.status)}: "
                    f"{pair.detail} (the reference establishes this context)"
                )
            return pair

        def _start(self, opts: ContextOptions, pair: ContextPair) -> None:
            assert self.adapter is not None
            owners = {r: self.adapter for r in ROLES}
            if role is not None and self.peer is not None:
                owners[OTHER[role]] = self.peer
            self.ends = {
                r: _End(r, owners[r], getattr(pair, r), role is None or r == role) for r in ROLES
            }
            flags = pair.flags
            key = pair.exported_session_key
            if flags and key:
                self.shadow = ReferenceAdapter()
                for r, end in self.ends.items():
                    end.shadow = self.shadow.from_session_key(flags, key, client=r == "client")
            if flags:
                ess = bool(flags & F.EXTENDED_SESSIONSECURITY)
                self.datagram = bool(flags & F.DATAGRAM)
                self.integrity = bool(flags & (F.SIGN | F.SEAL))
                self.confidentiality = bool(flags & F.SEAL) and (ess or not self.datagram)
            else:
                ess = opts.ntlm_version != "v1"
                self.datagram = opts.datagram
                self.integrity = opts.integrity or opts.confidentiality
                self.confidentiality = opts.confidentiality and (ess or not self.datagram)
            # Without ESS "operations are performed in a half-duplex mode" (MS-NLMP §3.4): one
            # sequence number and RC4 state serve both directions.
            self.half_duplex = not ess
            self.ess = ess and bool(flags)  # known only from the negotiated flags
            names = "|".join(flag_names(flags)) or "unknown"
            mode = "shadow in the reference" if self.shadow else "round trips only (no key)"
            note(f"established {opts} {where}: flags {names}; {mode}")

        # -- calls --------------------------------------------------------------------------

        def _call(
            self,
            end: _End,
            op: str,
            desc: SecBufferDesc,
            seqno: int,
            what: str,
            *,
            accept: bool | None = None,
            status: int | None = None,
        ) -> CallResult | None:
            """Call ``op`` at ``end`` and, in the shadow, on a copy of the same input; check
            what needs no state. None when the adapter cannot express the call."""
            before = desc.copy()
            method = METHOD[op]
            try:
                result = _invoke(end.adapter, op, end.handle, desc, seqno)
            except CannotExpress as exc:
                event(f"{op}: not applicable")
                note(f"{what}: not applicable ({exc})")
                return None
            except Exception as exc:
                raise AdapterRaised(
                    f"{what}: {end.adapter.name}.{method} raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(result, CallResult):
                raise AdapterRaised(f"{what}: {method} returned {result!r}, not a CallResult")
            got = status_name(result.status)
            note(f"{what}: {got}" + (f" ({result.detail})" if result.detail else ""))
            who = _name(end.adapter)
            self._check_hygiene(op, before, desc, result.status, f"{what}: {who}")
            oracle = None
            if self.shadow is not None and end.shadow is not None:
                mirror = before.copy()
                oracle = _invoke(self.shadow, op, end.shadow, mirror, seqno)
                self._compare(f"{what}: {who}", result, desc, oracle, mirror)
            if status is not None and result.status != status:
                self._fail(f"{what}: {who}", f"returned {got}, expected {status_name(status)}")
            if accept is not None and (result.status == SecStatus.SEC_E_OK) != accept:
                said = f"; the reference returns {status_name(oracle.status)}" if oracle else ""
                wanted = "success" if accept else "a failure"
                self._fail(f"{what}: {who}", f"returned {got}, expected {wanted}{said}")
            return result

        def _compare(
            self,
            what: str,
            result: CallResult,
            desc: SecBufferDesc,
            oracle: CallResult,
            mirror: SecBufferDesc,
        ) -> None:
            got, want = status_name(result.status), status_name(oracle.status)
            agree = result.status == oracle.status
            if not strict_statuses:
                agree = (result.status == 0) == (oracle.status == 0)
            if not agree:
                self._fail(what, f"returned {got}, the reference returns {want}")
            if result.status != 0 or oracle.status != 0:
                return
            for index, (mine, theirs) in enumerate(
                zip(_contents(desc), _contents(mirror), strict=True)
            ):
                if mine != theirs:
                    self._fail(
                        what,
                        f"buffer {index} holds {_hex(mine)}, the reference's holds {_hex(theirs)}",
                    )

        def _check_hygiene(
            self, op: str, before: SecBufferDesc, after: SecBufferDesc, status: int, what: str
        ) -> None:
            """Read-only buffers are never written ("The package can read this buffer, but
            cannot modify it", SecBuffer page); a failed DecryptMessage releases nothing."""
            old, new = _contents(before), _contents(after)
            if len(old) != len(new):
                self._fail(what, f"the descriptor went from {len(old)} to {len(new)} buffers")
            for index, buf in enumerate(before.buffers or []):
                if _readonly(buf) and old[index] != new[index]:
                    self._fail(
                        what,
                        f"wrote into read-only buffer {index}: {_hex(old[index])} became "
                        f"{_hex(new[index])}",
                    )
            if op == "unseal" and status != 0 and old != new:
                changed = [i for i in range(len(old)) if old[i] != new[i]]
                self._fail(
                    what,
                    f"failed with {status_name(status)} but changed buffers {changed}: "
                    "unauthenticated plaintext released",
                )

        def _fail(self, what: str, text: str) -> None:
            """Raise the failure: ``what`` says the step and who answered."""
            raise ConformanceFailure(f"{what} {text}")

        # -- sending ------------------------------------------------------------------------

        def _send(self, op: str, by: str, message: SecBufferDesc, seqno: int) -> None:
            end, to = self.ends[by], OTHER[by]
            if not end.alive:
                return
            if self.half_duplex and self.pending[by]:
                return  # half-duplex: take what is in flight toward this end first
            desc = message.copy()
            plain = _data(desc)
            self.numbers += 1
            number = self.numbers
            what = f"#{number} {op} by the {by} (seqno {seqno})"
            result = self._call(end, op, desc, seqno, what, accept=True)
            if result is None or result.status != 0:
                return
            if self.shadow is None:
                self._check_sent(op, desc, plain, f"{what}: {_name(end.adapter)}")
            if self.ends[to].alive and to not in self.blocked:
                self.pending[to].append(_Message(number, op, desc.copy(), plain, seqno, by))

        def _check_sent(self, op: str, desc: SecBufferDesc, plain: list[bytes], what: str) -> None:
            """Without a shadow: the signature fills the TOKEN, DATA keeps its length, and
            MakeSignature leaves DATA alone."""
            token = desc.first(BufferType.TOKEN)
            if token is None or token.cb_buffer < SIGNATURE_SIZE:
                self._fail(what, "left no 16-byte signature in the TOKEN buffer")
            data = _data(desc)
            if [len(d) for d in data] != [len(p) for p in plain]:
                self._fail(what, "changed the length of a DATA buffer")
            if op == "sign" and data != plain:
                self._fail(what, "changed the DATA buffers it signed")

        @precondition(lambda self: self.integrity and Capability.SIGN in caps)
        @rule(by=ends, message=sign_messages, seqno=seqnos)
        def sign(self, by: str, message: SecBufferDesc, seqno: int) -> None:
            """MakeSignature at one end; the message goes in flight to the other."""
            self._send("sign", by, message, seqno)

        @precondition(lambda self: self.confidentiality and Capability.SEAL in caps)
        @rule(by=ends, message=seal_messages, seqno=seqnos)
        def seal(self, by: str, message: SecBufferDesc, seqno: int) -> None:
            """EncryptMessage at one end; the message goes in flight to the other."""
            self._send("seal", by, message, seqno)

        # -- receiving ----------------------------------------------------------------------

        def _receive(
            self,
            by: str,
            message: _Message,
            desc: SecBufferDesc,
            what: str,
            accept: bool | None,
            *,
            genuine: bool = True,
        ) -> bool | None:
            """Verify or unseal ``desc`` at ``by``: True/False for accepted/rejected, None
            when the adapter cannot express it. A ``genuine`` message accepted must give back
            the plaintext that was sent."""
            op = "verify" if message.op == "sign" else "unseal"
            result = self._call(self.ends[by], op, desc, message.seqno, what, accept=accept)
            if result is None:
                return None
            if result.status != 0:
                return False
            if genuine and _data(desc) != message.plain:
                got = ", ".join(_hex(d) for d in _data(desc))
                who = _name(self.ends[by].adapter)
                self._fail(f"{what}: {who}", f"accepted it but DATA holds {got}, not what was sent")
            return True

        def _deliverable(self, by: str) -> bool:
            return self.ends[by].alive and by not in self.blocked

        def _deliver(self, by: str) -> None:
            """VerifySignature / DecryptMessage at ``by`` of the next message in flight: it
            must succeed and give back what was sent."""
            queue = self.pending[by]
            if not queue or not self._deliverable(by):
                return
            message = queue[0]
            what = f"{message}: receive by the {by}"
            accepted = self._receive(by, message, message.sent.copy(), what, accept=True)
            if accepted is None:
                self.blocked.add(by)  # this end can never take it; stop sending its way
                queue.clear()
            elif accepted:
                self.delivered[by].append(queue.popleft())

        # One rule per end, so that a rule is only drawn when it has something to receive.
        @precondition(lambda self: bool(self.pending["client"]))
        @rule()
        def receive_at_client(self) -> None:
            """The client takes the next message from the server."""
            self._deliver("client")

        @precondition(lambda self: bool(self.pending["server"]))
        @rule()
        def receive_at_server(self) -> None:
            """The server takes the next message from the client."""
            self._deliver("server")

        def _verdict(self, mutation: BufferMutation, message: _Message) -> tuple[bool, bool]:
            """(judged, must be rejected) for a tamper with ``message``.

            Changed signed bytes must be rejected: a signed DATA buffer (MS-NLMP §3.4.4, the
            MAC covers the message), the signature's Version, checksum and SeqNum, a TOKEN cut
            below 16 bytes. Not judged, because the documents do not say: a TOKEN extended past
            its 16 bytes (the pages do not ask for exactly 16), and signature bytes 4-7 without
            ESS (the RandomPad, set to 0 by §3.4.4.1 but printed encrypted in §4.2.2.4).
            Changes to unsigned READONLY buffers are judged by the shadow only."""
            buffers = message.sent.buffers or []
            if isinstance(mutation, Extend):
                index = mutation.where(message.sent)
                if index is None or buffers[index].kind == BufferType.TOKEN:
                    return False, False
                signed = _signed(buffers[index])
                return signed or self.shadow is not None, signed
            spot = mutation.where(message.sent)
            if spot is None:
                return False, False
            buf = buffers[spot[0]]
            if buf.kind == BufferType.TOKEN:
                if isinstance(mutation, Truncate) or not 4 <= spot[1] < 8 or self.ess:
                    return True, True
                return False, False
            signed = _signed(buf)
            return signed or self.shadow is not None, signed

        @precondition(lambda self: any(self.pending[r] for r in targets))
        @rule(by=tested, mutation=tampers)
        def tamper(self, by: str, mutation: XorByte | Truncate | Extend) -> None:
            """Deliver a tampered copy of the next message: a change to signed bytes must be
            rejected, and a rejection must leave the genuine message deliverable."""
            queue = self.pending[by]
            if not queue or not self._deliverable(by):
                return
            message = queue[0]
            tampered = mutation.apply(message.sent)
            if _contents(tampered) == _contents(message.sent):
                return
            judged, rejected = self._verdict(mutation, message)
            if not judged:
                note(f"{message}: {mutation} not judged (the documents do not say)")
                return
            what = f"{message}: {mutation} then receive by the {by}"
            accepted = self._receive(
                by, message, tampered, what, False if rejected else None, genuine=False
            )
            if accepted:
                self.delivered[by].append(queue.popleft())  # it took the sequence number

        @precondition(lambda self: any(self.delivered[r] for r in targets))
        @rule(by=tested, mutation=mutations(kinds=("replay",)))
        def replay(self, by: str, mutation: Replay) -> None:
            """Deliver again a message already delivered: connection-oriented contexts must
            reject it (the sequence number has moved on, MS-NLMP §3.4.4)."""
            done = self.delivered[by]
            if not done or not self.ends[by].alive:
                return
            message = done[mutation.index % len(done)]
            desc = mutation.apply([m.sent for m in done])[-1]
            what = f"{message}: replayed to the {by}"
            self._receive(by, message, desc, what, None if self.datagram else False)

        @precondition(lambda self: any(len(self.pending[r]) >= 2 for r in targets))
        @rule(by=tested, mutation=mutations(kinds=("reorder",)))
        def reorder(self, by: str, mutation: Reorder) -> None:
            """Deliver a later message before the next one: rejected in connection-oriented
            mode, accepted in datagram mode (the application supplies the number)."""
            queue = self.pending[by]
            if len(queue) < 2 or not self._deliverable(by):
                return
            index = 1 + mutation.skip % (len(queue) - 1)
            message = queue[index]
            desc = mutation.apply([m.sent for m in queue])[0]
            what = f"{message}: delivered to the {by} before {queue[0]}"
            accepted = self._receive(by, message, desc, what, self.datagram)
            if accepted:
                del queue[index]
                self.delivered[by].append(message)

        # -- deletion -----------------------------------------------------------------------

        @precondition(lambda self: any(self.delivered.values()))
        @rule(by=tested)
        def delete_and_use(self, by: str) -> None:
            """DeleteSecurityContext, then a call on the deleted handle: SEC_E_INVALID_HANDLE
            ("The context handle specified by phContext is not valid")."""
            end = self.ends[by]
            if not end.alive:
                return
            what = f"delete the {by}'s context"
            self._call(end, "delete", SecBufferDesc(), 0, what, status=SecStatus.SEC_E_OK)
            end.alive = False
            self.pending[by].clear()
            probe = self._probe() if use_after_delete else None
            if probe is not None:
                op, desc = probe
                what = f"{op} with the {by}'s deleted handle"
                self._call(end, op, desc, 0, what, status=SecStatus.SEC_E_INVALID_HANDLE)
            self._restart()

        def _restart(self) -> None:
            """Close the remaining end and establish a fresh pair, so that the steps after a
            deletion still test something."""
            for end in self.ends.values():
                if end.alive:
                    end.alive = False
                    if end.tested:
                        what = f"delete the {end.role}'s context"
                        self._call(end, "delete", SecBufferDesc(), 0, what, status=0)
            assert self.options is not None
            self.shadow = None
            self.pending = {r: deque() for r in ROLES}
            self.delivered = {r: [] for r in ROLES}
            self.blocked = set()
            self._start(self.options, self._handshake(self.options))

        def _probe(self) -> tuple[str, SecBufferDesc] | None:
            """A call to make with a handle that must be refused, and its message."""
            for op, cap in (
                ("sign", Capability.SIGN),
                ("seal", Capability.SEAL),
                ("sizes", Capability.SIZES),
            ):
                if cap in caps:
                    desc = SecBufferDesc(
                        [SecBuffer.of(BufferType.DATA, b"x"), SecBuffer.of(BufferType.TOKEN, 16)]
                    )
                    return op, desc
            return None

        @precondition(lambda self: use_after_delete and bool(self.ends) and not self.forged)
        @rule(kind=st.sampled_from(["zero", "garbage"]))
        def forged_handle(self, kind: str) -> None:
            """A message call with a handle never issued (zeroed, garbage):
            SEC_E_INVALID_HANDLE. Once per example: the answer does not depend on state."""
            self.forged = True
            forged = Handle.ZERO if kind == "zero" else Handle.GARBAGE
            probe = self._probe()
            if probe is None:
                return
            op, desc = probe
            end = self.ends[targets[0]]
            fake = _End(end.role, end.adapter, forged, True, forged if self.shadow else None)
            what = f"{op} with handle ({forged.lower:#x}, {forged.upper:#x}), never issued"
            self._call(fake, op, desc, 0, what, status=SecStatus.SEC_E_INVALID_HANDLE)

        # -- sizes --------------------------------------------------------------------------

        @precondition(lambda self: Capability.SIZES in caps and bool(self.ends))
        @rule()
        def sizes(self) -> None:
            """QueryContextAttributes(SIZES) at the adapter's live ends: cbMaxSignature and
            cbSecurityTrailer as the reference's (16 each with integrity, else 0). A rule, not
            an invariant: the sizes of an NTLM context never change, and a rule shows in the
            failing sequence only where it ran."""
            for end in self.ends.values():
                if not (end.alive and end.tested):
                    continue
                what = f"QueryContextAttributes(SIZES) at the {end.role}: {_name(end.adapter)}"
                try:
                    result, sizes = end.adapter.query_sizes(end.handle)
                except CannotExpress:
                    continue
                except Exception as exc:
                    raise AdapterRaised(
                        f"{what}: query_sizes raised {type(exc).__name__}: {exc}"
                    ) from exc
                want = SIGNATURE_SIZE if self.integrity else 0
                if self.shadow is not None and end.shadow is not None:
                    _, ref = self.shadow.query_sizes(end.shadow)
                    want = ref.cbMaxSignature if ref else want
                if result.status != 0 or sizes is None:
                    self._fail(what, f"returned {status_name(result.status)}")
                    return
                got = (sizes.cbMaxSignature, sizes.cbSecurityTrailer)
                if got != (want, want):
                    self._fail(
                        what, f"reports cbMaxSignature, cbSecurityTrailer {got}, expected {want}"
                    )

        def teardown(self) -> None:
            """Delete what is left and close the adapters; cleanup is not judged."""
            with contextlib.suppress(Exception):
                for end in self.ends.values():
                    if end.alive and end.tested:
                        end.adapter.delete_context(end.handle)
            for adapter in (self.adapter, self.peer):
                if adapter is not None:
                    with contextlib.suppress(Exception):
                        adapter.close()

    Conformance.__name__ = Conformance.__qualname__ = f"{adapter_cls.__name__}Conformance"
    return Conformance


# -- running it -------------------------------------------------------------------------------


def _settings(settings: Settings | None, max_examples: int | None) -> Settings:
    """The user's settings (with ``max_examples`` applied), or ours: no deadline (adapters
    differ in speed), no explain phase, health checks that judge speed off."""
    if settings is not None:
        return Settings(settings, max_examples=max_examples) if max_examples else settings
    return Settings(
        max_examples=max_examples or DEFAULT_EXAMPLES,
        deadline=None,
        phases=[p for p in Phase if p is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _explained(exc: ConformanceError, header: str) -> ConformanceError:
    """The same kind of error, with the minimal failing sequence Hypothesis attached."""
    notes = [n for n in getattr(exc, "__notes__", []) if n]
    if "Explanation:" in notes:
        notes = notes[: notes.index("Explanation:")]
    steps = "\n".join(notes)
    text = f"{header}: {exc}"
    if steps:
        text += "\n\nMinimal failing sequence (Hypothesis notes, each call's status after it):\n"
        text += "\n".join("    " + line for line in steps.splitlines())
    return type(exc)(text, steps=steps)


def run_conformance_test(
    adapter_cls: type[Adapter],
    *,
    settings: Settings | None = None,
    max_examples: int | None = None,
    role: str | None = None,
    options: ContextOptions | st.SearchStrategy[ContextOptions] | None = None,
    strict_statuses: bool = False,
    peer_cls: type[Adapter] = ReferenceAdapter,
) -> None:
    """Run the conformance state machine against ``adapter_cls``; return if it conforms.

    Raises ConformanceFailure (the adapter disagreed with the reference or broke a rule),
    AdapterRaised (an exception escaped it) or Unsupported (it is not available here, cannot
    play ``role``, or can express no context) — all AssertionErrors — with the minimal
    failing sequence in the message and in ``.steps``. ``max_examples`` defaults to 100;
    ``settings`` are Hypothesis settings used as given. See ``conformance_machine`` for
    ``role``, ``options``, ``strict_statuses`` and ``peer_cls``.
    """
    _execute(
        adapter_cls,
        settings=settings,
        max_examples=max_examples,
        role=role,
        options=options,
        strict_statuses=strict_statuses,
        peer_cls=peer_cls,
        stats={},
    )


def _execute(
    adapter_cls: type[Adapter],
    *,
    settings: Settings | None,
    max_examples: int | None,
    role: str | None,
    options: ContextOptions | st.SearchStrategy[ContextOptions] | None,
    strict_statuses: bool,
    peer_cls: type[Adapter],
    stats: dict[str, int],
) -> None:
    """run_conformance_test, counting the examples run into ``stats["runs"]``."""
    name = adapter_cls.name or adapter_cls.__name__
    where = "alone" if role is None else f"as {role}"
    header = f"{name} ({where}) does not conform"
    availability = adapter_cls.available()
    if not availability.ok:
        raise Unsupported(f"{name} is not available here: {availability.reason}")
    needed = {"client": Capability.CLIENT, "server": Capability.SERVER}.get(role or "")
    if needed is not None and needed not in adapter_cls.capabilities:
        raise Unsupported(f"{name} cannot play the {role} (no Capability.{needed.name})")
    machine = conformance_machine(
        adapter_cls, peer_cls=peer_cls, role=role, options=options, strict_statuses=strict_statuses
    )
    try:
        run_state_machine_as_test(machine, settings=_settings(settings, max_examples))
    except (ConformanceError, BaseExceptionGroup) as exc:
        found = [e for e in _leaves(exc) if isinstance(e, ConformanceError)]
        if not found:
            raise
        first = _explained(found[0], header)
        if len(found) > 1:
            others = "\n\n".join(str(_explained(e, "also")) for e in found[1:])
            first = type(first)(f"{first}\n\n{others}", steps=first.steps)
        cause = found[0].__cause__ if isinstance(found[0], AdapterRaised) else None
        raise first from cause
    finally:
        stats["runs"] = int(getattr(machine, "runs", 0))


def property_phase(
    adapter_cls: type[Adapter],
    *,
    examples: int,
    role: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Run the conformance test as one results.jsonl record (``kind`` "properties").

    ``outcome`` is PASS, FAIL (a conformance failure), ERROR (an exception escaped the
    adapter, or Hypothesis itself failed) or UNSUPPORTED; ``message`` carries the failure and
    the minimal failing sequence; ``actual["examples_run"]`` counts the examples that ran,
    shrinking included.
    """
    stats: dict[str, int] = {}
    started = time.perf_counter()
    outcome, message, steps = "PASS", f"{examples} examples conform", ""
    try:
        _execute(
            adapter_cls,
            settings=settings,
            max_examples=examples,
            role=role,
            options=None,
            strict_statuses=False,
            peer_cls=ReferenceAdapter,
            stats=stats,
        )
    except ConformanceError as exc:
        outcome, message, steps = exc.outcome, str(exc), exc.steps
    except Exception as exc:  # Hypothesis errors (flaky, health check) and harness bugs
        outcome, message = "ERROR", f"{type(exc).__name__}: {exc}"
    return _property_record(
        adapter_cls,
        examples=examples,
        role=role,
        outcome=outcome,
        message=message,
        steps=steps,
        runs=stats.get("runs", 0),
        duration_s=time.perf_counter() - started,
    )


def _property_record(
    adapter_cls: type[Adapter],
    *,
    examples: int,
    role: str | None,
    outcome: str,
    message: str,
    steps: str,
    runs: int,
    duration_s: float,
) -> dict[str, Any]:
    """The results.jsonl record of a property phase, in-process or isolated alike."""
    label = role or "alone"
    name = adapter_cls.name or adapter_cls.__name__
    module, qualname = adapter_cls.__module__, adapter_cls.__qualname__
    call = f"run_conformance_test({qualname}, max_examples={examples}"
    call += f", role={role!r})" if role else ")"
    return {
        "case": f"properties[{label}]",
        "scenario": "properties",
        "variant": label,
        "adapter": name,
        "kind": "properties",
        "peer": "reference" if role else None,
        "role": role,
        "outcome": outcome,
        "message": message,
        "duration_s": round(duration_s, 6),
        "title": (
            "Conformance state machine (Hypothesis): sign, verify, seal, unseal, tamper, "
            "replay, reorder and delete, compared with the reference"
        ),
        "expected": {"outcome": "PASS", "examples": examples},
        "actual": {
            "outcome": outcome,
            "examples_run": runs,
            "failing_steps": steps,
        },
        "steps": [],
        "reproducer": (
            f"python -c 'from harness.conformance import run_conformance_test; "
            f"from {module} import {qualname}; {call}'"
        ),
    }


# -- the property phase in a child process ----------------------------------------------------
#
# Adapters the runner isolates (native code: native, gssapi) can crash or hang, so their
# property phase runs in ``python -m harness.conformance``. The child reports on its own stdout
# one line when an outermost adapter call starts ("call NAME") and ends ("done"), and the
# record at the end ("record JSON"); what the library prints goes to stderr. The parent turns
# a death into CRASH (the signal and the call), a call running past the per-call timeout into
# TIMEOUT, and otherwise keeps the child's record (FAIL with Hypothesis's falsifying steps).

IDLE_S = 60.0  # silence allowed outside adapter calls (start-up, Hypothesis's own work)
# The outermost adapter calls the child watches; a Party's ``step`` is watched too.
WATCHED_CALLS = (
    "__init__",
    "establish",
    "client",
    "server",
    "query_sizes",
    "make_signature",
    "verify_signature",
    "encrypt_message",
    "decrypt_message",
    "delete_context",
    "close",
)


class _Beats:
    """The child's side: a line when an outermost adapter call starts and when it ends
    (nested calls, such as ``establish`` driving ``client``, are inside the outer one)."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.depth = 0

    def send(self, line: str) -> None:
        self.channel.write(line.encode("utf-8") + b"\n")
        self.channel.flush()

    @contextlib.contextmanager
    def call(self, name: str) -> Any:
        self.depth += 1
        if self.depth == 1:
            self.send(f"call {name}")
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.send("done")


class _WatchedParty(Party):
    """A handshake party whose ``step`` is a watched call."""

    def __init__(self, party: Party, beats: _Beats, role: str) -> None:
        self._party, self._beats, self._role = party, beats, role

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        with self._beats.call(f"{self._role}.step"):
            return self._party.step(token)

    @property
    def handle(self) -> Handle:
        return self._party.handle

    @property
    def flags(self) -> int:
        return self._party.flags

    @property
    def exported_session_key(self) -> bytes | None:
        return self._party.exported_session_key

    @property
    def detail(self) -> str:
        return self._party.detail


def _watched(cls: type[Adapter], beats: _Beats) -> type[Adapter]:
    """``cls`` with every contract method reporting to ``beats``; same names, so that the
    record (name, reproducer) is the one of ``cls``."""

    def wrap(name: str) -> Any:
        method = getattr(cls, name)

        def call(self: Adapter, *args: Any, **kwargs: Any) -> Any:
            with beats.call(name):
                result = method(self, *args, **kwargs)
            return _WatchedParty(result, beats, name) if isinstance(result, Party) else result

        return call

    body: dict[str, Any] = {name: wrap(name) for name in WATCHED_CALLS if hasattr(cls, name)}
    body.update(__module__=cls.__module__, __qualname__=cls.__qualname__)
    return type(cls.__name__, (cls,), body)


def _property_child(argv: list[str]) -> int:
    """``python -m harness.conformance TARGET EXAMPLES [ROLE]``: the child's side."""
    import json
    import os

    from harness.adapters.registry import load_adapter

    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's prints must not reach the channel
    target, examples = argv[0], int(argv[1])
    role = argv[2] if len(argv) > 2 and argv[2] else None
    beats = _Beats(channel)
    record = property_phase(_watched(load_adapter(target), beats), examples=examples, role=role)
    beats.send("record " + json.dumps(record))
    return 0


def _watch(proc: Any, *, timeout_s: float, idle_s: float) -> tuple[str, str]:
    """Follow the child: ("record", JSON) when it reported; ("timeout", where) when a call ran
    past ``timeout_s`` or it was silent ``idle_s`` outside calls; ("died", where) when its
    output ended without a record."""
    import os
    import select

    fd = proc.stdout.fileno()
    pending, current, last = b"", "", "start-up"
    while True:
        limit = timeout_s if current else idle_s
        if not select.select([fd], [], [], limit)[0]:
            return "timeout", f"to {current}" if current else f"for {idle_s:g} s after {last}"
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return "died", f"during {current}" if current else f"after {last}"
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            kind, _, value = line.decode("utf-8", "replace").partition(" ")
            if kind == "record":
                return "record", value
            if kind == "call":
                current = last = value
            elif kind == "done":
                current = ""


def _last_words(stream: Any) -> str:
    """The end of the child's stderr on one line (an abort message, a traceback's last line)."""
    stream.seek(0)
    text = stream.read()[-2000:].decode("utf-8", "replace")
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[-240:]


def isolated_property_phase(
    target: str,
    *,
    examples: int,
    role: str | None = None,
    timeout_s: float = 5.0,
    idle_s: float = IDLE_S,
) -> dict[str, Any]:
    """``property_phase`` of the adapter ``target`` (a registry name or ``module:Class``) in a
    child process, so that a crash or a hang of native code is a CRASH or TIMEOUT record
    instead of the end of the harness. ``timeout_s`` bounds each adapter call."""
    import json
    import signal
    import subprocess
    import sys
    import tempfile

    from harness.adapters.registry import load_adapter

    adapter_cls = load_adapter(target)
    started = time.perf_counter()
    argv = [sys.executable, "-m", "harness.conformance", target, str(examples), role or ""]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        assert proc.stdout is not None
        channel = proc.stdout
        try:
            kind, value = _watch(proc, timeout_s=timeout_s, idle_s=idle_s)
            if kind == "timeout":
                proc.kill()
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:  # reported, then stuck on the way out
            proc.kill()
        finally:
            code = proc.wait()
            channel.close()
        said = _last_words(errors)
    if kind == "record":
        record: dict[str, Any] = json.loads(value)
        return record
    if kind == "timeout":
        outcome = "TIMEOUT"
        message = f"no answer within {timeout_s:g} s {value} in the property worker (killed)"
    elif code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
        outcome, message = "CRASH", f"property worker {how} {value}"
    else:
        outcome, message = "ERROR", f"property worker exited with status {code} {value}"
    if said and outcome != "TIMEOUT":
        message += f" (stderr: {said})"
    return _property_record(
        adapter_cls,
        examples=examples,
        role=role,
        outcome=outcome,
        message=message,
        steps="",
        runs=0,
        duration_s=time.perf_counter() - started,
    )


if __name__ == "__main__":
    import sys

    from harness.conformance import _property_child

    sys.exit(_property_child(sys.argv[1:]))
