"""Mutants that get the context right around the message: handles, deletion, what was
negotiated, the sizes reported, and the quality of protection asked for."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from harness.adapters.base import CallResult, Handle
from harness.adapters.mutants._base import MutantAdapter, MutantPackage
from harness.ntlm.package import Context, _Call
from harness.sspi.buffers import SecBufferDesc
from harness.sspi.constants import SECQOP_WRAP_NO_ENCRYPT, SecStatus
from harness.sspi.sizes import SecPkgContextSizes


class _FirstContextPackage(MutantPackage):
    def context(self, handle: tuple[int, int]) -> Context | None:
        found = super().context(handle)
        if found is None and handle == (0, 0) and self._contexts:
            return next(iter(self._contexts.values()))  # dwLower 0 indexes the first slot
        return found


class NoHandleValidation(MutantAdapter):
    """Bug: uses dwLower as an index into its context table without validating the handle,
    so a zeroed handle is taken for the first context ever made.

    Breaks MakeSignature / VerifySignature / EncryptMessage / DecryptMessage:
    "SEC_E_INVALID_HANDLE: The context handle specified by phContext is not valid." """

    name = "mutant-no-handle-validation"
    package_class = _FirstContextPackage


class _KeepsDeletedPackage(MutantPackage):
    def delete_context(self, handle: tuple[int, int]) -> SecStatus:
        # drops "its" reference, but the table's reference keeps the context alive
        return SecStatus.SEC_E_OK if handle in self._contexts else SecStatus.SEC_E_INVALID_HANDLE


class DeleteKeepsContext(MutantAdapter):
    """Bug: DeleteSecurityContext returns SEC_E_OK but the context stays in the package's
    table (a leaked reference), so the deleted handle still signs and verifies.

    Breaks DeleteSecurityContext: "After the security context is successfully deleted,
    further use of that security context is not permitted and the handle is no longer
    valid." """

    name = "mutant-delete-keeps-context"
    package_class = _KeepsDeletedPackage


class _NoServiceCheckPackage(MutantPackage):
    def _open(
        self,
        handle: tuple[int, int],
        desc: SecBufferDesc | None,
        allowed: Callable[[Context], bool],
    ) -> SecStatus | _Call:
        return super()._open(handle, desc, lambda ctx: True)


class IgnoresNegotiatedServices(MutantAdapter):
    """Bug: the message functions never check what the context negotiated: a context without
    integrity signs, and one without confidentiality encrypts, with keys the peer never
    agreed to use.

    Breaks MakeSignature: "SEC_E_QOP_NOT_SUPPORTED: The quality of protection negotiated
    between the client and server did not include integrity checking", and EncryptMessage
    (General): "SEC_E_QOP_NOT_SUPPORTED: Neither confidentiality nor integrity are supported
    by the security context." """

    name = "mutant-ignores-negotiated-services"
    package_class = _NoServiceCheckPackage


class SizesZeroSignature(MutantAdapter):
    """Bug: QueryContextAttributes(SECPKG_ATTR_SIZES) reports cbMaxSignature 0 (an
    uninitialised field) although MakeSignature signs.

    Breaks SecPkgContext_Sizes: cbMaxSignature "Specifies the maximum size of the signature
    created by the MakeSignature function", and "Signing a Message (SSPI)": "If the
    cbMaxSignature member is zero, the security package does not support signing"."""

    name = "mutant-sizes-zero-signature"

    def query_sizes(self, handle: Handle) -> tuple[CallResult, SecPkgContextSizes | None]:
        result, sizes = super().query_sizes(handle)
        if sizes is not None:
            sizes = dataclasses.replace(sizes, cbMaxSignature=0)
        return result, sizes


class WrapNoEncryptEncrypts(MutantAdapter):
    """Bug: EncryptMessage ignores fQOP and encrypts even when asked for
    SECQOP_WRAP_NO_ENCRYPT.

    Breaks EncryptMessage (General): SECQOP_WRAP_NO_ENCRYPT means "Produce a header or
    trailer but do not encrypt the message." """

    name = "mutant-wrap-no-encrypt-encrypts"

    def encrypt_message(
        self, handle: Handle, qop: int, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        qop = 0 if qop == SECQOP_WRAP_NO_ENCRYPT else qop
        return super().encrypt_message(handle, qop, message, seqno)


class ReportsWrapNoEncrypt(MutantAdapter):
    """Bug: DecryptMessage sets SECQOP_WRAP_NO_ENCRYPT in pfQOP for a message it decrypted
    (the flag tested the wrong way round).

    Breaks DecryptMessage (NTLM): SECQOP_WRAP_NO_ENCRYPT means "The message was not encrypted,
    but a header or trailer was produced." """

    name = "mutant-reports-wrap-no-encrypt"

    def decrypt_message(
        self, handle: Handle, message: SecBufferDesc | None, seqno: int
    ) -> CallResult:
        result = super().decrypt_message(handle, message, seqno)
        if result.status == SecStatus.SEC_E_OK:
            return dataclasses.replace(result, qop=SECQOP_WRAP_NO_ENCRYPT)
        return result
