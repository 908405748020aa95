"""Deliberately broken adapters, derived from the reference, each a realistic bug.

They prove that the catalogue catches what it claims to catch: ``sspi-harness mutants``
(``harness.mutation.run_mutants``) runs the catalogue against each and counts it killed when
some case fails where the reference passes. Each class says its bug and the rule it breaks.

Modules by theme: ``process`` (crash, hang: run them isolated), ``readonly`` (read-only
buffers), ``buffers`` (descriptor handling), ``verification`` (what a receiver accepts or
releases), ``sequence`` (sequence numbers and RC4 state), ``crypto`` (keys and MAC),
``context`` (handles, deletion, negotiated services, sizes, QOP).
"""

from __future__ import annotations

from harness.adapters.base import Adapter
from harness.adapters.mutants.buffers import (
    AcceptsTruncatedSignature,
    SignatureAtTokenEnd,
    SignsFirstDataOnly,
    SignsReverseOrder,
)
from harness.adapters.mutants.context import (
    DeleteKeepsContext,
    IgnoresNegotiatedServices,
    NoHandleValidation,
    ReportsWrapNoEncrypt,
    SizesZeroSignature,
    WrapNoEncryptEncrypts,
)
from harness.adapters.mutants.crypto import (
    MacOverCiphertext,
    NoChecksumRc4,
    SealKeyIgnoresStrength,
    WrongDirectionKey,
)
from harness.adapters.mutants.process import HangsOnEmptyMessage, SegfaultsOnShortToken
from harness.adapters.mutants.readonly import (
    EncryptsReadonly,
    SignsReadonly,
    SkipsReadonlyWithChecksum,
    WritesInputToken,
)
from harness.adapters.mutants.sequence import (
    ConsumesKeystreamOnFailure,
    ConsumesSeqnumOnFailure,
    DatagramNoRekey,
    HalfDuplexWithEss,
    SealKeepsSeqnum,
    SkipsSequenceCheck,
    UsesApplicationSeqno,
)
from harness.adapters.mutants.verification import (
    AcceptsAnySignatureOnEmptyMessage,
    AcceptsReplays,
    ComparesChecksumOnly,
    IgnoresVersion,
    ReleasesPlaintextOnFailure,
    UnsealSkipsMac,
)

# Every shipped mutant, in the order `sspi-harness mutants` reports them.
ALL: tuple[type[Adapter], ...] = (
    # read-only buffers
    SignsReadonly,
    SkipsReadonlyWithChecksum,
    EncryptsReadonly,
    WritesInputToken,
    # descriptors
    SignsReverseOrder,
    SignsFirstDataOnly,
    SignatureAtTokenEnd,
    AcceptsTruncatedSignature,
    # verification and failure hygiene
    IgnoresVersion,
    ComparesChecksumOnly,
    AcceptsAnySignatureOnEmptyMessage,
    UnsealSkipsMac,
    AcceptsReplays,
    ReleasesPlaintextOnFailure,
    # sequence numbers and RC4 state
    SkipsSequenceCheck,
    ConsumesSeqnumOnFailure,
    ConsumesKeystreamOnFailure,
    UsesApplicationSeqno,
    DatagramNoRekey,
    SealKeepsSeqnum,
    HalfDuplexWithEss,
    # keys and MAC
    WrongDirectionKey,
    MacOverCiphertext,
    NoChecksumRc4,
    SealKeyIgnoresStrength,
    # handles, deletion, negotiation, sizes, QOP
    NoHandleValidation,
    DeleteKeepsContext,
    IgnoresNegotiatedServices,
    SizesZeroSignature,
    WrapNoEncryptEncrypts,
    ReportsWrapNoEncrypt,
    # the process itself (isolate = True)
    SegfaultsOnShortToken,
    HangsOnEmptyMessage,
)

__all__ = ["ALL", *(cls.__name__ for cls in ALL)]
