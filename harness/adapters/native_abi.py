"""ctypes prototypes of the SSPI C ABI (sspi.h), loaded from one shared library.

The function table is taken from ``InitSecurityInterfaceW`` when the library has it, the way
an application finds a provider's entry points, and falls back to the library's own exports.
Nothing here is imported by ``harness.adapters.native`` until the adapter is used, so that
the module can be imported without any SSPI library on the machine.

ULONG width: ``unsigned long`` is 32-bit on Windows, and sspi-rs declares every ULONG of the
ABI as ``u32`` on every platform (ffi-types ``SecBuffer``/``SecBufferDesc``, ``SecurityStatus``,
``SecPkgContextSizes``), while handles are two pointer-sized words. So the layout is the
Windows one everywhere: 32-bit ULONG, pointer-sized ULONG_PTR.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.sspi.cabi import CLayout, c_layout

ENV_LIBRARY = "SSPI_HARNESS_NATIVE_LIB"

ULONG = ctypes.c_uint32
LAYOUT: CLayout = c_layout(ULONG)

# sspi.h / minschannel.h values used by the adapter.
SECPKG_CRED_INBOUND = 0x1
SECPKG_CRED_OUTBOUND = 0x2
SEC_WINNT_AUTH_IDENTITY_UNICODE = 0x2
SECURITY_NATIVE_DREP = 0x10
ISC_REQ_REPLAY_DETECT = 0x4
ISC_REQ_SEQUENCE_DETECT = 0x8
ISC_REQ_CONFIDENTIALITY = 0x10
ISC_REQ_DATAGRAM = 0x400
ISC_REQ_CONNECTION = 0x800
ISC_REQ_INTEGRITY = 0x10000
ASC_REQ_REPLAY_DETECT = 0x4
ASC_REQ_SEQUENCE_DETECT = 0x8
ASC_REQ_CONFIDENTIALITY = 0x10
ASC_REQ_DATAGRAM = 0x400
ASC_REQ_CONNECTION = 0x800
ASC_REQ_INTEGRITY = 0x20000


class SecWinntAuthIdentityW(ctypes.Structure):
    """SEC_WINNT_AUTH_IDENTITY_W: UTF-16 strings with their lengths in characters."""

    _fields_ = [
        ("User", ctypes.c_void_p),
        ("UserLength", ULONG),
        ("Domain", ctypes.c_void_p),
        ("DomainLength", ULONG),
        ("Password", ctypes.c_void_p),
        ("PasswordLength", ULONG),
        ("Flags", ULONG),
    ]


class TimeStamp(ctypes.Structure):
    """TimeStamp (SECURITY_INTEGER): only ever written by the callee."""

    _fields_ = [("LowPart", ctypes.c_uint32), ("HighPart", ctypes.c_int32)]


_FUNCTYPE: Any = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)  # __stdcall on 32-bit Windows

_STATUS = ctypes.c_uint32  # SECURITY_STATUS: a LONG; read unsigned so it compares to SEC_E_*
_P = ctypes.c_void_p
_PHANDLE = ctypes.POINTER(LAYOUT.SecHandle)
_PDESC = ctypes.POINTER(LAYOUT.SecBufferDesc)
_PULONG = ctypes.POINTER(ULONG)
_PTIME = ctypes.POINTER(TimeStamp)

# name -> argument types, in sspi.h order.
PROTOTYPES: dict[str, tuple[Any, ...]] = {
    "AcquireCredentialsHandleW": (
        _P,  # pszPrincipal (SEC_WCHAR*)
        _P,  # pszPackage
        ULONG,  # fCredentialUse
        _P,  # pvLogonId
        _P,  # pAuthData
        _P,  # pGetKeyFn
        _P,  # pvGetKeyArgument
        _PHANDLE,  # phCredential
        _PTIME,  # ptsExpiry
    ),
    "FreeCredentialsHandle": (_PHANDLE,),
    "InitializeSecurityContextW": (
        _PHANDLE,  # phCredential
        _PHANDLE,  # phContext
        _P,  # pszTargetName
        ULONG,  # fContextReq
        ULONG,  # Reserved1
        ULONG,  # TargetDataRep
        _PDESC,  # pInput
        ULONG,  # Reserved2
        _PHANDLE,  # phNewContext
        _PDESC,  # pOutput
        _PULONG,  # pfContextAttr
        _PTIME,  # ptsExpiry
    ),
    "AcceptSecurityContext": (
        _PHANDLE,  # phCredential
        _PHANDLE,  # phContext
        _PDESC,  # pInput
        ULONG,  # fContextReq
        ULONG,  # TargetDataRep
        _PHANDLE,  # phNewContext
        _PDESC,  # pOutput
        _PULONG,  # pfContextAttr
        _PTIME,  # ptsExpiry
    ),
    "CompleteAuthToken": (_PHANDLE, _PDESC),
    "DeleteSecurityContext": (_PHANDLE,),
    "QueryContextAttributesW": (_PHANDLE, ULONG, _P),
    "MakeSignature": (_PHANDLE, ULONG, _PDESC, ULONG),
    "VerifySignature": (_PHANDLE, _PDESC, ULONG, _PULONG),
    "EncryptMessage": (_PHANDLE, ULONG, _PDESC, ULONG),
    "DecryptMessage": (_PHANDLE, _PDESC, ULONG, _PULONG),
}

# SecurityFunctionTableW (sspi.h): the slots in order; None is a slot we never call.
TABLE_SLOTS: tuple[str | None, ...] = (
    None,  # EnumerateSecurityPackagesW
    None,  # QueryCredentialsAttributesW
    "AcquireCredentialsHandleW",
    "FreeCredentialsHandle",
    None,  # Reserved2
    "InitializeSecurityContextW",
    "AcceptSecurityContext",
    "CompleteAuthToken",
    "DeleteSecurityContext",
    None,  # ApplyControlToken
    "QueryContextAttributesW",
    None,  # ImpersonateSecurityContext
    None,  # RevertSecurityContext
    "MakeSignature",
    "VerifySignature",
    None,  # FreeContextBuffer
    None,  # QuerySecurityPackageInfoW
    None,  # Reserved3 (EncryptMessage in Windows' own table)
    None,  # Reserved4 (DecryptMessage in Windows' own table)
    None,  # ExportSecurityContext
    None,  # ImportSecurityContextW
    None,  # AddCredentialsW
    None,  # Reserved8
    None,  # QuerySecurityContextToken
    "EncryptMessage",
    "DecryptMessage",
)


class SecurityFunctionTableW(ctypes.Structure):
    _fields_ = [("dwVersion", ULONG)] + [
        (name or f"_slot{i}", ctypes.c_void_p) for i, name in enumerate(TABLE_SLOTS)
    ]


def wide(text: str) -> ctypes.Array[ctypes.c_char]:
    """A NUL-terminated UTF-16LE string: SEC_WCHAR is 16-bit on every SSPI (wchar_t is not)."""
    raw = text.encode("utf-16-le") + b"\x00\x00"
    return ctypes.create_string_buffer(raw, len(raw))


class AbiError(Exception):
    """The library cannot be found or lacks an entry point; the text says which."""


def default_library() -> str:
    """The library to load: $SSPI_HARNESS_NATIVE_LIB, secur32.dll, or sspilib's libsspi."""
    override = os.environ.get(ENV_LIBRARY)
    if override:
        return override
    if sys.platform == "win32":
        return "secur32.dll"
    return str(sspilib_libsspi())


def use_library(path: str) -> str:
    """Make ``path`` the library of every native adapter from now on (``--native-lib``): it is
    checked here, in one line, and set as $SSPI_HARNESS_NATIVE_LIB so that the worker
    subprocesses the adapter runs in, which inherit the environment, load the same one.
    A bare file name is left to the loader's search path."""
    given = Path(path)
    if given.parent != Path(""):
        if given.is_dir():
            raise AbiError(f"{path} is a folder, not a shared library")
        if not given.exists():
            raise AbiError(f"{path} does not exist")
        path = os.path.abspath(path)
    probe(path)
    os.environ[ENV_LIBRARY] = path
    return path


def sspilib_libsspi() -> Path:
    """The libsspi shared library bundled in the installed ``sspilib`` wheel (sspi-rs)."""
    import importlib.util

    spec = importlib.util.find_spec("sspilib")
    if spec is None or not spec.submodule_search_locations:
        raise AbiError(f"sspilib is not installed and ${ENV_LIBRARY} is not set")
    site = Path(next(iter(spec.submodule_search_locations))).parent
    found = sorted((site / "sspilib.libs").glob("libsspi*.so*")) + sorted(
        (site / "sspilib.libs").glob("libsspi*.dylib")
    )
    if not found:
        raise AbiError(f"no libsspi in {site / 'sspilib.libs'} (set ${ENV_LIBRARY})")
    return found[0]


@dataclass
class SspiFunctions:
    """Callable entry points of one loaded library, with where they came from."""

    path: str
    via_table: bool
    AcquireCredentialsHandleW: Any
    FreeCredentialsHandle: Any
    InitializeSecurityContextW: Any
    AcceptSecurityContext: Any
    CompleteAuthToken: Any
    DeleteSecurityContext: Any
    QueryContextAttributesW: Any
    MakeSignature: Any
    VerifySignature: Any
    EncryptMessage: Any
    DecryptMessage: Any


def _open(path: str) -> Any:
    loader: Any = getattr(ctypes, "WinDLL", ctypes.CDLL)
    try:
        return loader(path)
    except OSError as exc:
        raise AbiError(f"cannot load {path}: {exc}") from None


def probe(path: str) -> None:
    """Load ``path`` and check that it exports the entry points, without calling any."""
    lib = _open(path)
    if getattr(lib, "InitSecurityInterfaceW", None) is not None:
        return
    missing = [name for name in PROTOTYPES if getattr(lib, name, None) is None]
    if len(missing) == len(PROTOTYPES):
        raise AbiError(
            f"{path} is not an SSPI library (it exports neither InitSecurityInterfaceW nor "
            "AcquireCredentialsHandleW)"
        )
    if missing:
        raise AbiError(f"{path} exports neither InitSecurityInterfaceW nor {', '.join(missing)}")


def _prototype(name: str) -> Any:
    return _FUNCTYPE(_STATUS, *PROTOTYPES[name])


def load(path: str) -> SspiFunctions:
    """Load ``path`` and bind the entry points, from its function table when it has one."""
    lib = _open(path)
    bound: dict[str, Any] = {}
    init = getattr(lib, "InitSecurityInterfaceW", None)
    via_table = False
    if init is not None:
        init.restype = ctypes.POINTER(SecurityFunctionTableW)
        init.argtypes = []
        table = init()
        if table:
            via_table = True
            for name in PROTOTYPES:
                address = getattr(table.contents, name)
                if address:
                    bound[name] = _prototype(name)(address)
    for name in PROTOTYPES:
        if name in bound:
            continue
        try:
            bound[name] = _prototype(name)((name, lib))
        except AttributeError:
            raise AbiError(f"{path} has no entry point {name}") from None
    return SspiFunctions(path=path, via_table=via_table, **bound)
