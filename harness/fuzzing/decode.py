"""Fuzzer bytes → structured choices, and choices → fuzzer bytes.

Targets never read bytes themselves: they ask a ``Source`` for integers in a range and for
byte strings, each question with a label. ``FuzzSource`` answers from fuzzer input through
``atheris.FuzzedDataProvider`` (integers are taken from the end of the input, byte strings from
the front, as libFuzzer's provider does); ``ScriptSource`` answers from a script of intended
values and ``encode()``s the answers back into the exact bytes that make ``FuzzSource`` give the
same answers. That is how the seed corpora are written (``harness.fuzzing.seeds``): each seed
names the operations it exercises instead of being an opaque blob.

Exhausted input answers the plainest value (the low end of a range, empty bytes), so a short
input decodes to a short, plain test; rare events are therefore asked as "is the answer the
*top* of the range" so that running out of bytes never triggers them.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class Source(Protocol):
    """Where a target's choices come from."""

    def int(self, lo: builtins.int, hi: builtins.int, label: str) -> builtins.int: ...

    def bytes(self, count: builtins.int, label: str) -> builtins.bytes: ...


class FuzzSource:
    """Choices from fuzzer input, through atheris.FuzzedDataProvider."""

    def __init__(self, data: bytes) -> None:
        import atheris

        self._fdp = atheris.FuzzedDataProvider(data)

    def int(self, lo: builtins.int, hi: builtins.int, label: str) -> builtins.int:
        return builtins.int(self._fdp.ConsumeIntInRange(lo, hi))

    def bytes(self, count: builtins.int, label: str) -> builtins.bytes:
        return builtins.bytes(self._fdp.ConsumeBytes(count))

    def remaining(self) -> builtins.int:
        return builtins.int(self._fdp.remaining_bytes())


def _width(span: int) -> int:
    """How many bytes FuzzedDataProvider.ConsumeIntInRange takes for a range of ``span``."""
    count = 0
    while count < 8 and (span >> (8 * count)) > 0:
        count += 1
    return count


class ScriptSource:
    """Answers from a script (label → list of values, used in order; otherwise the plainest
    value), recording every answer so that ``encode()`` gives the matching fuzzer bytes."""

    def __init__(self, script: dict[str, list[int | bytes]] | None = None) -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self._front = bytearray()  # byte strings, in order
        self._back = bytearray()  # integers, most significant byte first, in order

    def int(self, lo: builtins.int, hi: builtins.int, label: str) -> builtins.int:
        wanted = self.script.get(label)
        value = wanted.pop(0) if wanted else lo
        if not isinstance(value, builtins.int):
            raise TypeError(f"script value for {label!r} must be an int, not {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"script value {value} for {label!r} is outside {lo}..{hi}")
        width = _width(hi - lo)
        if width:
            self._back += (value - lo).to_bytes(width, "big")
        return value

    def bytes(self, count: builtins.int, label: str) -> builtins.bytes:
        wanted = self.script.get(label)
        value = wanted.pop(0) if wanted else b""
        if not isinstance(value, builtins.bytes):
            raise TypeError(f"script value for {label!r} must be bytes, not {value!r}")
        value = value[:count].ljust(count, b"\x00")
        self._front += value
        return value

    def encode(self) -> builtins.bytes:
        """The fuzzer input that makes FuzzSource answer exactly as this script did."""
        return builtins.bytes(self._front) + builtins.bytes(reversed(self._back))


# -- helpers every target uses ----------------------------------------------------------------


def pick(src: Source, options: Sequence[T], label: str) -> T:
    """One of ``options`` (the first when the input is exhausted)."""
    return options[src.int(0, len(options) - 1, label)]


def rare(src: Source, label: str, one_in: int = 16) -> bool:
    """True about once in ``one_in`` inputs, never on exhausted input."""
    return src.int(0, one_in - 1, label) == one_in - 1


def blob(src: Source, max_size: int, label: str) -> bytes:
    """A byte string of 0..``max_size`` bytes: the length, then the contents."""
    return src.bytes(src.int(0, max_size, label + "-len"), label)


def index_of(label_value: int, length: int) -> int | None:
    """An index into a sequence of ``length`` from any integer (None for an empty one)."""
    return label_value % length if length else None
