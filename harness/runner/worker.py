"""Run any adapter in a worker subprocess, so that a crash or hang of the implementation is an
outcome (CRASH, TIMEOUT) instead of the end of the run.

The parent holds a ``WorkerAdapter`` that forwards each SSPI call to a long-lived child over
a pipe (length-prefixed pickles) and copies back what the child's adapter wrote into the
descriptor. The worker is reused between cases and replaced after it dies. The child moves its
own stdout to stderr first, so that anything a native library prints cannot corrupt the
protocol.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from harness.adapters.base import (
    Adapter,
    AdapterError,
    Availability,
    CallResult,
    CannotExpress,
    ContextOptions,
    ContextPair,
    Handle,
    Party,
)
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.sizes import SecPkgContextSizes

DEFAULT_TIMEOUT_S = 5.0
_HEADER = struct.Struct("<I")


class WorkerFailure(Exception):
    """The worker died or hung; ``call`` is the complete call that did it, for replay."""

    def __init__(self, message: str, call: str) -> None:
        super().__init__(message)
        self.call = call


class WorkerCrashed(WorkerFailure):
    """The worker process died during a call; the text names the signal and the call."""


class WorkerTimeout(WorkerFailure):
    """The worker did not answer within the timeout; it was killed."""


class _Deadline(Exception):
    """No answer by the deadline (internal to the pipe reader)."""


@dataclass(frozen=True)
class PartyRef:
    """A party that lives in the worker."""

    id: int


def _send(fd: int, payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _recv_exact(fd: int, count: int, deadline: float | None) -> bytes:
    chunks, remaining = [], count
    while remaining:
        if deadline is not None:
            timeout = deadline - _now()
            if timeout <= 0 or not select.select([fd], [], [], timeout)[0]:
                raise _Deadline
        chunk = os.read(fd, remaining)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _recv(fd: int, deadline: float | None = None) -> Any:
    (length,) = _HEADER.unpack(_recv_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_recv_exact(fd, length, deadline))


def _now() -> float:
    import time

    return time.monotonic()


def _describe(method: str, args: tuple[Any, ...], *, limit: int = 400) -> str:
    """A one-line account of a call, for CRASH/TIMEOUT messages (cut at ``limit``)."""
    parts = []
    for arg in args:
        if isinstance(arg, SecBufferDesc):
            parts.append(f"desc={arg.to_json()}")
        elif isinstance(arg, bytes):
            parts.append(arg.hex())
        else:
            parts.append(repr(arg))
    text = f"{method}({', '.join(parts)})"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _RemoteParty(Party):
    def __init__(self, worker: WorkerAdapter, ref: PartyRef) -> None:
        self.worker = worker
        self.ref = ref

    def step(self, token: bytes | None) -> tuple[int, bytes]:
        result: tuple[int, bytes] = self.worker._invoke("party.step", (self.ref.id, token))
        return result

    @property
    def handle(self) -> Handle:
        result: Handle = self.worker._invoke("party.handle", (self.ref.id,))
        return result

    @property
    def flags(self) -> int:
        result: int = self.worker._invoke("party.flags", (self.ref.id,))
        return result

    @property
    def exported_session_key(self) -> bytes | None:
        result: bytes | None = self.worker._invoke("party.exported_session_key", (self.ref.id,))
        return result

    @property
    def detail(self) -> str:
        result: str = self.worker._invoke("party.detail", (self.ref.id,))
        return result


class WorkerAdapter(Adapter):
    """Base of the isolated adapter classes made by ``isolated``; forwards to a child."""

    target: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] = tempfile.TemporaryFile()
        self._to_child = self._from_child = -1
        self._pending = 0  # whole cases submitted and not yet collected
        self._slim_scenarios: dict[int, tuple[Any, Any]] = {}
        self.restarts = 0

    # -- process management -------------------------------------------------------------------

    def _start(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        self._stderr = tempfile.TemporaryFile()  # read back for CRASH messages
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness.runner.worker_main",
                str(to_child_r),
                str(from_child_w),
            ],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._to_child, self._from_child = to_child_w, from_child_r
        self._roundtrip(("init", (self.target,)))

    def _stop(self, *, kill: bool) -> None:
        if self._proc is None:
            return
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        if kill:
            self._proc.kill()
        self._stderr.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _last_words(self) -> str:
        """The end of what the worker wrote to stderr (an abort message, say), on one line."""
        self._stderr.seek(0, os.SEEK_END)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - 300))
        text = self._stderr.read().decode("utf-8", "replace")
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())[-240:]

    def _death(self) -> str:
        assert self._proc is not None
        code = self._proc.wait(timeout=5)
        if code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        said = self._last_words()
        return f"{how} (stderr: {said})" if said else how

    def _roundtrip(self, request: tuple[str, tuple[Any, ...]]) -> Any:
        if self._pending:
            raise RuntimeError("a per-call request while whole cases are in flight")
        try:
            _send(self._to_child, request)
        except OSError:
            pass  # the worker is gone: _receive says how it died
        return self._receive(request)

    def _receive(self, request: tuple[str, tuple[Any, ...]]) -> Any:
        """The answer to ``request`` within ``timeout_s``; a hang or death is a WorkerFailure
        that names the request, and the worker is replaced at the next call."""
        deadline = _now() + self.timeout_s
        try:
            kind, value = _recv(self._from_child, deadline)
        except _Deadline:
            self._stop(kill=True)
            self.restarts += 1
            raise WorkerTimeout(
                f"no answer within {self.timeout_s:g} s to {_describe(*request)}",
                _describe(*request, limit=1 << 20),
            ) from None
        except (EOFError, BrokenPipeError, OSError):
            how = self._death()
            self._stop(kill=False)
            self.restarts += 1
            raise WorkerCrashed(
                f"worker {how} during {_describe(*request)}", _describe(*request, limit=1 << 20)
            ) from None
        if kind == "raise":
            name, text = value
            raise (CannotExpress if name == "CannotExpress" else AdapterError)(text)
        return value

    def _invoke(self, method: str, args: tuple[Any, ...]) -> Any:
        if self._proc is None:
            self._start()
        value, updated = self._roundtrip((method, args))
        for original, after in zip(args, updated, strict=True):
            if isinstance(original, SecBufferDesc) and isinstance(after, SecBufferDesc):
                original.buffers, original.version = after.buffers, after.version
                original.declared_count = after.declared_count
        return value

    def start(self) -> None:
        """Start the worker now rather than at the first call (interpreter, imports and the
        adapter's library load: a fixed cost of about a quarter of a second)."""
        if self._proc is None:
            self._start()

    # -- whole cases, pipelined (the fast path of the runner) ---------------------------------

    def submit_case(
        self, case: Any, profile: str, *, peer: str | None, role: str | None
    ) -> None:
        """Queue a whole case for the worker (``execute`` there, with its own ``peer``) without
        waiting: the runner keeps a few in flight, so that the worker runs one case while the
        parent records the last. Answers come back in order through ``collect_case``."""
        if self._proc is None:
            self._start()
        self._pending += 1
        try:
            _send(self._to_child, ("execute", (self._slim(case), profile, peer, role)))
        except OSError:
            pass  # the worker died on an earlier case: collect_case reports it

    def _slim(self, case: Any) -> Any:
        """The case without what the worker does not need to run it (the scenario's other
        parameter expansions and its texts): a tenth of the bytes to pickle and pipe."""
        scenario = case.scenario
        slim = self._slim_scenarios.get(id(scenario))
        if slim is None or slim[0] is not scenario:
            light = dataclasses.replace(scenario, expansions=(), source_quote="", context={})
            slim = self._slim_scenarios[id(scenario)] = (scenario, light)
        return dataclasses.replace(case, scenario=slim[1])

    def collect_case(self) -> Any:
        """The CaseOutcome of the oldest submitted case, or None when the worker crashed or
        took more than ``timeout_s`` over it: the runner then runs that case (and the ones
        queued behind it) again call by call, so that the record names the exact call that
        killed the worker (``fatal_call``)."""
        self._pending -= 1
        try:
            return self._receive(("execute", ()))
        except WorkerFailure:
            self._pending = 0  # the worker is gone, and with it the queue
            return None

    def close(self) -> None:
        if self._pending:  # an interrupted run: nobody waits for the queued cases
            self._stop(kill=True)
            self._pending = 0
        if self._proc is not None:
            try:
                self._roundtrip(("close", ()))
            except (WorkerCrashed, WorkerTimeout, AdapterError):
                pass
            self._stop(kill=False)

    # -- the adapter contract, forwarded ------------------------------------------------------

    def establish(self, options: ContextOptions) -> ContextPair | CallResult:
        result: ContextPair | CallResult = self._invoke("establish", (options,))
        return result

    def client(self, options: ContextOptions) -> Party:
        return _RemoteParty(self, self._invoke("client", (options,)))

    def server(self, options: ContextOptions) -> Party:
        return _RemoteParty(self, self._invoke("server", (options,)))

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        result: tuple[CallResult, SecPkgContextSizes | None] = self._invoke(
            "query_sizes", (handle,)
        )
        return result

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result: CallResult = self._invoke("make_signature", (handle, qop, message, seqno))
        return result

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result: CallResult = self._invoke("verify_signature", (handle, message, seqno))
        return result

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result: CallResult = self._invoke("encrypt_message", (handle, qop, message, seqno))
        return result

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result: CallResult = self._invoke("decrypt_message", (handle, message, seqno))
        return result

    def delete_context(self, handle: Handle) -> CallResult:
        result: CallResult = self._invoke("delete_context", (handle,))
        return result


# -- the child side ---------------------------------------------------------------------------


def _serve(read_fd: int, write_fd: int) -> None:
    """The worker loop: one adapter instance, its parties, requests until EOF."""
    from harness.adapters.registry import load_adapter
    from harness.runner.executor import execute  # whole cases; imported here: it imports us

    adapter: Adapter | None = None
    parties: dict[int, Party] = {}
    peers: dict[str, Adapter] = {}
    while True:
        try:
            method, args = _recv(read_fd)
        except EOFError:
            return
        try:
            if method == "init":
                adapter = load_adapter(args[0])()
                _send(write_fd, ("ok", (None, args)))
                continue
            assert adapter is not None
            if method == "close":
                adapter.close()
                _send(write_fd, ("ok", (None, args)))
                return
            if method == "execute":  # a whole case here, peer included (submit_case)
                case, profile, peer_name, role = args
                if peer_name is not None and peer_name not in peers:
                    peers[peer_name] = load_adapter(peer_name)()
                peer = peers[peer_name] if peer_name is not None else None
                _send(write_fd, ("ok", execute(adapter, case, profile, peer=peer, role=role)))
                continue
            if method in ("client", "server"):
                party = getattr(adapter, method)(*args)
                parties[len(parties) + 1] = party
                value: Any = PartyRef(len(parties))
            elif method.startswith("party."):
                party = parties[args[0]]
                attribute = method.split(".", 1)[1]
                value = party.step(args[1]) if attribute == "step" else getattr(party, attribute)
            else:
                value = getattr(adapter, method)(*args)
            _send(write_fd, ("ok", (value, args)))
        except CannotExpress as exc:  # UNSUPPORTED in the parent, with the same reason
            _send(write_fd, ("raise", ("CannotExpress", str(exc))))
        except Exception as exc:  # reported to the parent as an ERROR, the worker lives on
            _send(write_fd, ("raise", (type(exc).__name__, f"{type(exc).__name__}: {exc}")))


def serve_forever(argv: list[str]) -> None:
    """Entry point of the child (``python -m harness.runner.worker_main READ_FD WRITE_FD``)."""
    read_fd, write_fd = int(argv[0]), int(argv[1])
    os.dup2(2, 1)  # stray prints from native code go to stderr, not into the protocol
    import gc

    gc.set_threshold(20_000, 10, 10)  # as in the runner: cases free nearly all by refcount
    _serve(read_fd, write_fd)


def isolated(target: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> type[WorkerAdapter]:
    """An adapter class that runs the adapter ``target`` (registry name or path) in a worker,
    with the same name, description, capabilities and availability."""
    from harness.adapters.registry import load_adapter

    inner = load_adapter(target)

    def available(cls: type[WorkerAdapter]) -> Availability:
        return inner.available()

    namespace = {
        "name": inner.name,
        "description": inner.description,
        "capabilities": inner.capabilities,
        "target": target,
        "timeout_s": timeout_s,
        "available": classmethod(available),
        "__doc__": f"{inner.__name__}, isolated in a worker subprocess.",
    }
    return type(f"Isolated{inner.__name__}", (WorkerAdapter,), namespace)
