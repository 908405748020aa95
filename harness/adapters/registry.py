"""Find adapters by short name, by ``package.module:Class`` path, or by entry point.

Imports stay lazy: naming ``reference`` must not import any other backend.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from harness.adapters.base import Adapter

ENTRY_POINT_GROUP = "sspi_harness.adapters"

BUILTIN: dict[str, str] = {
    "reference": "harness.adapters.reference:ReferenceAdapter",
    "pyspnego": "harness.adapters.spnego_ntlm:PyspnegoAdapter",
    "gssapi": "harness.adapters.gss:GssapiAdapter",
    "native": "harness.adapters.native:NativeAdapter",
    "impacket": "harness.adapters.impacket_ntlm:ImpacketAdapter",
    "scapy": "harness.adapters.scapy_ntlm:ScapyAdapter",
}


class UnknownAdapter(ValueError):
    """The name does not resolve to an adapter class; the text says why."""


def names() -> list[str]:
    """Built-in adapter names plus those registered by installed packages."""
    plugged = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return list(BUILTIN) + sorted(set(plugged) - set(BUILTIN))


def _from_path(path: str) -> type[Adapter]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise UnknownAdapter(f"adapter path {path!r} is not of the form package.module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownAdapter(f"cannot import {module_name!r} for adapter {path!r}: {exc}") from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise UnknownAdapter(f"{path!r} is not an Adapter subclass")
    return cls


def load_adapter(name: str) -> type[Adapter]:
    """The adapter class for a name, a dotted path or an entry point."""
    if name in BUILTIN:
        return _from_path(BUILTIN[name])
    if ":" in name:
        return _from_path(name)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return _from_path(ep.value)
    known = ", ".join(names())
    raise UnknownAdapter(f"unknown adapter {name!r} (known: {known}; or give package.module:Class)")
