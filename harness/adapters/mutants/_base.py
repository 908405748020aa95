"""What the mutants are built from: the reference adapter with one part replaced.

A mutant changes the reference in one of three places, never by patching module globals:
- the session (``harness.ntlm.session.SessionSecurity``): a subclass given as
  ``session_class``, installed by ``MutantPackage.add`` in every context the adapter makes;
- the package (``harness.ntlm.package.NtlmPackage``): a subclass given as ``package_class``;
- the adapter methods themselves, often by handing the reference a *shadow* descriptor: the
  same data (shared ``bytearray`` objects, so that writes land in the caller's buffers) seen
  through different buffer types or in a different order, which is how a package that
  misreads the descriptor behaves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import ClassVar

from harness.adapters.base import CallResult, Handle
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm.handshake import Established, Randomness
from harness.ntlm.package import Context, NtlmPackage
from harness.ntlm.session import SessionSecurity
from harness.sspi.buffers import SecBuffer, SecBufferDesc
from harness.sspi.constants import BufferType

Pairs = list[tuple[SecBuffer, SecBuffer]]  # (the caller's buffer, the package's view of it)


class MutantPackage(NtlmPackage):
    """The reference package, with every new context's session made of ``session_class``."""

    def __init__(self, session_class: type[SessionSecurity] = SessionSecurity) -> None:
        super().__init__()
        self.session_class = session_class

    def add(self, established: Established, *, is_client: bool) -> tuple[int, int]:
        if type(established.session) is not self.session_class:
            # No message has been protected yet, so a fresh session is the same state.
            session = self.session_class(
                established.flags, established.exported_session_key, is_client=is_client
            )
            established = dataclasses.replace(established, session=session)
        return super().add(established, is_client=is_client)


class MutantAdapter(ReferenceAdapter):
    """A reference adapter whose package and session classes a mutant may replace."""

    package_class: ClassVar[type[MutantPackage]] = MutantPackage
    session_class: ClassVar[type[SessionSecurity]] = SessionSecurity

    def __init__(
        self, randomness: Randomness | None = None, *, dns_domain: str | None = "domain.test"
    ) -> None:
        super().__init__(randomness, dns_domain=dns_domain)
        self.package = self.package_class(self.session_class)

    def context(self, handle: Handle) -> Context | None:
        """The package's context behind a handle (None for an unknown handle)."""
        return self.package.context((handle.lower, handle.upper))

    def session(self, handle: Handle) -> SessionSecurity | None:
        context = self.context(handle)
        return None if context is None else context.established.session


def data_buffers(message: SecBufferDesc | None) -> list[SecBuffer]:
    """The DATA buffers of a descriptor, in array order."""
    return [b for b in (message.buffers or []) if b.kind == BufferType.DATA] if message else []


def shadow(
    message: SecBufferDesc | None,
    retype: Callable[[SecBuffer], int] = lambda b: b.buffer_type,
    reorder: Callable[[list[SecBuffer]], list[SecBuffer]] = lambda buffers: buffers,
) -> tuple[SecBufferDesc | None, Pairs]:
    """A descriptor over the same memory, with buffer types changed by ``retype`` and the
    DATA buffers placed in the order ``reorder`` gives; and the (original, shadow) pairs for
    ``settle``. A NULL or malformed descriptor is passed through as it is."""
    if message is None or message.buffers is None:
        return message, []
    pairs = [(b, SecBuffer(retype(b), b.data, b.declared_length)) for b in message.buffers]
    by_original = {id(o): s for o, s in pairs}
    data = [b for b in message.buffers if b.kind == BufferType.DATA]
    slots = iter(reorder(data))
    ordered = [
        by_original[id(next(slots))] if b.kind == BufferType.DATA else by_original[id(b)]
        for b in message.buffers
    ]
    view = SecBufferDesc(ordered, message.version, message.declared_count)
    return view, pairs


def settle(pairs: Sequence[tuple[SecBuffer, SecBuffer]]) -> None:
    """Carry back what the package changed besides the shared bytes: a new ``cbBuffer``."""
    for original, view in pairs:
        original.declared_length = view.declared_length


class ViewMutant(MutantAdapter):
    """A mutant whose bug is only a misreading of the descriptor: the listed message functions
    get ``view(message)`` (a ``shadow`` over the same memory) instead of the caller's
    descriptor, and a changed ``cbBuffer`` is carried back with ``settle``."""

    misread: ClassVar[frozenset[str]] = frozenset()  # "sign", "verify", "seal", "unseal"

    def view(self, message: SecBufferDesc | None) -> tuple[SecBufferDesc | None, Pairs]:
        return shadow(message)

    def _through_view(
        self,
        op: str,
        message: SecBufferDesc | None,
        call: Callable[[SecBufferDesc | None], CallResult],
    ) -> CallResult:
        if op not in self.misread:
            return call(message)
        view, pairs = self.view(message)
        result = call(view)
        settle(pairs)
        return result

    def make_signature(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        sign = super().make_signature
        return self._through_view("sign", message, lambda m: sign(handle, qop, m, seqno))

    def verify_signature(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        verify = super().verify_signature
        return self._through_view("verify", message, lambda m: verify(handle, m, seqno))

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        seal = super().encrypt_message
        return self._through_view("seal", message, lambda m: seal(handle, qop, m, seqno))

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        unseal = super().decrypt_message
        return self._through_view("unseal", message, lambda m: unseal(handle, m, seqno))
