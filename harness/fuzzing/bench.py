"""exec/s of each target against a *bare* atheris loop over the same adapter call.

The bare loop is what one would write without this package: the same context (the adapter
established against the reference), the fuzzer's bytes cut into a DATA buffer and a 16-byte
TOKEN, one call per input (VerifySignature for ``verify``, DecryptMessage for ``decrypt``,
one of the four message functions for ``descriptor``, that call plus the reference mirror's
for ``differential``, AcceptSecurityContext on the bytes as a NEGOTIATE for ``handshake``
(InitializeSecurityContext on them as a CHALLENGE for a client-only adapter, which is
fuzzed as the receiving client),
MakeSignature then VerifySignature for ``properties``). Both run under the same
instrumentation and isolation, in the same way (``python -m harness.fuzzing.child``), one
after the other:

    python -m harness.fuzzing.bench --adapter reference --adapter pyspnego --seconds 10
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.fuzzing import TARGET_NAMES

_DONE = re.compile(r"^Done (\d+) (?:runs )?in (\d+) second")


def bare_target(target: str, adapter_name: str, isolation: str = "auto") -> Callable[[bytes], None]:
    """The bare one-call loop body for ``target`` (see the module docstring)."""
    from harness.adapters.base import Capability, ContextOptions, handshake
    from harness.adapters.reference import ReferenceAdapter
    from harness.adapters.registry import load_adapter
    from harness.fuzzing.targets import FIXED_RANDOMNESS, resolve_isolation
    from harness.runner.worker import isolated
    from harness.sspi.buffers import SecBuffer, SecBufferDesc
    from harness.sspi.constants import BufferType

    cls = load_adapter(adapter_name)
    worker = resolve_isolation(cls, isolation) == "worker"
    adapter = (isolated(adapter_name) if worker else cls)()
    oracle = ReferenceAdapter(randomness=FIXED_RANDOMNESS)
    options = ContextOptions()
    # A client-only adapter (impacket) is fuzzed as the client: it receives the messages.
    as_server = bool(cls.capabilities & Capability.SERVER)
    if target == "handshake":

        def accept_negotiate(data: bytes) -> None:
            try:
                adapter.server(options).step(data)
            except Exception:  # noqa: BLE001 - the bare loop only measures
                pass

        def take_challenge(data: bytes) -> None:
            try:
                party = adapter.client(options)
                party.step(None)
                party.step(data)
            except Exception:  # noqa: BLE001
                pass

        return accept_negotiate if as_server else take_challenge
    if as_server:
        pair = handshake(oracle.client(options), adapter.server(options))
    else:
        pair = handshake(adapter.client(options), oracle.server(options))
    assert not hasattr(pair, "status"), f"cannot establish {adapter_name} against the reference"
    # ``server`` is the adapter's receiving end, ``client`` the reference's sending end.
    server = pair.server if as_server else pair.client  # type: ignore[union-attr]
    client = pair.client if as_server else pair.server  # type: ignore[union-attr]
    mirror = oracle.from_session_key(pair.flags, pair.exported_session_key, client=not as_server)  # type: ignore[union-attr, arg-type]

    def desc(data: bytes) -> SecBufferDesc:
        return SecBufferDesc(
            [
                SecBuffer.of(BufferType.DATA, data[16:]),
                SecBuffer.of(BufferType.TOKEN, data[:16].ljust(16, b"\0")),
            ]
        )

    calls = {
        "verify": lambda d: adapter.verify_signature(server, desc(d), 0),
        "decrypt": lambda d: adapter.decrypt_message(server, desc(d), 0),
        "differential": lambda d: (
            adapter.verify_signature(server, desc(d), 0),
            oracle.verify_signature(mirror, desc(d), 0),
        ),
    }
    if target == "descriptor":

        def one_of_four(data: bytes) -> None:
            which = data[0] % 4 if data else 0
            d = desc(data[1:])
            try:
                (
                    adapter.make_signature,
                    adapter.verify_signature,
                    adapter.encrypt_message,
                    adapter.decrypt_message,
                )[which](*((server, 0, d, 0) if which in (0, 2) else (server, d, 0)))
            except Exception:  # noqa: BLE001
                pass

        return one_of_four
    if target == "properties":

        def roundtrip(data: bytes) -> None:
            message = SecBufferDesc(
                [SecBuffer.of(BufferType.DATA, data), SecBuffer.of(BufferType.TOKEN, 16)]
            )
            try:
                oracle.make_signature(client, 0, message, 0)
                adapter.verify_signature(server, message, 0)
            except Exception:  # noqa: BLE001
                pass

        return roundtrip
    call = calls[target]

    def one(data: bytes) -> None:
        try:
            call(data)
        except Exception:  # noqa: BLE001
            pass

    return one


def measure_bare(
    target: str, adapter: str, seconds: float, isolation: str = "auto"
) -> tuple[int, float]:
    """(execs, exec/s) of the bare loop, in a fuzzer process like the engine's."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "harness.fuzzing.child",
            "--target",
            target,
            "--adapter",
            adapter,
            "--isolation",
            isolation,
            "--bare",
            f"-max_total_time={int(seconds)}",
            f"-artifact_prefix={tmp}/",
            "-max_len=4096",
            tmp,
        ]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60)
        elapsed = time.monotonic() - started
    execs = 0
    for line in proc.stderr.splitlines():
        match = _DONE.match(line)
        if match:
            execs = int(match.group(1))
            elapsed = max(int(match.group(2)), 1)
    return execs, execs / elapsed if elapsed else 0.0


def measure(
    targets: Sequence[str],
    adapters: Sequence[str],
    seconds: float,
    out: Path,
    isolation: str = "auto",
    timeout_s: float = 5.0,
) -> list[dict[str, Any]]:
    from harness.fuzzing.engine import run_campaign

    rows = []
    for adapter in adapters:
        for target in targets:
            result = run_campaign(
                adapter,
                target,
                seconds=seconds,
                out_dir=out / f"{adapter}-{target}-{isolation}",
                minimize=False,
                seed=1,
                isolation=isolation,
                timeout_s=timeout_s,
            )
            bare_execs, bare_rate = measure_bare(target, adapter, seconds, isolation)
            rows.append(
                {
                    "target": target,
                    "adapter": adapter,
                    "isolation": result.isolation,
                    "execs": result.execs,
                    "exec_per_s": result.exec_per_s,
                    "calls_per_s": round(result.calls / result.duration_s, 1)
                    if result.duration_s
                    else 0,
                    "bare_execs": bare_execs,
                    "bare_exec_per_s": round(bare_rate, 1),
                    "cov": result.cov,
                    "ft": result.ft,
                    "features": result.features,
                    "findings": len(result.findings),
                    "restarts": result.restarts,
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| target | adapter | isolation | exec/s (target) | adapter calls/s (target) "
        "| exec/s (bare loop) | ratio | cov | ft | features | findings |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r["exec_per_s"] / r["bare_exec_per_s"] if r["bare_exec_per_s"] else 0
        lines.append(
            f"| {r['target']} | {r['adapter']} | {r['isolation']} | {r['exec_per_s']:.0f} "
            f"| {r['calls_per_s']:.0f} | {r['bare_exec_per_s']:.0f} | {ratio:.2f} "
            f"| {r['cov']} | {r['ft']} | {r['features']} | {r['findings']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", action="append", default=None)
    parser.add_argument("--target", action="append", default=None, choices=TARGET_NAMES)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="fuzz-bench-")))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--isolation", choices=("auto", "worker", "none"), default="auto")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-call limit (campaign)")
    args = parser.parse_args(argv)
    rows = measure(
        args.target or list(TARGET_NAMES),
        args.adapter or ["reference", "pyspnego"],
        args.seconds,
        args.out,
        args.isolation,
        args.timeout,
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
