"""The native adapter against sspi-rs's libsspi as the ``sspilib`` 0.6.0 wheel ships it.

These tests record what that library really does. Whatever can crash or hang it (malformed
descriptors, bad handles, the catalogue) runs in a child process, so that a SIGSEGV, an abort
or a deadlock inside the library is an observed outcome instead of the end of pytest.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _baseline_gate import JOBS as ALL_JOBS
from _baseline_gate import gate_exit_code, stale_entries

from harness.adapters.base import (
    AdapterError,
    CallResult,
    CannotExpress,
    ContextOptions,
    ContextPair,
    handshake,
)
from harness.adapters.native import NativeAdapter
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm.flags import NegotiateFlags as F
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import BufferType
from harness.sspi.constants import SecStatus as S

ROOT = Path(__file__).resolve().parent.parent
SSPILIB_VERSION = "0.6.0"
CHILD_TIMEOUT_S = 30.0
HANG_TIMEOUT_S = 5.0
OPTIONS = ContextOptions()


def _libsspi_or_skip() -> None:
    availability = NativeAdapter.available()
    if not availability.ok:
        pytest.skip(availability.reason)
    if sys.platform == "win32" or os.environ.get("SSPI_HARNESS_NATIVE_LIB"):
        pytest.skip("these tests record the behaviour of sspilib's libsspi (sspi-rs)")


@pytest.fixture
def native() -> NativeAdapter:
    _libsspi_or_skip()
    return NativeAdapter()


def _pair(adapter: NativeAdapter, options: ContextOptions = OPTIONS) -> ContextPair:
    pair = adapter.establish(options)
    assert isinstance(pair, ContextPair), pair
    return pair


def _message(text: bytes, token: int = 16) -> SecBufferDesc:
    return SecBufferDesc(
        [SecBuffer.of(BufferType.DATA, text), SecBuffer.of(BufferType.TOKEN, token)]
    )


def _data(desc: SecBufferDesc, index: int) -> bytearray:
    """The bytes of one buffer (the tests only build buffers that have memory)."""
    assert desc.buffers is not None
    data = desc.buffers[index].data
    assert data is not None
    return data


def test_sspilib_version(native: NativeAdapter) -> None:
    assert importlib.metadata.version("sspilib") == SSPILIB_VERSION
    assert "libsspi" in Path(native.library_path).name


def test_import_does_not_load_the_backend() -> None:
    code = (
        "import sys, harness.adapters.native\n"
        "assert 'harness.adapters.native_abi' not in sys.modules\n"
        "assert 'harness.sspi.cabi' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_unloadable_library_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSPI_HARNESS_NATIVE_LIB", "/nonexistent/libsspi.so")
    availability = NativeAdapter.available()
    assert not availability.ok
    assert "/nonexistent/libsspi.so" in availability.reason
    with pytest.raises(AdapterError, match="cannot load"):
        NativeAdapter().establish(OPTIONS)


def test_pickles_without_ctypes_state(native: NativeAdapter) -> None:
    _pair(native)
    clone = pickle.loads(pickle.dumps(native))
    assert clone.library is None and clone._fns is None
    _pair(clone)


def test_ulong_is_32_bit(native: NativeAdapter) -> None:
    # sspi-rs declares every ULONG as u32 (also on LP64); with a 64-bit layout these four
    # fields would read as two garbage values and two zeros.
    pair = _pair(native)
    status, sizes = native.query_sizes(pair.client)
    assert status.status == S.SEC_E_OK
    assert sizes is not None
    assert sizes.as_dict() == {
        "cbMaxToken": 2010,
        "cbMaxSignature": 16,
        "cbBlockSize": 0,
        "cbSecurityTrailer": 16,
    }


def test_handshake_with_itself(native: NativeAdapter) -> None:
    pair = _pair(native)
    assert pair.flags & (
        F.SIGN | F.SEAL | F.KEY_EXCH | F.EXTENDED_SESSIONSECURITY | F.NEGOTIATE_128
    )
    assert not pair.flags & (F.LM_KEY | F.DATAGRAM)


def test_handshake_options(native: NativeAdapter) -> None:
    # Without confidentiality sspi-rs drops SEAL and also KEY_EXCH; without integrity, SIGN.
    signed = _pair(native, ContextOptions(confidentiality=False))
    assert signed.flags & F.SIGN and not signed.flags & (F.SEAL | F.KEY_EXCH)
    plain = _pair(native, ContextOptions(integrity=False, confidentiality=False))
    assert not plain.flags & (F.SIGN | F.SEAL | F.KEY_EXCH)
    # ISC_REQ_DATAGRAM is ignored: the context would be connection-oriented, so it is refused.
    refused = native.establish(ContextOptions(datagram=True))
    assert isinstance(refused, CallResult)
    assert refused.status == S.SEC_E_UNSUPPORTED_FUNCTION
    assert "without DATAGRAM" in refused.detail
    # NTLMv1 cannot be asked for through the C ABI: UNSUPPORTED, as a client and at establish.
    with pytest.raises(CannotExpress, match="NTLM v1"):
        native.client(ContextOptions(ntlm_version="v1"))
    with pytest.raises(CannotExpress, match="56-bit keys"):
        native.establish(ContextOptions(key_bits=56))


def test_server_against_reference_clients(native: NativeAdapter) -> None:
    reference = ReferenceAdapter()

    def accept(options: ContextOptions) -> int:
        result = handshake(reference.client(options), native.server(OPTIONS))
        return S.SEC_E_OK if isinstance(result, ContextPair) else result.status

    assert accept(OPTIONS) == S.SEC_E_OK
    assert accept(ContextOptions(password="wrong")) == S.SEC_E_LOGON_DENIED
    # sspi-rs's server does no NTLMv1 and answers it with an internal error.
    assert accept(ContextOptions(ntlm_version="v1")) == S.SEC_E_INTERNAL_ERROR
    assert accept(ContextOptions(ntlm_version="v1-ess")) == S.SEC_E_INTERNAL_ERROR
    # KEY_EXCH without SIGN/SEAL (allowed by MS-NLMP §3.1.5.1.2) is rejected as a bad token.
    no_integrity = ContextOptions(integrity=False, confidentiality=False)
    assert accept(no_integrity) == S.SEC_E_INVALID_TOKEN
    assert accept(ContextOptions(integrity=False, confidentiality=False, key_exchange=False)) == 0


@pytest.mark.parametrize("native_role", ["client", "server"])
def test_seal_both_ways_with_reference(native: NativeAdapter, native_role: str) -> None:
    reference = ReferenceAdapter()
    if native_role == "client":
        pair = handshake(native.client(OPTIONS), reference.server(OPTIONS))
    else:
        pair = handshake(reference.client(OPTIONS), native.server(OPTIONS))
    assert isinstance(pair, ContextPair)
    mine = pair.client if native_role == "client" else pair.server
    theirs = pair.server if native_role == "client" else pair.client
    for i in range(3):
        for (sender, sh), (receiver, rh) in (
            ((native, mine), (reference, theirs)),
            ((reference, theirs), (native, mine)),
        ):
            text = b"message %d from %s" % (i, sender.name.encode())
            desc = _message(text)
            assert sender.encrypt_message(sh, 0, desc, 0).status == S.SEC_E_OK
            assert bytes(_data(desc, 0)) != text
            assert receiver.decrypt_message(rh, desc, 0).status == S.SEC_E_OK
            assert bytes(_data(desc, 0)) == text


@pytest.mark.parametrize("native_role", ["client", "server"])
def test_signing_is_not_implemented(native: NativeAdapter, native_role: str) -> None:
    # sspi-rs's MakeSignature and VerifySignature are stubs (ffi/src/sspi/common.rs).
    reference = ReferenceAdapter()
    if native_role == "client":
        pair = handshake(native.client(OPTIONS), reference.server(OPTIONS))
    else:
        pair = handshake(reference.client(OPTIONS), native.server(OPTIONS))
    assert isinstance(pair, ContextPair)
    mine = pair.client if native_role == "client" else pair.server
    theirs = pair.server if native_role == "client" else pair.client
    desc = _message(b"signed")
    assert native.make_signature(mine, 0, desc, 0).status == S.SEC_E_UNSUPPORTED_FUNCTION
    assert bytes(_data(desc, 1)) == bytes(16)
    assert reference.make_signature(theirs, 0, desc, 0).status == S.SEC_E_OK
    assert native.verify_signature(mine, desc, 0).status == S.SEC_E_UNSUPPORTED_FUNCTION


def test_tamper_detection_releases_plaintext(native: NativeAdapter) -> None:
    reference = ReferenceAdapter()
    pair = handshake(reference.client(OPTIONS), native.server(OPTIONS))
    assert isinstance(pair, ContextPair)
    desc = _message(b"do not alter")
    reference.encrypt_message(pair.client, 0, desc, 0)
    _data(desc, 0)[0] ^= 0x20
    assert native.decrypt_message(pair.server, desc, 0).status == S.SEC_E_MESSAGE_ALTERED
    # The altered message is decrypted in place all the same: unauthenticated plaintext.
    assert bytes(_data(desc, 0)) == b"Do not alter"
    forged = _message(b"other")
    reference.encrypt_message(pair.client, 0, forged, 0)
    _data(forged, 1)[4] ^= 0x01
    assert native.decrypt_message(pair.server, forged, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_a_rejected_message_breaks_the_context(native: NativeAdapter) -> None:
    # A failed DecryptMessage consumes the sequence number and RC4 keystream: every later
    # genuine message is rejected.
    pair = _pair(native)
    sealed = [_message(b"m0"), _message(b"m1")]
    for desc in sealed:
        assert native.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    tampered = sealed[0].copy()
    _data(tampered, 1)[9] ^= 0x01
    assert native.decrypt_message(pair.server, tampered, 0).status == S.SEC_E_MESSAGE_ALTERED
    for desc in sealed:
        assert native.decrypt_message(pair.server, desc.copy(), 0).status == S.SEC_E_MESSAGE_ALTERED


def test_reordered_messages_are_altered_not_out_of_sequence(native: NativeAdapter) -> None:
    pair = _pair(native)
    first, second = _message(b"first"), _message(b"second")
    for desc in (first, second):
        assert native.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert native.decrypt_message(pair.server, second, 0).status == S.SEC_E_MESSAGE_ALTERED
    assert native.decrypt_message(pair.server, first, 0).status == S.SEC_E_MESSAGE_ALTERED


def test_lying_length_reaches_the_library_backed(native: NativeAdapter) -> None:
    # cbBuffer 4096 over 4 bytes: the adapter backs it with zeros, sspi-rs believes it and
    # encrypts 4096 bytes (a C caller's overrun would be read the same way).
    pair = _pair(native)
    data = SecBuffer(BufferType.DATA, bytearray(b"four"), declared_length=4096)
    desc = SecBufferDesc([data, SecBuffer.of(BufferType.TOKEN, 16)])
    assert native.encrypt_message(pair.client, 0, desc, 0).status == S.SEC_E_OK
    assert len(_data(desc, 0)) == 4 and data.cb_buffer == 4096


# Calls that can crash or hang sspi-rs, each in its own process. In the snippets: C and S are
# the client and server handles of an established pair, Z and G the zeroed and garbage handles,
# d() and t() DATA and TOKEN buffers, m() a descriptor; each helper prints the status name.
_PRELUDE = textwrap.dedent(
    """
    from harness.adapters.base import ContextOptions, Handle
    from harness.adapters.native import NativeAdapter
    from harness.sspi.buffers import SecBuffer, SecBufferDesc
    from harness.sspi.constants import BufferType as B, status_name
    a = NativeAdapter()
    p = a.establish(ContextOptions())
    C, S, Z, G = p.client, p.server, Handle.ZERO, Handle.GARBAGE
    def d(x=b"data", **kw): return SecBuffer(B.DATA, bytearray(x), **kw)
    def t(n=16): return SecBuffer(B.TOKEN, bytearray(n))
    def m(*bufs, **kw): return SecBufferDesc(list(bufs or (d(), t())), **kw)
    def show(r): print(status_name(r.status), flush=True)
    def sizes(h): show(a.query_sizes(h)[0])
    def seal(h, desc, qop=0): show(a.encrypt_message(h, qop, desc, 0))
    def unseal(h, desc): show(a.decrypt_message(h, desc, 0))
    def sign(h, desc): show(a.make_signature(h, 0, desc, 0))
    def delete(h): show(a.delete_context(h))
    NULL = SecBufferDesc(None, declared_count=2)
    """
)

# (case, snippet, what sspi-rs does). A zeroed handle fails with "Security package name is
# not provided"; a garbage dwLower is dereferenced as the context; a deleted context's freed
# Mutex is locked and the futex wait never returns.
DANGEROUS = [
    ("sizes-zero-handle", "sizes(Z)", "SEC_E_INVALID_PARAMETER"),
    ("sizes-garbage-handle", "sizes(G)", "SIGSEGV"),
    ("sizes-deleted-handle", "a.delete_context(C); sizes(C)", "TIMEOUT"),
    ("seal-zero-handle", "seal(Z, m())", "SEC_E_INVALID_PARAMETER"),
    ("seal-garbage-handle", "seal(G, m())", "SIGSEGV"),
    ("seal-deleted-handle", "a.delete_context(C); seal(C, m())", "TIMEOUT"),
    ("unseal-zero-handle", "unseal(Z, m())", "SEC_E_INVALID_PARAMETER"),
    ("delete-zero-handle", "delete(Z)", "SEC_E_INVALID_PARAMETER"),
    ("delete-garbage-handle", "delete(G)", "SIGSEGV"),
    # The second delete frees the freed context again; glibc notices (abort) or not (segfault)
    # depending on the heap: both were seen, SIGABRT under the runner's worker.
    ("delete-twice", "a.delete_context(C); delete(C)", "SIGSEGV|SIGABRT"),
    ("sign-garbage-handle", "sign(G, m())", "SEC_E_UNSUPPORTED_FUNCTION"),
    ("seal-null-message", "seal(C, None)", "SEC_E_INVALID_PARAMETER"),
    ("seal-null-buffers", "seal(C, NULL)", "SEC_E_INVALID_PARAMETER"),
    ("seal-no-buffers", "seal(C, SecBufferDesc([]))", "SEC_E_INVALID_TOKEN"),
    ("seal-bad-version", "seal(C, m(version=1))", "SEC_E_OK"),
    ("seal-count-too-high", "seal(C, m(declared_count=5))", "SEC_E_OK"),
    ("seal-count-too-low", "seal(C, m(declared_count=1))", "SEC_E_INVALID_TOKEN"),
    ("seal-count-huge", "seal(C, m(declared_count=0xFFFFFFFF))", "SIGABRT"),
    ("seal-length-unbacked", "seal(C, m(d(declared_length=0x7FFFFFFF), t()))", "SIGSEGV"),
    ("seal-null-data", "seal(C, m(SecBuffer(B.DATA, None, 16), t()))", "SEC_E_OK"),
    (
        "seal-unknown-type",
        "seal(C, m(SecBuffer(99, bytearray(1)), d(), t()))",
        "SEC_E_INTERNAL_ERROR",
    ),
    ("seal-qop-1", "seal(C, m(), qop=1)", "SEC_E_OK"),
    ("unseal-no-token", "unseal(S, m(d()))", "SEC_E_MESSAGE_ALTERED"),
    ("unseal-short-token", "unseal(S, m(d(), t(15)))", "SEC_E_MESSAGE_ALTERED"),
    ("unseal-null-buffers", "unseal(S, NULL)", "SEC_E_INVALID_PARAMETER"),
]


def _child(code: str, *args: str, timeout: float = CHILD_TIMEOUT_S) -> tuple[str, str]:
    """Run ``code`` in a fresh interpreter: (its last stdout line, or the signal that killed
    it, or TIMEOUT; stderr's tail)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return "TIMEOUT", ""
    if proc.returncode < 0:
        return signal.Signals(-proc.returncode).name, proc.stderr[-2000:]
    if proc.returncode:
        return f"exit {proc.returncode}", proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    return (lines[-1] if lines else ""), proc.stderr[-2000:]


@pytest.mark.parametrize(
    ("code", "expected"), [c[1:] for c in DANGEROUS], ids=[c[0] for c in DANGEROUS]
)
def test_dangerous_call(code: str, expected: str) -> None:
    _libsspi_or_skip()
    timeout = HANG_TIMEOUT_S if expected == "TIMEOUT" else CHILD_TIMEOUT_S
    got, stderr = _child(_PRELUDE + code, timeout=timeout)
    assert got in expected.split("|"), stderr


# -- the catalogue, gated on the reviewed baseline ------------------------------------------------

# Every failing case of the catalogue (alone, and against the reference in each role) is listed
# in tests/baselines/native.json with its outcome and the reason sspi-rs behaves so. The run
# passes the gate only if the failures are exactly those: a new failure is a regression, and a
# listed case that now passes is an unexpected pass, so a fixed bug forces the baseline (and its
# reason) to be updated. UNSUPPORTED and NON_STRICT cases are not failures and are not listed.
# NativeAdapter.isolate puts the library in a worker process, so its crashes are CRASH outcomes.
# A call on a deleted handle never returns (TIMEOUT in the baseline): a 1-second call timeout
# keeps the hangs short and is still far above any real call here (a few milliseconds).
JOBS = ALL_JOBS


@pytest.mark.parametrize("jobs", JOBS)
def test_catalogue_matches_the_baseline(
    jobs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _libsspi_or_skip()
    code = gate_exit_code("native", jobs, tmp_path, "--timeout", "1")
    assert code == 0, capsys.readouterr().err


def test_baseline_names_real_cases() -> None:
    """Every baseline entry matches some job of the catalogue (none is left over)."""
    assert stale_entries("native", NativeAdapter) == []


# -- --native-lib: the library path from the command line ------------------------------------


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv],
        capture_output=True, text=True, check=False, env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--native-lib", "/nonexistent/libsspi.so"], "libsspi.so does not exist"),
        (["run", "--native-lib", "/"], "/ is a folder"),
        (["adapters", "--native-lib", __file__], "cannot load"),
        (["vectors", "check", "--native-lib", "/nonexistent"], "/nonexistent does not exist"),
        (["fuzz", "--native-lib", "/nonexistent", "--adapter", "native"], "does not exist"),
    ],
)
def test_bad_native_lib_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    proc = _cli(*argv)
    assert proc.returncode == 2
    assert message in proc.stderr and "--native-lib" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_native_lib_wins_over_the_environment_and_reaches_the_worker(tmp_path: Path) -> None:
    """A broken $SSPI_HARNESS_NATIVE_LIB makes native unavailable; --native-lib with a copy of
    libsspi wins over it, and the worker subprocess (which only sees the environment) loads
    the copy: the case passes."""
    _libsspi_or_skip()
    from harness.adapters.native_abi import default_library

    copy = tmp_path / "libsspi-copy.so"
    copy.write_bytes(Path(default_library()).read_bytes())
    broken = {"SSPI_HARNESS_NATIVE_LIB": str(tmp_path / "missing.so")}
    listing = _cli("adapters", env=broken)
    assert "native       unavailable" in listing.stdout
    listing = _cli("adapters", "--native-lib", str(copy), env=broken)
    assert "native       available" in listing.stdout
    out = tmp_path / "run"
    case = "seal-unseal-client-to-server[ntlmv2]"
    proc = _cli("run", "--adapter", "native", "--native-lib", str(copy), "--case", case,
                "--no-peers", "--out", str(out), "--quiet", env=broken)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["case"], r["outcome"]) for r in records] == [(case, "PASS")]
