"""Done criterion: "The reference completes an NTLMv2 handshake with pyspnego's NTLM as the
peer, in both roles, and each side verifies and unseals what the other signs and seals".

Written against pyspnego 0.12.4 (``spnego`` has no ``__version__``; ``PYSPNEGO_VERSION`` reads
the installed version from the distribution metadata).
pyspnego's ``wrap`` output for NTLM is the 16-byte signature followed by the ciphertext.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

spnego = pytest.importorskip("spnego")
from spnego.exceptions import SpnegoError  # noqa: E402

from harness.adapters.base import ContextOptions  # noqa: E402
from harness.adapters.reference import requested_flags  # noqa: E402
from harness.ntlm.flags import NegotiateFlags as F  # noqa: E402
from harness.ntlm.handshake import (  # noqa: E402
    Credentials,
    HandshakeError,
    NtlmClient,
    NtlmServer,
)
from harness.ntlm.package import NtlmPackage  # noqa: E402
from harness.ntlm.session import SessionSecurity  # noqa: E402
from harness.sspi.buffers import SecBuffer, SecBufferDesc  # noqa: E402
from harness.sspi.constants import BufferType  # noqa: E402
from harness.sspi.constants import SecStatus as S  # noqa: E402

PYSPNEGO_VERSION = importlib.metadata.version("pyspnego")
CREDS = Credentials("User", "Domain", "Password")
MESSAGES = [b"", b"x", b"Plaintext" * 3, bytes(range(256)) * 20]


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ntlm_users"
    path.write_text("Domain:User:Password\n", encoding="utf-8")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))
    return path


def test_pyspnego_version() -> None:
    major, minor = (int(x) for x in PYSPNEGO_VERSION.split(".")[:2])
    assert (major, minor) >= (0, 11)  # pyproject's lower bound


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def _reference_client_vs_pyspnego_server(flags: int) -> tuple[SessionSecurity, object, int]:
    server = spnego.server(protocol="ntlm")
    client = NtlmClient(CREDS, flags, ntlm_v2=True)
    challenge = server.step(client.negotiate())
    assert not server.complete
    assert server.step(client.authenticate(challenge)) is None
    assert server.complete
    assert client.established is not None
    return client.established.session, server, client.established.flags


@pytest.mark.usefixtures("user_file")
@pytest.mark.parametrize("key_exchange", [True, False])
def test_reference_client_pyspnego_server(key_exchange: bool) -> None:
    flags = requested_flags(ContextOptions(key_exchange=key_exchange))
    ref, srv, negotiated = _reference_client_vs_pyspnego_server(flags)
    assert negotiated & F.EXTENDED_SESSIONSECURITY
    assert bool(negotiated & F.KEY_EXCH) == key_exchange
    assert srv.session_key is not None
    for msg in MESSAGES:
        # reference signs, pyspnego verifies
        srv.verify(msg, ref.sign(msg))
        # reference seals, pyspnego unwraps
        sealed, sig = ref.seal([msg])
        assert srv.unwrap(sig + sealed[0]).data == msg
        # pyspnego wraps, reference unseals
        wrapped = srv.wrap(msg).data
        assert ref.unseal([wrapped[16:]], wrapped[:16]) == (S.SEC_E_OK, [msg])
        # pyspnego signs, reference verifies
        assert ref.verify(msg, srv.sign(msg)) == S.SEC_E_OK


@pytest.mark.usefixtures("user_file")
def test_pyspnego_server_rejects_tampering_by_reference() -> None:
    ref, srv, _ = _reference_client_vs_pyspnego_server(requested_flags(ContextOptions()))
    sig = ref.sign(b"message")
    with pytest.raises(SpnegoError):
        srv.verify(b"messagf", sig)
    # and the reference rejects a tampered pyspnego signature
    assert ref.verify(b"reply", _flip(srv.sign(b"reply"), 5)) != S.SEC_E_OK


@pytest.mark.usefixtures("user_file")
def test_pyspnego_server_rejects_wrong_password() -> None:
    server = spnego.server(protocol="ntlm")
    client = NtlmClient(Credentials("User", "Domain", "Wrong"), requested_flags(ContextOptions()))
    challenge = server.step(client.negotiate())
    with pytest.raises(SpnegoError):
        server.step(client.authenticate(challenge))


def _pyspnego_client_vs_reference_server(username: str) -> tuple[object, SessionSecurity, int]:
    client = spnego.client(username, "Password", protocol="ntlm")
    server = NtlmServer({("User", "Domain"): "Password"})
    challenge = server.challenge(client.step())
    server.accept(client.step(challenge))
    assert client.complete
    assert server.established is not None and server.established.ntlm_v2
    return client, server.established.session, server.established.flags


@pytest.mark.parametrize("username", ["User", "Domain\\User"])
def test_pyspnego_client_reference_server(username: str) -> None:
    cli, ref, flags = _pyspnego_client_vs_reference_server(username)
    assert flags & F.EXTENDED_SESSIONSECURITY and flags & F.SEAL
    for msg in MESSAGES:
        assert ref.verify(msg, cli.sign(msg)) == S.SEC_E_OK
        wrapped = cli.wrap(msg).data
        assert ref.unseal([wrapped[16:]], wrapped[:16]) == (S.SEC_E_OK, [msg])
        cli.verify(msg, ref.sign(msg))
        sealed, sig = ref.seal([msg])
        assert cli.unwrap(sig + sealed[0]).data == msg


def test_reference_server_rejects_pyspnego_wrong_password() -> None:
    client = spnego.client("Domain\\User", "Wrong", protocol="ntlm")
    server = NtlmServer({("User", "Domain"): "Password"})
    challenge = server.challenge(client.step())
    with pytest.raises(HandshakeError) as info:
        server.accept(client.step(challenge))
    assert info.value.status == S.SEC_E_LOGON_DENIED


def test_reference_rejects_tampered_pyspnego_wrap() -> None:
    cli, ref, _ = _pyspnego_client_vs_reference_server("Domain\\User")
    wrapped = cli.wrap(b"do not touch").data
    status, parts = ref.unseal([_flip(wrapped[16:], 3)], wrapped[:16])
    assert status == S.SEC_E_MESSAGE_ALTERED
    # the failed attempt consumed no state: the genuine message 0, then message 1, unseal
    assert ref.unseal([wrapped[16:]], wrapped[:16]) == (S.SEC_E_OK, [b"do not touch"])
    wrapped = cli.wrap(b"next").data
    assert ref.unseal([wrapped[16:]], wrapped[:16]) == (S.SEC_E_OK, [b"next"])


# -- through the SSPI functions of the reference package ----------------------------------------


def _desc(data: bytes) -> SecBufferDesc:
    return SecBufferDesc([SecBuffer.of(BufferType.DATA, data), SecBuffer.of(BufferType.TOKEN, 16)])


@pytest.mark.usefixtures("user_file")
def test_sspi_level_reference_client_pyspnego_server() -> None:
    server = spnego.server(protocol="ntlm")
    client = NtlmClient(CREDS, requested_flags(ContextOptions()))
    server.step(client.authenticate(server.step(client.negotiate())))
    assert client.established is not None
    package = NtlmPackage()
    handle = package.add(client.established, is_client=True)

    desc = _desc(b"signed over SSPI")
    assert package.make_signature(handle, 0, desc, 0) == S.SEC_E_OK
    server.verify(b"signed over SSPI", bytes(desc.buffers[1].data))

    desc = _desc(b"sealed over SSPI")
    assert package.encrypt_message(handle, 0, desc, 0) == S.SEC_E_OK
    data, token = (bytes(b.data) for b in desc.buffers)
    assert data != b"sealed over SSPI"
    assert server.unwrap(token + data).data == b"sealed over SSPI"

    wrapped = server.wrap(b"from pyspnego").data
    desc = SecBufferDesc([
        SecBuffer.of(BufferType.TOKEN, wrapped[:16]),
        SecBuffer.of(BufferType.DATA, wrapped[16:]),
    ])
    assert package.decrypt_message(handle, desc, 0) == (S.SEC_E_OK, 0)
    assert bytes(desc.buffers[1].data) == b"from pyspnego"

    mic = server.sign(b"pyspnego mic")
    desc = SecBufferDesc([
        SecBuffer.of(BufferType.DATA, b"pyspnego mic"), SecBuffer.of(BufferType.TOKEN, mic),
    ])
    assert package.verify_signature(handle, desc, 0) == (S.SEC_E_OK, None)  # pfQOP left untouched


def test_sspi_level_pyspnego_client_reference_server() -> None:
    client = spnego.client("Domain\\User", "Password", protocol="ntlm")
    server = NtlmServer({("User", "Domain"): "Password"})
    server.accept(client.step(server.challenge(client.step())))
    assert server.established is not None
    package = NtlmPackage()
    handle = package.add(server.established, is_client=False)

    wrapped = client.wrap(b"to the server").data
    desc = SecBufferDesc([
        SecBuffer.of(BufferType.TOKEN, wrapped[:16]),
        SecBuffer.of(BufferType.DATA, wrapped[16:]),
    ])
    assert package.decrypt_message(handle, desc, 0) == (S.SEC_E_OK, 0)
    assert bytes(desc.buffers[1].data) == b"to the server"

    desc = _desc(b"to the client")
    assert package.encrypt_message(handle, 0, desc, 0) == S.SEC_E_OK
    data, token = (bytes(b.data) for b in desc.buffers)
    assert client.unwrap(token + data).data == b"to the client"

    desc = _desc(b"server mic")
    assert package.make_signature(handle, 0, desc, 0) == S.SEC_E_OK
    client.verify(b"server mic", bytes(desc.buffers[1].data))
