"""SecPkgContext_Sizes, the answer to QueryContextAttributes(SECPKG_ATTR_SIZES)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SecPkgContextSizes:
    """cbMaxSignature 0 means the package does not support signing ("Signing a Message")."""

    cbMaxToken: int
    cbMaxSignature: int
    cbBlockSize: int
    cbSecurityTrailer: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
