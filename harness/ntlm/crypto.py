"""Cryptographic primitives of [MS-NLMP] §6 (Appendix A) on top of `cryptography`.

RC4 and single DES live in cryptography's "decrepit" module: NTLM needs them anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
import zlib

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4, TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes


def md5(data: bytes) -> bytes:
    return hashlib.md5(data).digest()


def hmac_md5(key: bytes, data: bytes) -> bytes:
    """HMAC_MD5(K, M) of §6 (RFC 2104)."""
    return hmac.digest(key, data, "md5")  # OpenSSL's one-shot HMAC


try:  # OpenSSL's one-shot HMAC, without hmac.digest's argument checks
    from _hashlib import hmac_digest as _hmac_digest
except ImportError:  # pragma: no cover - CPython without OpenSSL
    _hmac_digest = hmac.digest  # type: ignore[assignment]


def hmac_md5_parts(key: bytes, head: bytes, body: bytes | bytearray) -> bytes:
    """HMAC_MD5(K, head ‖ body) without building head ‖ body: a large message is not copied."""
    if len(body) < 4096:
        return _hmac_digest(key, head + body, "md5")
    mac = hmac.new(key, head, hashlib.md5)
    mac.update(body)
    return mac.digest()


def crc32(data: bytes | bytearray) -> bytes:
    """CRC32(M) of §6, as the 4 little-endian bytes placed in the signature."""
    return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "little")


def _expand_des_key(key7: bytes) -> bytes:
    """Spread a 56-bit key over 8 bytes, 7 key bits per byte (parity bits left clear)."""
    bits = int.from_bytes(key7, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


# Some cryptography releases warn that TripleDES is deprecated; NTLM needs single DES
# regardless. One narrow filter at import (a catch_warnings per call cost a fifth of DES).
warnings.filterwarnings("ignore", message=".*TripleDES.*")


def des(key7: bytes, block: bytes) -> bytes:
    """DES(K, D) of §6: encrypt 8 bytes with a 7-byte key in ECB mode."""
    key = _expand_des_key(key7)
    # Three equal keys make 3DES-EDE exactly single DES.
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def desl(key16: bytes, block: bytes) -> bytes:
    """DESL(K, D) of §6: three DES encryptions of D under the 16-byte K split 7/7/2+Z(5)."""
    return des(key16[0:7], block) + des(key16[7:14], block) + des(key16[14:16] + b"\x00" * 5, block)


def rc4k(key: bytes, data: bytes) -> bytes:
    """RC4K(K, D) of §6: RC4 with a fresh key schedule."""
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


def xor_bytes(left: bytes, right: bytes) -> bytes:
    """Byte-wise XOR of two equal-length strings, fast for large messages."""
    n = len(left)
    return (int.from_bytes(left, "little") ^ int.from_bytes(right, "little")).to_bytes(n, "little")


class RC4Stream:
    """An RC4 handle (RC4Init / RC4 of §6) whose position can be saved and restored.

    SSPI callers expect a failed VerifySignature or DecryptMessage to leave the context as it
    was, so the package takes keystream tentatively and rewinds on failure. Data is encrypted
    by the cipher directly (no keystream copy on the common path); since the latest ``mark``
    each (input, output) pair is kept, and a rewind turns them back into keystream
    (input XOR output), which is then used before the cipher's.
    """

    def __init__(self, key: bytes) -> None:
        self._cipher = Cipher(ARC4(key), mode=None).encryptor()
        self._pending = b""  # keystream given back by a rewind, used before the cipher's
        self._since_mark: list[tuple[bytes, bytes]] = []
        self._position = 0  # absolute offset of the next keystream byte

    def apply(self, data: bytes) -> bytes:
        """RC4(Handle, D): encrypt or decrypt ``data`` with the next keystream bytes."""
        if not data:
            return b""
        if type(data) is not bytes:
            data = bytes(data)  # kept for a rewind: must not change under us
        if self._pending:
            used = self._pending[: len(data)]
            self._pending = self._pending[len(used) :]
            out = xor_bytes(data[: len(used)], used)
            if len(data) > len(used):
                out += self._cipher.update(data[len(used) :])
        else:
            out = self._cipher.update(data)
        self._since_mark.append((data, out))
        self._position += len(data)
        return out

    def keystream(self, count: int) -> bytes:
        """The next ``count`` bytes of keystream, consumed."""
        return self.apply(b"\x00" * count)

    def mark(self) -> int:
        """The current position; only the latest mark can be rewound to."""
        self._since_mark = []
        return self._position

    def rewind(self, mark: int) -> None:
        """Go back to a position returned by the latest ``mark``."""
        taken = b"".join(xor_bytes(data, out) for data, out in self._since_mark)
        if len(taken) != self._position - mark:
            raise ValueError("RC4Stream.rewind: not the latest mark")
        self._pending = taken + self._pending
        self._since_mark = []
        self._position = mark
