"""Execute one case against one adapter and judge it against the chosen profile.

Besides the expectations written in the case, one invariant holds for every call: a package
must never write into a buffer marked SECBUFFER_READONLY or SECBUFFER_READONLY_WITH_CHECKSUM
("The package can read this buffer, but cannot modify it", SecBuffer reference page).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.adapters.base import Adapter, CallResult, CannotExpress, Handle, handshake
from harness.adapters.reference import ReferenceAdapter
from harness.runner.worker import WorkerCrashed, WorkerFailure
from harness.scenarios.loader import BUFFER_FLAGS
from harness.scenarios.model import PROFILES, BufferSpec, Case, Step
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import SECBUFFER_ATTRMASK, BufferType, status_name


@dataclass
class StepRecord:
    step: str
    status: str
    expected: str | None
    ok: bool
    detail: str = ""
    evidence: dict[str, str] = field(default_factory=dict)  # profile -> where it comes from

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "step": self.step,
            "status": self.status,
            "expected": self.expected,
            "ok": self.ok,
            "detail": self.detail,
        }
        if self.evidence:
            data["evidence"] = self.evidence
        return data


@dataclass
class CaseOutcome:
    outcome: str  # PASS | NON_STRICT | FAIL | ERROR
    steps: list[StepRecord] = field(default_factory=list)
    message: str = ""
    expected: dict[str, Any] = field(default_factory=dict)
    actual: dict[str, Any] = field(default_factory=dict)
    handshake: list[dict[str, str]] = field(default_factory=list)  # tokens, for pcaps


class StepFailed(Exception):
    pass


def _build_buffer(spec: BufferSpec, position: int, saved: dict[str, SecBufferDesc]) -> SecBuffer:
    if spec.source is not None:
        if spec.source not in saved:
            raise KeyError(f"no saved message named {spec.source!r}")
        origin = saved[spec.source].buffers or []
        index = position if spec.index is None else spec.index
        data = bytearray(origin[index].data or b"")
    elif spec.text is not None:
        data = bytearray(spec.text.encode())
    elif spec.hex is not None:
        data = bytearray.fromhex(spec.hex)
    else:
        data = bytearray(spec.size or 0)
    if spec.truncate is not None:
        del data[spec.truncate :]
    if spec.xor is not None:
        offset, value = spec.xor
        data[offset] ^= value
    if spec.append is not None:
        data += bytes.fromhex(spec.append)
    flags = 0
    for name in spec.flags:
        flags |= BUFFER_FLAGS[name]
    return SecBuffer(int(BufferType[spec.type]) | flags, None if spec.null else data, spec.cb)


def build_descriptor(step: Step, saved: dict[str, SecBufferDesc]) -> SecBufferDesc:
    """The SecBufferDesc a step describes, with its deliberate defects."""
    buffers = [_build_buffer(spec, i, saved) for i, spec in enumerate(step.buffers)]
    desc = SecBufferDesc(None if step.null_buffers else buffers)
    if step.version is not None:
        desc.version = step.version
    if step.count is not None:
        desc.declared_count = step.count
    return desc


def _protected(desc: SecBufferDesc) -> dict[int, bytes | None]:
    return {
        i: None if b.data is None else bytes(b.data)
        for i, b in enumerate(desc.buffers or [])
        if b.buffer_type & SECBUFFER_ATTRMASK
    }


def _call(adapter: Adapter, step: Step, handle: Handle, desc: SecBufferDesc) -> CallResult:
    if step.op == "sign":
        return adapter.make_signature(handle, step.qop, desc, step.seqno)
    if step.op == "verify":
        return adapter.verify_signature(handle, desc, step.seqno)
    if step.op == "seal":
        return adapter.encrypt_message(handle, step.qop, desc, step.seqno)
    if step.op == "unseal":
        return adapter.decrypt_message(handle, desc, step.seqno)
    return adapter.delete_context(handle)


def _judge(step: Step, status: int, profile: str) -> tuple[str, bool, bool]:
    """(expected name, ok, non_strict) for a returned status."""
    if step.expect is None:
        return "", True, False
    expected = step.expect.for_profile(profile)
    actual = status_name(status)
    if actual == expected:
        return expected, True, False
    others = {step.expect.for_profile(p) for p in PROFILES if p != profile}
    return expected, False, actual in others


@dataclass
class Sides:
    """Who answers for each role, and the optional mirror of the side under test.

    Alone, one adapter plays both roles. Against a peer, the adapter under test plays
    ``tested`` and the peer the other role; when the peer is the reference, it also knows the
    negotiated flags and session key, and a ``mirror`` context in the reference replays every
    call of the side under test so that its output bytes can be compared with the oracle's.
    """

    client: tuple[Adapter, Handle]
    server: tuple[Adapter, Handle]
    tested: str | None = None
    mirror: tuple[Adapter, Handle] | None = None
    transcript: list[tuple[str, bytes]] = field(default_factory=list)
    other: Sides | None = None  # a second pair, for steps whose handle is "other"

    def of(self, step: Step) -> tuple[Adapter, Handle]:
        adapter, handle = self.client if step.by == "client" else self.server
        if step.handle == "zero":
            return adapter, Handle.ZERO
        if step.handle == "garbage":
            return adapter, Handle.GARBAGE
        return adapter, handle


def establish(
    adapter: Adapter, case: Case, peer: Adapter | None, role: str | None
) -> Sides | CallResult:
    """Run the handshake for a case: alone, or with ``peer`` taking the role not ``role``."""
    if peer is None or role is None:
        pair = adapter.establish(case.options)
        if isinstance(pair, CallResult):
            return pair
        return Sides((adapter, pair.client), (adapter, pair.server), transcript=pair.transcript)
    if role == "client":
        pair = handshake(adapter.client(case.options), peer.server(case.options))
    else:
        pair = handshake(peer.client(case.options), adapter.server(case.options))
    if isinstance(pair, CallResult):
        return pair
    sides = Sides((adapter, pair.client), (peer, pair.server), tested=role)
    if role == "server":
        sides = Sides((peer, pair.client), (adapter, pair.server), tested=role)
    sides.transcript = pair.transcript
    if isinstance(peer, ReferenceAdapter) and pair.exported_session_key is not None:
        mirror = peer.from_session_key(
            pair.flags, pair.exported_session_key, client=role == "client"
        )
        sides.mirror = (peer, mirror)
    return sides


def _mirror_difference(
    sides: Sides, step: Step, before: SecBufferDesc, desc: SecBufferDesc, call: CallResult
) -> str:
    """Replay a call of the side under test in the reference mirror; describe any difference."""
    if sides.mirror is None or step.by != sides.tested or step.handle != "valid":
        return ""
    adapter, handle = sides.mirror
    oracle = _call(adapter, step, handle, before)
    if oracle.status != call.status or call.status != 0:
        return ""  # statuses are judged by the expectations; bytes only matter on success
    for index, (mine, theirs) in enumerate(
        zip(desc.buffers or [], before.buffers or [], strict=True)
    ):
        ours, reference = _visible(mine), _visible(theirs)
        if ours != reference:
            return f"buffer {index} differs from the reference's: {ours.hex()} vs {reference.hex()}"
    return ""


def _visible(buf: SecBuffer) -> bytes:
    """What a C caller sees of a buffer: the first cbBuffer bytes."""
    return bytes(buf.data or b"")[: buf.cb_buffer]


def _qop_matches(wanted: int | str, got: int | str) -> bool:
    return wanted == "any" or wanted == got


def _failed(
    here: tuple[CaseOutcome, StepRecord, dict[str, Any], dict[str, Any]], message: str
) -> CaseOutcome:
    """Mark the case FAIL at this step, reporting what the step was to do and did."""
    result, record, expected, actual = here
    result.outcome, record.ok, result.message = "FAIL", False, message
    result.expected, result.actual = expected, actual
    return result


def execute(
    adapter: Adapter,
    case: Case,
    profile: str = "documented",
    *,
    peer: Adapter | None = None,
    role: str | None = None,
) -> CaseOutcome:
    """Run every step of ``case``; stop at the first step that fails. A case that does not
    pass keeps the handshake's tokens (``handshake``) for the report's pcap."""
    transcripts: list[list[tuple[str, bytes]]] = []
    result = _execute(adapter, case, profile, peer, role, transcripts)
    if result.outcome not in ("PASS", "UNSUPPORTED") and transcripts and transcripts[0]:
        result.handshake = [{"from": who, "token": token.hex()} for who, token in transcripts[0]]
    return result


def _execute(
    adapter: Adapter,
    case: Case,
    profile: str,
    peer: Adapter | None,
    role: str | None,
    transcripts: list[list[tuple[str, bytes]]],
) -> CaseOutcome:
    result = CaseOutcome("PASS")
    try:
        sides = establish(adapter, case, peer, role)
    except CannotExpress as exc:
        result.outcome, result.message = "UNSUPPORTED", f"establish: {exc}"
        return result
    except WorkerFailure as exc:
        result.outcome = "CRASH" if isinstance(exc, WorkerCrashed) else "TIMEOUT"
        result.message = f"establish: {exc}"
        result.expected = {"step": "establish", "status": "SEC_E_OK"}
        result.actual = {"step": "establish", "fatal_call": exc.call}
        return result
    except Exception as exc:  # an exception escaping an adapter is an ERROR outcome
        result.outcome, result.message = "ERROR", f"establish: {type(exc).__name__}: {exc}"
        return result
    transcripts.append(sides.transcript)
    if isinstance(sides, CallResult):
        name = status_name(sides.status)
        result.steps.append(StepRecord("establish", name, "SEC_E_OK", False, sides.detail))
        result.outcome = "FAIL"
        result.message = f"establish failed with {name}: {sides.detail}".strip(": ")
        result.expected, result.actual = {"status": "SEC_E_OK"}, {"status": name}
        return result
    saved: dict[str, SecBufferDesc] = {}
    label, step = "", None
    try:
        for index, step in enumerate(case.steps or case.scenario.steps):
            label = f"{index}:{step.op}/{step.by}"
            if step.handle == "other":
                if sides.other is None:
                    other = establish(adapter, case, peer, role)
                    if isinstance(other, CallResult):
                        name = status_name(other.status)
                        record = StepRecord(label, name, "SEC_E_OK", False, other.detail)
                        result.steps.append(record)
                        return _failed(
                            (
                                result,
                                record,
                                {"step": label, "status": "SEC_E_OK"},
                                {"step": label, "status": name},
                            ),
                            f"step {label}: a second context failed to establish: {name}",
                        )
                    sides.other = other
                actor, handle = sides.other.of(step)
            else:
                actor, handle = sides.of(step)
            if step.op == "sizes":
                call, sizes = actor.query_sizes(handle)
                desc = SecBufferDesc()
            else:
                desc = build_descriptor(step, saved)
                # The untouched input, for the mirror and the "unchanged" check only.
                needs_copy = step.expect_unchanged or (
                    sides.mirror is not None and step.by == sides.tested
                )
                pristine = desc.copy() if needs_copy else desc
                before = _protected(desc)
                call = _call(actor, step, handle, desc)
                sizes = None
            expected, ok, non_strict = _judge(step, call.status, profile)
            record = StepRecord(
                label,
                status_name(call.status),
                expected or None,
                ok,
                call.detail,
                step.expect.evidence if step.expect else {},
            )
            result.steps.append(record)
            # What this step was to do and did; the record reports the step that decided the
            # outcome: the last one when all pass, else the first NON_STRICT or the failing one.
            here_expected: dict[str, Any] = {
                "step": label,
                "status": expected or status_name(call.status),
            }
            here_actual: dict[str, Any] = {"step": label, "status": record.status}
            here = (result, record, here_expected, here_actual)
            if result.outcome == "PASS":
                result.expected, result.actual = here_expected, here_actual
            if not ok:
                record.detail = record.detail or f"expected {expected}"
                if not non_strict:
                    return _failed(here, f"step {label}: expected {expected}, got {record.status}")
                if result.outcome == "PASS":
                    result.outcome = "NON_STRICT"
                    result.message = (
                        f"step {label}: {record.status} is allowed only by another profile"
                    )
            if step.op != "sizes":
                after = _protected(desc)
                for i, content in before.items():
                    if after.get(i) != content:
                        return _failed(
                            here, f"step {label}: the package wrote into read-only buffer {i}"
                        )
            if sizes is not None and step.expect_sizes:
                got = sizes.as_dict()
                wanted = step.expect_sizes.get(profile, step.expect_sizes["documented"])
                wrong = {k: got.get(k) for k, v in wanted.items() if got.get(k) != v}
                others = [m for p, m in step.expect_sizes.items() if p != profile]
                if wrong and any(all(got.get(k) == v for k, v in m.items()) for m in others):
                    if result.outcome == "PASS":
                        result.outcome = "NON_STRICT"
                        result.message = (
                            f"step {label}: sizes {got} are allowed only by another profile"
                        )
                        here_expected["sizes"], here_actual["sizes"] = wanted, got
                elif wrong:
                    here_expected["sizes"], here_actual["sizes"] = wanted, got
                    return _failed(here, f"step {label}: sizes {wrong} differ from {wanted}")
            if step.expect_qop and call.status == 0:
                got_qop = "unchanged" if call.qop is None else call.qop
                wanted_qop = step.expect_qop.get(profile, step.expect_qop["documented"])
                if not _qop_matches(wanted_qop, got_qop):
                    here_expected["qop"], here_actual["qop"] = wanted_qop, got_qop
                    others_qop = [v for p, v in step.expect_qop.items() if p != profile]
                    if not any(_qop_matches(v, got_qop) for v in others_qop):
                        return _failed(
                            here, f"step {label}: pfQOP {got_qop!r}, expected {wanted_qop!r}"
                        )
                    if result.outcome == "PASS":
                        result.outcome = "NON_STRICT"
                        result.message = (
                            f"step {label}: pfQOP {got_qop!r} is allowed only by another profile"
                        )
            if call.status == 0:
                for buf_index, want in step.expect_buffers:
                    got_hex = bytes((desc.buffers or [])[buf_index].data or b"").hex()
                    if got_hex != want:
                        here_expected["buffer"], here_actual["buffer"] = want, got_hex
                        return _failed(
                            here,
                            f"step {label}: buffer {buf_index} holds {got_hex}, expected {want}",
                        )
            if step.expect_unchanged and step.op != "sizes":
                for i, (now, given) in enumerate(
                    zip(desc.buffers or [], pristine.buffers or [], strict=True)
                ):
                    if bytes(now.data or b"") != bytes(given.data or b""):
                        return _failed(
                            here,
                            f"step {label}: buffer {i} was changed by a call that failed "
                            "(unauthenticated output released)",
                        )
            if step.op != "sizes":
                difference = _mirror_difference(sides, step, pristine, desc, call)
                if difference:
                    return _failed(here, f"step {label}: {difference}")
            if step.save:
                saved[step.save] = desc.copy()
    except CannotExpress as exc:
        result.outcome, result.message = "UNSUPPORTED", str(exc)
    except WorkerFailure as exc:  # the full call that killed or hung the worker, for replay
        result.outcome = "CRASH" if isinstance(exc, WorkerCrashed) else "TIMEOUT"
        if step is not None and step.expect is not None:  # what the fatal call should have done
            result.expected = {"step": label, "status": step.expect.for_profile(profile)}
        result.message = str(exc)
        result.actual = {"step": label, "fatal_call": exc.call}
    except Exception as exc:  # an exception escaping an adapter is an ERROR outcome
        result.outcome = "ERROR"
        result.message = f"{type(exc).__name__}: {exc}"
    return result
