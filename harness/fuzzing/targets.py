"""The fuzz targets: fuzzer bytes → adapter calls → checks.

Every target takes the adapter by registry name (or ``package.module:Class``) and runs one
input with ``Target.run(data)``, which returns a ``RunResult``: the finding the input produced
(if any), the (operation, status) features it reached, and how many operations ran. A target
never raises for a finding; the atheris entry point (``harness.fuzzing.child``) decides whether
a finding is recorded and fuzzing goes on (campaigns) or raised (OSS-Fuzz, reproducers).

The checks, for every call an input makes:
- a status comes back: an exception escaping the adapter is a finding (``exception``), and so
  is a Python exception the adapter caught and mapped to SEC_E_INTERNAL_ERROR
  (``internal-error``: it escaped the implementation);
- the process survives: with ``isolation="worker"`` the adapter lives in a worker subprocess and
  a crash or hang is a finding (``crash``, ``hang``) with the input; in-process, a crash kills
  the fuzzer, which writes the input as a libFuzzer ``crash-*`` artifact (the engine records it);
- VerifySignature / DecryptMessage never accept what the reference rejects with the same keys
  (``accepts-rejected``): the adapter's context is established against the reference, and a
  *mirror* of it (``ReferenceAdapter.from_session_key`` with the exported session key the
  reference side knows) receives every call the adapter receives;
- buffers marked SECBUFFER_READONLY / SECBUFFER_READONLY_WITH_CHECKSUM stay untouched
  (``wrote-readonly``);
- ``differential`` only: statuses (accept/reject, or the exact status with the ``status``
  profile) and, on success, every byte the caller sees agree with the mirror's
  (``differential``); ``handshake``: a server never completes on an AUTHENTICATE the reference
  server, primed with the same CHALLENGE, rejects.

Contexts are established once per (variant, role) and process and re-established after
DeleteSecurityContext, after a disagreement with the mirror (their states differ), after a
crash, or after ``max_calls`` calls. Messages to the adapter come from the reference peer
whose outgoing state is re-synchronised to what the receiver expects before every message,
so that a rejected message does not leave the rest of the conversation out of sequence.

Decoding never depends on the adapter: an operation the adapter cannot express (a missing
capability, or ``CannotExpress``) is skipped, so an input means the same thing for every
adapter and a regression vector can be replayed against any of them.
"""

from __future__ import annotations

import builtins
import os
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.adapters.base import (
    Adapter,
    AdapterError,
    CallResult,
    CannotExpress,
    Capability,
    ContextOptions,
    Handle,
    handshake,
)
from harness.adapters.reference import ReferenceAdapter
from harness.fuzzing.decode import FuzzSource, Source, blob, pick, rare
from harness.ntlm.crypto import RC4Stream
from harness.ntlm.handshake import Randomness
from harness.runner.worker import WorkerCrashed, WorkerFailure, WorkerTimeout
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import (
    SECBUFFER_READONLY,
    SECBUFFER_READONLY_WITH_CHECKSUM,
    SECQOP_WRAP_NO_ENCRYPT,
    BufferType,
    SecStatus,
    status_name,
)
from harness.strategies import ATTRIBUTES, KINDS, SIGNATURE_SIZE, Extend, Truncate, XorByte

OK = SecStatus.SEC_E_OK
CONTINUE = SecStatus.SEC_I_CONTINUE_NEEDED
UINT32_MAX = 0xFFFFFFFF
DEFAULT_MAX_CALLS = 1000

# Finding kinds, and the results.jsonl outcome a regression replay reports for each.
OUTCOME_OF_KIND = {
    "exception": "ERROR",
    "internal-error": "ERROR",
    "oracle-exception": "ERROR",
    "crash": "CRASH",
    "hang": "TIMEOUT",
    "accepts-rejected": "FAIL",
    "wrote-readonly": "FAIL",
    "differential": "FAIL",
    "property": "FAIL",
}


@dataclass(frozen=True)
class Finding:
    """What an input made an adapter do wrong. ``signature`` is what deduplication compares:
    kind, SSPI function, and the statuses, the exception type, the written buffer's type or
    the signal; never the input's bytes, nor where an exception was raised (a worker does not
    say), which ``message`` and ``detail`` carry."""

    kind: str
    signature: str
    message: str
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "signature": self.signature,
            "message": self.message,
            "detail": self.detail,
        }


@dataclass
class RunResult:
    finding: Finding | None = None
    features: set[tuple[str, ...]] = field(default_factory=set)
    ops: int = 0  # operations that reached the adapter
    skipped: int = 0  # operations the adapter cannot express


class _Stop(Exception):
    """Ends the current input with a finding."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class _Skip(Exception):
    """The adapter cannot express what the input asks; the operation is skipped."""


# -- the oracle's fixed randomness: a replay builds the same reference messages -------------

FIXED_RANDOMNESS = Randomness(
    client_challenge=lambda: bytes.fromhex("aaaaaaaaaaaaaaaa"),
    server_challenge=lambda: bytes.fromhex("0123456789abcdef"),
    session_key=lambda: bytes.fromhex("55555555555555555555555555555555"),
    now=lambda: bytes.fromhex("0090d336b734c301"),
)


@dataclass(frozen=True)
class Variant:
    """Context options an input can ask for, and the capabilities they need."""

    name: str
    options: ContextOptions
    needs: Capability


VARIANTS: tuple[Variant, ...] = (
    Variant("v2", ContextOptions(), Capability.NTLMV2),
    Variant("v1-ess", ContextOptions(ntlm_version="v1-ess"), Capability.NTLMV1),
    Variant("v1", ContextOptions(ntlm_version="v1"), Capability.NTLMV1_NO_ESS),
    Variant("v2-no-kex", ContextOptions(key_exchange=False), Capability.NTLMV2),
    Variant("v2-datagram", ContextOptions(datagram=True), Capability.NTLMV2 | Capability.DATAGRAM),
    Variant("v1-ess-56", ContextOptions(ntlm_version="v1-ess", key_bits=56), Capability.NTLMV1),
)
ROLES = ("server", "client")

# Buffer types a fuzzed descriptor can carry: those of sspi.h, then values no header defines.
TYPE_VALUES: tuple[int, ...] = tuple(int(k) for k in KINDS) + (11, 12, 17, 0x0FFFFFFF)
MUTATIONS = (
    "xor",
    "xor",
    "truncate",
    "extend",
    "retype",
    "reflag",
    "swap",
    "drop",
    "insert",
    "cb-lie",
    "null-data",
    "version",
    "count",
    "null-array",
    "seqno",
)


# -- descriptors ------------------------------------------------------------------------------


def _protected(desc: SecBufferDesc | None) -> dict[int, bytes | None]:
    """The contents of every buffer with a read-only attribute, by index."""
    if desc is None:
        return {}
    return {
        i: None if b.data is None else bytes(b.data)
        for i, b in enumerate(desc.buffers or [])
        if b.buffer_type & (SECBUFFER_READONLY | SECBUFFER_READONLY_WITH_CHECKSUM)
    }


def _visible(buf: SecBuffer) -> bytes:
    """What a C caller sees of a buffer: the first cbBuffer bytes."""
    return bytes(buf.data or b"")[: buf.cb_buffer]


def needs_of(desc: SecBufferDesc | None, op: str) -> Capability:
    """The capabilities an adapter needs for ``op`` on ``desc`` (as the catalogue's cases
    declare them): malformed descriptors need RAW_DESCRIPTORS, attributes on DATA the
    read-only capabilities, several DATA buffers MULTIPLE_DATA. Forged and deleted handles
    need nothing: an adapter without BAD_HANDLES answers them from its own handle table."""
    need = {
        "sign": Capability.SIGN,
        "verify": Capability.SIGN,
        "seal": Capability.SEAL,
        "unseal": Capability.SEAL,
        "sizes": Capability.SIZES,
    }.get(op, Capability.NONE)
    if op == "sizes":
        return need
    if desc is None or desc.buffers is None or desc.version != 0:
        return need | Capability.RAW_DESCRIPTORS
    if desc.declared_count is not None and desc.declared_count > len(desc.buffers):
        need |= Capability.RAW_DESCRIPTORS
    data = 0
    for buf in desc.buffers:
        real = 0 if buf.data is None else len(buf.data)
        if buf.data is None or buf.cb_buffer > real:
            need |= Capability.RAW_DESCRIPTORS
        if buf.kind != BufferType.DATA:
            continue
        data += 1
        if buf.flags and op in ("sign", "verify"):
            need |= Capability.SIGN_READONLY
        elif buf.flags & SECBUFFER_READONLY:
            need |= Capability.READONLY
        if buf.flags & SECBUFFER_READONLY_WITH_CHECKSUM and op in ("seal", "unseal"):
            need |= Capability.READONLY_WITH_CHECKSUM
    if data > 1:
        need |= Capability.MULTIPLE_DATA
    return need


def message(src: Source) -> SecBufferDesc:
    """What MakeSignature / EncryptMessage take: 1-3 DATA buffers (attributes allowed) and a
    TOKEN of at least cbMaxSignature bytes, first, last or in between."""
    buffers = []
    for _ in range(src.int(1, 3, "data-count")):
        flags = pick(src, ATTRIBUTES, "data-flags")
        buffers.append(SecBuffer(int(BufferType.DATA) | flags, bytearray(blob(src, 96, "data"))))
    token = SecBuffer.of(BufferType.TOKEN, SIGNATURE_SIZE + src.int(0, 16, "token-extra"))
    buffers.insert(src.int(0, len(buffers), "token-at") % (len(buffers) + 1), token)
    return SecBufferDesc(buffers)


def _length_lie(src: Source, real: int, label: str) -> int:
    choice = src.int(0, 5, label)
    return [0, max(real - 1, 0), real + 1, real + 16, UINT32_MAX, src.int(0, UINT32_MAX, label)][
        choice
    ]


def descriptor(src: Source) -> SecBufferDesc | None:
    """A SecBufferDesc decoded entirely from fuzzer bytes: buffer count, types, attribute bits,
    lengths, contents, ulVersion; rarely a NULL descriptor or pBuffers, NULL pvBuffer, a
    cbBuffer or cBuffers that lies."""
    if rare(src, "null-desc", 32):
        return None
    buffers: list[SecBuffer] = []
    for _ in range(src.int(0, 8, "buffers")):
        kind = pick(src, TYPE_VALUES, "type")
        flags = pick(src, ATTRIBUTES, "flags")
        size_class = src.int(0, 3, "size-class")
        if size_class == 3:  # a signature-sized buffer: a TOKEN that is nearly right
            data = bytearray(src.bytes(SIGNATURE_SIZE, "contents"))
        else:
            data = bytearray(blob(src, (32, 256, 4096)[size_class], "contents"))
        buf = SecBuffer(kind | flags, data)
        if rare(src, "null-data", 16):
            buf.data = None
            buf.declared_length = pick(src, (0, len(data), 16, UINT32_MAX), "null-cb")
        elif rare(src, "cb-lie", 16):
            buf.declared_length = _length_lie(src, len(data), "cb")
        buffers.append(buf)
    desc = SecBufferDesc(buffers)
    if rare(src, "version-lie", 16):
        desc.version = src.int(1, UINT32_MAX, "version")
    if rare(src, "count-lie", 16):
        desc.declared_count = _length_lie(src, len(buffers), "count")
    if rare(src, "null-array", 32):
        desc.buffers = None
    return desc


def mutate(src: Source, desc: SecBufferDesc | None, seqno: int) -> tuple[SecBufferDesc | None, int]:
    """Up to three structure-aware edits of a message in flight (returns a changed copy and
    the sequence number to deliver it with)."""
    out = None if desc is None else desc.copy()
    for _ in range(src.int(0, 3, "mutations")):
        kind = pick(src, MUTATIONS, "mutation")
        if out is None:
            break
        if kind == "seqno":
            seqno = src.int(0, UINT32_MAX, "seqno-value")
            continue
        if kind == "version":
            out.version = src.int(1, UINT32_MAX, "version")
            continue
        if kind == "null-array":
            out.buffers = None
            continue
        buffers = out.buffers
        if buffers is None:
            continue
        if kind == "count":
            out.declared_count = _length_lie(src, len(buffers), "count")
            continue
        at = src.int(0, 7, "at")
        if kind == "xor":
            offset = src.int(0, 0xFFFF, "offset")
            out = XorByte(at, offset, src.int(1, 255, "xor")).apply(out)
        elif kind == "truncate":
            out = Truncate(at, src.int(0, 0xFFFF, "keep")).apply(out)
        elif kind == "extend":
            out = Extend(at, src.bytes(src.int(1, 32, "extra-len"), "extra")).apply(out)
        elif kind == "insert":
            new = SecBuffer(pick(src, TYPE_VALUES, "type"), bytearray(blob(src, 32, "contents")))
            buffers.insert(at % (len(buffers) + 1), new)
        elif buffers:
            target = buffers[at % len(buffers)]
            if kind == "retype":
                target.buffer_type = target.flags | pick(src, TYPE_VALUES, "type")
            elif kind == "reflag":
                target.buffer_type = target.kind | pick(src, ATTRIBUTES, "flags")
            elif kind == "swap":
                other = src.int(0, 7, "with") % len(buffers)
                i = at % len(buffers)
                buffers[i], buffers[other] = buffers[other], buffers[i]
            elif kind == "drop":
                del buffers[at % len(buffers)]
            elif kind == "cb-lie":
                target.declared_length = _length_lie(src, len(target.data or b""), "cb")
            elif kind == "null-data":
                target.data = None
    return out, seqno


# -- findings from calls ----------------------------------------------------------------------

_OWN_FILES = (os.sep + os.path.join("harness", "fuzzing") + os.sep,)


def _where(exc: BaseException) -> str:
    """file:function:line of the frame that raised, outside the fuzzing package."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.endswith(("contextlib.py",))
    ]
    inner = [f for f in frames if not any(part in f.filename for part in _OWN_FILES)]
    chosen = inner or frames
    if not chosen:
        return "?"
    frame = chosen[-1]
    return f"{os.path.basename(frame.filename)}:{frame.name}:{frame.lineno}"


def _signal_of(text: str) -> str:
    match = re.search(r"killed by (\w+(?: \d+)?)|exited with status (-?\d+)", text)
    if not match:
        return "died"
    return match.group(1) or f"exit-{match.group(2)}"


def _escaped_python(detail: str) -> str | None:
    """The exception type named at the start of an adapter's detail, when it is one of
    Python's own (KeyError, ValueError, UnicodeDecodeError, struct.error…): an adapter that
    maps any exception of its implementation to SEC_E_INTERNAL_ERROR keeps "TypeName: text"
    as the detail. An implementation's own exception classes are deliberate errors."""
    name = detail.split(":", 1)[0].strip()
    if not re.fullmatch(r"[A-Za-z_][\w.]*", name):
        return None
    short = name.rsplit(".", 1)[-1]
    known = getattr(builtins, short, None)
    if isinstance(known, type) and issubclass(known, BaseException):
        return short
    if name in ("error", "struct.error"):  # struct.error: a parser read past the end
        return "struct.error"
    return None


def _kind_name(kind: int) -> str:
    try:
        return BufferType(kind).name
    except ValueError:
        return f"type-{kind}"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# -- the channel: an adapter context, its mirror and the reference sender --------------------


def _session(oracle: ReferenceAdapter, handle: Handle) -> Any:
    context = oracle.package.context((handle.lower, handle.upper))
    return None if context is None else context.established.session


def _state(session: Any) -> list[tuple[int, int]]:
    """Sequence numbers and RC4 positions of a reference session (incoming, outgoing)."""
    return [(d.sequence, d.handle.mark()) for d in (session.incoming, session.outgoing)]


def _restore(session: Any, state: list[tuple[int, int]]) -> None:
    for direction, (sequence, position) in zip(
        (session.incoming, session.outgoing), state, strict=True
    ):
        direction.sequence = sequence
        if direction.handle.mark() != position:
            direction.handle = RC4Stream(direction.sealing_key)
            if position:
                direction.handle.keystream(position)
            direction.handle.mark()


@dataclass
class Channel:
    """The adapter's context in ``role`` (``handle``), established against the reference;
    the reference's own end (``sender``, which sends to the adapter) and a ``mirror`` of the
    adapter's end built from the session key."""

    role: str
    variant: Variant
    handle: Handle
    sender: Handle
    mirror: Handle
    calls: int = 0
    usable: bool = True
    suspect: bool = False  # the mirror was rolled back after the adapter refused a message

    def resync(self, oracle: ReferenceAdapter) -> None:
        """Put the sender's outgoing state (sequence number, RC4 position) where the mirror's
        incoming state is: the next message is the one the receiver expects."""
        mirror, sender = _session(oracle, self.mirror), _session(oracle, self.sender)
        if mirror is None or sender is None:
            return
        src, dst = mirror.incoming, sender.outgoing
        dst.sequence = src.sequence
        position = src.handle.mark()
        if dst.handle.mark() != position:
            dst.handle = RC4Stream(dst.sealing_key)
            if position:
                dst.handle.keystream(position)
            dst.handle.mark()


# -- targets ----------------------------------------------------------------------------------


def resolve_isolation(adapter_cls: type[Adapter], isolation: str) -> str:
    """ "auto" → "worker" for adapters that declare ``isolate`` (native code), else "none"."""
    if isolation not in ("auto", "worker", "none"):
        raise ValueError(f"unknown isolation {isolation!r} (auto, worker, none)")
    if isolation == "auto":
        return "worker" if adapter_cls.isolate else "none"
    return isolation


class Target:
    """Base of the targets: the adapter, the oracle, channels, guarded calls."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(
        self,
        adapter: str,
        *,
        isolation: str = "auto",
        timeout_s: float = 5.0,
        profile: str = "accept-reject",
        max_calls: int = DEFAULT_MAX_CALLS,
    ) -> None:
        from harness.adapters.registry import load_adapter
        from harness.runner.worker import isolated

        if profile not in ("accept-reject", "status"):
            raise ValueError(f"unknown profile {profile!r} (accept-reject, status)")
        self.adapter_name = adapter
        cls = load_adapter(adapter)
        self.capabilities = cls.capabilities
        self.isolation = resolve_isolation(cls, isolation)
        self.timeout_s = timeout_s
        self.profile = profile
        self.max_calls = max_calls
        adapter_cls = isolated(adapter, timeout_s=timeout_s) if self.isolation == "worker" else cls
        self.adapter: Adapter = adapter_cls()
        self.oracle = ReferenceAdapter(randomness=FIXED_RANDOMNESS)
        self.channels: dict[tuple[str, str], Channel | None] = {}
        self._result = RunResult()

    # -- running one input --------------------------------------------------------------------

    def run(self, data: bytes) -> RunResult:
        """Run one input; never raises for a finding."""
        self._result = result = RunResult()
        try:
            self.program(FuzzSource(data))
        except _Stop as stop:
            result.finding = stop.finding
        return result

    def program(self, src: Source) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget every context: the next input starts from fresh ones (regression replay)."""
        for key in list(self.channels):
            self._drop(key)

    def close(self) -> None:
        self.reset()
        with suppress(Exception):
            self.adapter.close()

    # -- guarded calls --------------------------------------------------------------------------

    def feature(self, *parts: str) -> None:
        self._result.features.add(parts)

    @contextmanager
    def guard(self, what: str, *, oracle: bool = False) -> Iterator[None]:
        """Turn what escapes an adapter call into a finding; CannotExpress into a skip."""
        try:
            yield
        except (_Stop, _Skip):
            raise
        except CannotExpress as exc:
            raise _Skip(str(exc)) from None
        except WorkerCrashed as exc:
            self._lost()
            signal = _signal_of(str(exc))
            raise _Stop(
                Finding(
                    "crash",
                    f"crash:{signal}:{what}",
                    f"{what}: the adapter's process died ({signal})",
                    _one_line(str(exc), 2000),
                )
            ) from None
        except WorkerTimeout as exc:
            self._lost()
            raise _Stop(
                Finding(
                    "hang",
                    f"hang:{what}",
                    f"{what}: no answer within {self.timeout_s:g} s",
                    _one_line(str(exc), 2000),
                )
            ) from None
        except WorkerFailure:
            raise
        except Exception as exc:
            self._dirty()
            kind = "oracle-exception" if oracle else "exception"
            name = type(exc).__name__
            where = _where(exc)
            if isinstance(exc, AdapterError) and self.isolation == "worker":
                # raised in the worker: "TypeName: text"; no traceback travels
                name = _escaped_python(str(exc)) or name
                where = "worker"
            who = "the reference" if oracle else "the adapter"
            raise _Stop(
                Finding(
                    kind,
                    f"{kind}:{what}:{name}",
                    f"{what}: {name} escaped {who} ({where}): {_one_line(str(exc), 160)}",
                    "".join(traceback.format_exception(exc))[-4000:],
                )
            ) from None

    def check_status(self, what: str, result: CallResult) -> None:
        """A Python exception the adapter mapped to SEC_E_INTERNAL_ERROR is a finding."""
        if result.status != SecStatus.SEC_E_INTERNAL_ERROR:
            return
        name = _escaped_python(result.detail or "")
        if name is None:
            return
        self._dirty()
        raise _Stop(
            Finding(
                "internal-error",
                f"internal-error:{what}:{name}",
                f"{what}: {name} escaped the implementation (the adapter returned "
                f"SEC_E_INTERNAL_ERROR): {_one_line(result.detail, 160)}",
                result.detail,
            )
        )

    def call(
        self,
        op: str,
        adapter: Adapter,
        handle: Handle,
        desc: SecBufferDesc | None,
        seqno: int,
        qop: int = 0,
        *,
        oracle: bool = False,
    ) -> CallResult:
        """One message function, guarded; read-only buffers are checked afterwards."""
        fn = _FUNCTIONS[op]
        before = _protected(desc)
        method = getattr(adapter, _METHODS[op])
        with self.guard(fn, oracle=oracle):
            if op in ("sign", "seal"):
                result = method(handle, qop, desc, seqno)
            else:
                result = method(handle, desc, seqno)
        if oracle:  # only the adapter is judged here; the mirror only gives the oracle's view
            return result
        self.check_status(fn, result)
        after = _protected(desc)
        for index, content in before.items():
            if after.get(index) != content:
                self._dirty()
                who = "the reference" if oracle else "the adapter"
                assert desc is not None and desc.buffers is not None
                kind = _kind_name(desc.buffers[index].kind)
                raise _Stop(
                    Finding(
                        "wrote-readonly",
                        f"wrote-readonly:{fn}:{'oracle' if oracle else 'adapter'}:{kind}",
                        f"{fn}: {who} wrote into read-only {kind} buffer {index} "
                        f"(status {status_name(result.status)})",
                        f"before {content.hex() if content else content}, after "
                        f"{(after.get(index) or b'').hex()}",
                    )
                )
        return result

    # -- channels ----------------------------------------------------------------------------

    def _role(self, preferred: str) -> str | None:
        can = {
            "server": Capability.SERVER in self.capabilities,
            "client": Capability.CLIENT in self.capabilities,
        }
        if can.get(preferred):
            return preferred
        other = "client" if preferred == "server" else "server"
        return other if can[other] else None

    def channel(self, src: Source) -> Channel:
        """The channel the input asks for (its first two choices: variant and role)."""
        variant = pick(src, VARIANTS, "variant")
        role = self._role(pick(src, ROLES, "role"))
        if role is None or variant.needs & ~self.capabilities:
            self._result.skipped += 1
            raise _Skip(f"{self.adapter_name} cannot play {variant.name}")
        key = (variant.name, role)
        current = self.channels.get(key)
        if current is not None and (not current.usable or current.calls >= self.max_calls):
            self._drop(key)
            current = None
        if key in self.channels and current is None:
            raise _Skip(f"{variant.name} as {role} cannot be established")
        if current is None:
            current = self._establish(variant, role)
            self.channels[key] = current
            if current is None:
                raise _Skip(f"{variant.name} as {role} cannot be established")
        self._current = current
        return current

    def _establish(self, variant: Variant, role: str) -> Channel | None:
        options = variant.options
        oracle = self.oracle
        try:
            with self.guard("establish"):
                if role == "server":
                    pair = handshake(oracle.client(options), self.adapter.server(options))
                else:
                    pair = handshake(self.adapter.client(options), oracle.server(options))
        except _Skip:
            self.feature("establish", variant.name, role, "cannot-express")
            return None
        if isinstance(pair, CallResult):
            self.feature("establish", variant.name, role, status_name(pair.status))
            return None
        if pair.exported_session_key is None:
            return None
        handle, sender = (
            (pair.server, pair.client) if role == "server" else (pair.client, pair.server)
        )
        mirror = oracle.from_session_key(
            pair.flags, pair.exported_session_key, client=role == "client"
        )
        return Channel(role, variant, handle, sender, mirror)

    def _drop(self, key: tuple[str, str]) -> None:
        channel = self.channels.pop(key, None)
        if channel is None:
            return
        if channel.usable:
            with suppress(Exception):
                self.adapter.delete_context(channel.handle)
        for handle in (channel.sender, channel.mirror):
            self.oracle.delete_context(handle)
        # the reference keeps deleted handles to answer SEC_E_OK twice; forget them here
        deleted = getattr(self.oracle.package, "_deleted", None)
        if isinstance(deleted, set):
            deleted.discard((channel.sender.lower, channel.sender.upper))
            deleted.discard((channel.mirror.lower, channel.mirror.upper))

    def _dirty(self) -> None:
        """The adapter's context and its mirror may now differ: re-establish next input."""
        current = getattr(self, "_current", None)
        if current is not None:
            current.calls = self.max_calls

    def _lost(self) -> None:
        """The worker died: every handle in it is gone."""
        for channel in self.channels.values():
            if channel is not None:
                channel.usable = False

    # -- sending and receiving -----------------------------------------------------------------

    def send(
        self, ch: Channel, op: str, desc: SecBufferDesc, seqno: int, *, resync: bool = True
    ) -> bool:
        """The reference sender signs (``verify``) or seals (``unseal``) ``desc`` in place."""
        if resync:
            ch.resync(self.oracle)
        fn = self.oracle.make_signature if op == "verify" else self.oracle.encrypt_message
        with self.guard(_FUNCTIONS["sign" if op == "verify" else "seal"], oracle=True):
            status = fn(ch.sender, 0, desc, seqno).status
        return status == OK

    def both(
        self,
        ch: Channel,
        op: str,
        desc: SecBufferDesc | None,
        seqno: int,
        qop: int = 0,
        handle_kind: str = "valid",
    ) -> tuple[CallResult, CallResult, SecBufferDesc | None]:
        """The same call to the adapter (on ``desc``) and to the mirror (on a copy, returned
        with its output); raises _Skip when the adapter cannot express it."""
        need = needs_of(desc, op)
        if need & ~self.capabilities:
            self._result.skipped += 1
            self.feature(op, "needs", str(need & ~self.capabilities))
            raise _Skip(f"needs {need & ~self.capabilities}")
        pristine = None if desc is None else desc.copy()
        handle, mirror = self._handles(ch, handle_kind)
        ch.calls += 1
        try:
            mine = self.call(op, self.adapter, handle, desc, seqno, qop)
        except _Skip:
            self._result.skipped += 1
            self.feature(op, "cannot-express")
            raise
        self._result.ops += 1
        session = _session(self.oracle, mirror)
        saved = None if session is None else _state(session)
        theirs = self.call(op, self.oracle, mirror, pristine, seqno, qop, oracle=True)
        self.feature(op, handle_kind, status_name(mine.status), status_name(theirs.status))
        if mine.status == OK and theirs.status != OK:
            self._dirty()  # the adapter moved on, the mirror did not
        elif mine.status != OK and theirs.status == OK:
            # A correct adapter that refuses a message keeps its state, so the mirror goes
            # back to where it was before the call, and the channel lives on; a second
            # disagreement in a row means the states differ after all: re-establish.
            if saved is not None and session is not None and not ch.suspect:
                _restore(session, saved)
                ch.suspect = True
            else:
                self._dirty()
        else:
            ch.suspect = False
        return mine, theirs, pristine

    def deliver(
        self,
        ch: Channel,
        op: str,
        desc: SecBufferDesc | None,
        seqno: int,
        handle_kind: str = "valid",
    ) -> tuple[CallResult, CallResult, SecBufferDesc | None]:
        """``desc`` to the adapter and to the mirror; accepts-rejected is checked."""
        mine, theirs, mirrored = self.both(ch, op, desc, seqno, 0, handle_kind)
        if mine.status == OK and theirs.status != OK:
            fn = _FUNCTIONS[op]
            raise _Stop(
                Finding(
                    "accepts-rejected",
                    f"accepts-rejected:{fn}:{status_name(theirs.status)}",
                    f"{fn} returned SEC_E_OK where the reference returns "
                    f"{status_name(theirs.status)}",
                    _one_line(mine.detail),
                )
            )
        return mine, theirs, mirrored

    def _handles(self, ch: Channel, handle_kind: str) -> tuple[Handle, Handle]:
        if handle_kind == "zero":
            return Handle.ZERO, Handle.ZERO
        if handle_kind == "garbage":
            return Handle.GARBAGE, Handle.GARBAGE
        return ch.handle, ch.mirror

    def delete(self, ch: Channel) -> None:
        """DeleteSecurityContext on the adapter's end (and the mirror): the channel is spent."""
        ch.usable = False
        self._dirty()
        with self.guard("DeleteSecurityContext"):
            result = self.adapter.delete_context(ch.handle)
        self.check_status("DeleteSecurityContext", result)
        self.feature("delete", status_name(result.status))
        self.oracle.delete_context(ch.mirror)


_METHODS = {
    "sign": "make_signature",
    "verify": "verify_signature",
    "seal": "encrypt_message",
    "unseal": "decrypt_message",
}
_FUNCTIONS = {
    "sign": "MakeSignature",
    "verify": "VerifySignature",
    "seal": "EncryptMessage",
    "unseal": "DecryptMessage",
}


class _ReceiveTarget(Target):
    """verify and decrypt: messages from the reference, mutated, replayed, reordered, raw."""

    op: ClassVar[str] = "verify"
    OPS: ClassVar[tuple[str, ...]] = ("fresh", "fresh", "fresh", "replay", "reorder", "raw")

    def program(self, src: Source) -> None:
        try:
            ch = self.channel(src)
        except _Skip:
            return
        history: list[tuple[SecBufferDesc, int]] = []
        desc: SecBufferDesc | None
        for _ in range(src.int(1, 4, "ops")):
            action = pick(src, self.OPS, "op")
            if action == "replay" and history:
                desc, seqno = history[src.int(0, 7, "which") % len(history)]
                desc, seqno = mutate(src, desc, seqno)
            elif action == "raw":
                desc, seqno = descriptor(src), src.int(0, 3, "seqno")
            else:
                seqno = src.int(0, 3, "seqno")
                desc = message(src)
                if not self.send(ch, self.op, desc, seqno):
                    continue
                if action == "reorder":  # deliver a later message first
                    history.append((desc.copy(), seqno))
                    desc = message(src)
                    if not self.send(ch, self.op, desc, seqno + 1, resync=False):
                        continue
                    seqno += 1
                history.append((desc.copy(), seqno))
                desc, seqno = mutate(src, desc, seqno)
            self._try(ch, desc, seqno)
        if rare(src, "delete", 16):
            # DeleteSecurityContext, then a message to the deleted handle, which must be
            # refused (the mirror's handle is deleted too). The channel is re-established.
            self.delete(ch)
            desc = message(src)
            if self.send(ch, self.op, desc, 0):
                self._try(ch, desc, 0)

    def _try(self, ch: Channel, desc: SecBufferDesc | None, seqno: int) -> None:
        with suppress(_Skip):
            self.deliver(ch, self.op, desc, seqno)


class VerifyTarget(_ReceiveTarget):
    name = "verify"
    description = (
        "VerifySignature on messages the reference signed, then mutated, replayed, reordered or "
        "replaced by raw descriptors; never accept what the reference mirror rejects"
    )
    op = "verify"


class DecryptTarget(_ReceiveTarget):
    name = "decrypt"
    description = (
        "DecryptMessage on messages the reference sealed, then mutated, replayed, reordered or "
        "replaced by raw descriptors; never accept what the reference mirror rejects"
    )
    op = "unseal"


class DescriptorTarget(Target):
    """Every message function on descriptors decoded entirely from the input."""

    name = "descriptor"
    description = (
        "MakeSignature, VerifySignature, EncryptMessage and DecryptMessage on SecBufferDesc "
        "decoded from fuzzer bytes (count, types, flags, lengths, contents, ulVersion, NULL "
        "pointers, lying lengths), with valid, zeroed, garbage and deleted handles"
    )
    HANDLES = ("valid",) * 13 + ("zero", "garbage", "deleted")
    QOPS = (0, 0, 0, SECQOP_WRAP_NO_ENCRYPT, 1)

    def program(self, src: Source) -> None:
        try:
            ch = self.channel(src)
        except _Skip:
            return
        for _ in range(src.int(1, 3, "ops")):
            op = pick(src, ("sign", "verify", "seal", "unseal"), "function")
            handle_kind = pick(src, self.HANDLES, "handle")
            desc = descriptor(src)
            qop = pick(src, self.QOPS, "qop")
            seqno = src.int(0, 3, "seqno")
            if handle_kind == "deleted":
                self.delete(ch)
                handle_kind = "valid"  # the channel's handles, now deleted on both sides
            with suppress(_Skip):
                if op in ("verify", "unseal"):
                    self.deliver(ch, op, desc, seqno, handle_kind)
                else:
                    self.both(ch, op, desc, seqno, qop, handle_kind)
            if not ch.usable:
                return


class DifferentialTarget(DescriptorTarget):
    """The same calls to the adapter and to the reference mirror: they must agree."""

    name = "differential"
    description = (
        "the same MakeSignature / VerifySignature / EncryptMessage / DecryptMessage / "
        "QueryContextAttributes(SIZES) calls to the adapter and to the reference mirror: "
        "accept/reject (or the exact status, profile 'status') and, on success, every byte "
        "must agree"
    )

    def program(self, src: Source) -> None:
        try:
            ch = self.channel(src)
        except _Skip:
            return
        for _ in range(src.int(1, 4, "ops")):
            op = pick(src, ("sign", "seal", "verify", "unseal", "sizes"), "function")
            if op == "sizes":
                self._sizes(ch)
                continue
            seqno = src.int(0, 3, "seqno")
            plain = message(src)
            desc: SecBufferDesc | None
            if op in ("sign", "seal"):
                desc, seqno = mutate(src, plain, seqno)
                qop = pick(src, self.QOPS, "qop") if op == "seal" else 0
                with suppress(_Skip):
                    mine, theirs, mirrored = self.both(ch, op, desc, seqno, qop)
                    self._compare(op, mine, theirs, desc, mirrored)
                continue
            if not self.send(ch, op, plain, seqno):
                continue
            desc, seqno = mutate(src, plain, seqno)
            with suppress(_Skip):
                mine, theirs, mirrored = self.deliver(ch, op, desc, seqno)
                self._compare(op, mine, theirs, desc, mirrored)

    def _agree(self, mine: int, theirs: int) -> bool:
        if self.profile == "status":
            return mine == theirs
        return (mine == OK) == (theirs == OK)

    def _compare(
        self,
        op: str,
        mine: CallResult,
        theirs: CallResult,
        desc: SecBufferDesc | None,
        reference: SecBufferDesc | None,
    ) -> None:
        fn = _FUNCTIONS[op]
        if not self._agree(mine.status, theirs.status):
            self._dirty()
            raise _Stop(
                Finding(
                    "differential",
                    f"differential:{fn}:{status_name(mine.status)}:{status_name(theirs.status)}",
                    f"{fn}: the adapter returned {status_name(mine.status)}, the reference "
                    f"{status_name(theirs.status)}",
                    _one_line(mine.detail),
                )
            )
        if mine.status != OK or desc is None or reference is None:
            return
        for index, (ours, ref) in enumerate(
            zip(desc.buffers or [], reference.buffers or [], strict=False)
        ):
            if _visible(ours) != _visible(ref):
                self._dirty()
                raise _Stop(
                    Finding(
                        "differential",
                        f"differential:{fn}:bytes:{_kind_name(ref.kind)}",
                        f"{fn}: buffer {index} differs from the reference's on success",
                        f"adapter {_visible(ours).hex()} reference {_visible(ref).hex()}",
                    )
                )

    def _sizes(self, ch: Channel) -> None:
        if Capability.SIZES not in self.capabilities:
            self._result.skipped += 1
            return
        try:
            with self.guard("QueryContextAttributes"):
                mine, sizes = self.adapter.query_sizes(ch.handle)
        except _Skip:
            self._result.skipped += 1
            return
        self._result.ops += 1
        theirs, ref_sizes = self.oracle.query_sizes(ch.mirror)
        self.feature("sizes", status_name(mine.status))
        if not self._agree(mine.status, theirs.status):
            raise _Stop(
                Finding(
                    "differential",
                    f"differential:QueryContextAttributes:{status_name(mine.status)}",
                    f"QueryContextAttributes(SIZES) returned {status_name(mine.status)}, the "
                    f"reference {status_name(theirs.status)}",
                )
            )
        if mine.status == OK and sizes is not None and ref_sizes is not None:
            got = (sizes.cbMaxSignature, sizes.cbSecurityTrailer)
            want = (ref_sizes.cbMaxSignature, ref_sizes.cbSecurityTrailer)
            if got != want:
                raise _Stop(
                    Finding(
                        "differential",
                        "differential:QueryContextAttributes:sizes",
                        f"QueryContextAttributes(SIZES): cbMaxSignature, cbSecurityTrailer "
                        f"{got}, the reference {want}",
                    )
                )


class HandshakeTarget(Target):
    """NEGOTIATE / CHALLENGE / AUTHENTICATE mutated field by field (scapy's NTLM classes)."""

    name = "handshake"
    description = (
        "the adapter as server (mutated NEGOTIATE and AUTHENTICATE) and as client (mutated "
        "CHALLENGE), tokens edited field by field with scapy's NTLM packet classes; a server "
        "must not complete on an AUTHENTICATE the reference rejects"
    )

    def program(self, src: Source) -> None:
        from harness.fuzzing import tokens

        variant = pick(src, VARIANTS, "variant")
        role = self._role(pick(src, ROLES, "role"))
        if role is None or variant.needs & ~self.capabilities:
            self._result.skipped += 1
            return
        options = variant.options
        try:
            if role == "server":
                self._as_server(src, options, tokens)
            else:
                self._as_client(src, options, tokens)
        except _Skip:
            self._result.skipped += 1

    def _step(self, party: Any, token: bytes | None, what: str) -> tuple[int, bytes]:
        with self.guard(what):
            status, out = party.step(token)
        self.check_status(what, CallResult(status, detail=party_detail(party, status)))
        self._result.ops += 1
        return status, out

    def _finish(self, party: Any, status: int) -> None:
        if status != OK:
            return
        with suppress(Exception):
            self.adapter.delete_context(party.handle)

    def _as_server(self, src: Source, options: ContextOptions, tokens: Any) -> None:
        from harness.ntlm.handshake import HandshakeError, NtlmServer
        from harness.ntlm.messages import MessageError

        client = _reference_client(options)
        negotiate = tokens.mutate_token(src, client.negotiate(), "negotiate")
        with self.guard("AcceptSecurityContext"):
            server = self.adapter.server(options)
        status, challenge = self._step(server, negotiate, "AcceptSecurityContext(NEGOTIATE)")
        self.feature("server", "negotiate", status_name(status))
        if status != CONTINUE or not challenge:
            self._finish(server, status)
            return
        mirror = NtlmServer(
            {(options.user, options.domain): options.password}, randomness=FIXED_RANDOMNESS
        )
        try:
            mirror.prime(challenge, negotiate)
            authenticate = client.authenticate(challenge)
        except (MessageError, HandshakeError, ValueError) as exc:
            self.feature("server", "reference-rejects-challenge", type(exc).__name__)
            return
        authenticate = tokens.mutate_token(src, authenticate, "authenticate")
        status, _ = self._step(server, authenticate, "AcceptSecurityContext(AUTHENTICATE)")
        try:
            mirror.accept(authenticate)
            reason = ""
        except (MessageError, HandshakeError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - the reference is an implementation too
            raise _Stop(
                Finding(
                    "oracle-exception",
                    f"oracle-exception:accept:{type(exc).__name__}",
                    f"the reference server raised {type(exc).__name__}: {_one_line(str(exc))}",
                    "".join(traceback.format_exception(exc))[-4000:],
                )
            ) from None
        self.feature("server", "authenticate", status_name(status), "reject" if reason else "ok")
        self._finish(server, status)
        if status == OK and reason:
            raise _Stop(
                Finding(
                    "accepts-rejected",
                    "accepts-rejected:AcceptSecurityContext:"
                    + reason.split(":")[0]
                    + ":"
                    + _reason_key(reason),
                    f"AcceptSecurityContext completed on an AUTHENTICATE the reference server "
                    f"rejects ({_one_line(reason, 120)})",
                    reason,
                )
            )

    def _as_client(self, src: Source, options: ContextOptions, tokens: Any) -> None:
        from harness.ntlm.handshake import HandshakeError, NtlmServer
        from harness.ntlm.messages import MessageError

        with self.guard("InitializeSecurityContext"):
            party = self.adapter.client(options)
        status, negotiate = self._step(party, None, "InitializeSecurityContext(first)")
        if status != CONTINUE or not negotiate:
            self.feature("client", "negotiate", status_name(status))
            return
        server = NtlmServer(
            {(options.user, options.domain): options.password}, randomness=FIXED_RANDOMNESS
        )
        try:
            challenge = server.challenge(negotiate)
        except (MessageError, HandshakeError, ValueError) as exc:
            self.feature("client", "reference-rejects-negotiate", type(exc).__name__)
            return
        challenge = tokens.mutate_token(src, challenge, "challenge")
        status, authenticate = self._step(party, challenge, "InitializeSecurityContext(CHALLENGE)")
        self.feature("client", "challenge", status_name(status))
        self._finish(party, status)


def _reason_key(reason: str) -> str:
    """The stable part of a reference rejection reason (no names or numbers)."""
    text = reason.split(":", 1)[-1]
    return re.sub(r"[^a-z]+", "-", re.sub(r"\b\w*\d\w*\b|\\\S+", "", text.lower())).strip("-")[:40]


def party_detail(party: Any, status: int) -> str:
    if status in (OK, CONTINUE):
        return ""
    with suppress(Exception):
        return str(party.detail)
    return ""


def _reference_client(options: ContextOptions) -> Any:
    from harness.adapters.reference import requested_flags
    from harness.ntlm.handshake import Credentials, NtlmClient

    return NtlmClient(
        Credentials(options.user, options.domain, options.password),
        requested_flags(options),
        ntlm_v2=options.ntlm_version == "v2",
        randomness=FIXED_RANDOMNESS,
    )


class PropertiesTarget(Target):
    """The Hypothesis sign/seal round-trip property, driven by fuzzer bytes (fuzz_one_input)."""

    name = "properties"
    description = (
        "the sign/verify and seal/unseal round-trip property (harness.fuzzing.properties, "
        "Hypothesis strategies) through Hypothesis' fuzz_one_input"
    )

    def __init__(self, adapter: str, *, database: Any = None, **kwargs: Any) -> None:
        super().__init__(adapter, **kwargs)
        from harness.fuzzing.properties import roundtrip_property

        self.test = roundtrip_property(self.adapter_name, adapter=self.adapter, database=database)

    def run(self, data: bytes) -> RunResult:
        self._result = result = RunResult()
        try:
            with self.guard("property"):
                try:
                    drawn = self.test.hypothesis.fuzz_one_input(data)
                except (WorkerFailure, AdapterError, _Stop, _Skip):
                    raise
                except AssertionError as exc:
                    first = str(exc).splitlines()[0] if str(exc) else "assertion failed"
                    key = re.sub(r"[0-9a-f]{8,}|\d+", "#", first)[:80]
                    raise _Stop(
                        Finding(
                            "property",
                            f"property:{key}",
                            f"round-trip property failed: {_one_line(first, 200)}",
                            "".join(traceback.format_exception(exc))[-4000:],
                        )
                    ) from None
            result.ops = 1 if drawn is not None else 0
            result.features.add(("property", "valid" if drawn is not None else "invalid"))
        except _Skip:
            result.skipped += 1
        except _Stop as stop:
            result.finding = stop.finding
            result.ops = 1 if stop.finding.kind == "property" else 0
            self._forget()
        return result

    def reset(self) -> None:
        super().reset()
        self._forget()

    def _forget(self) -> None:
        from harness.fuzzing import properties

        properties.forget(self.adapter)


TARGETS: dict[str, type[Target]] = {
    cls.name: cls
    for cls in (
        VerifyTarget,
        DecryptTarget,
        DescriptorTarget,
        HandshakeTarget,
        DifferentialTarget,
        PropertiesTarget,
    )
}


def make_target(name: str, adapter: str, **kwargs: Any) -> Target:
    """A target by name, for an adapter by registry name (ValueError for unknown targets)."""
    try:
        cls = TARGETS[name]
    except KeyError:
        raise ValueError(f"unknown target {name!r} (known: {', '.join(TARGETS)})") from None
    return cls(adapter, **kwargs)
