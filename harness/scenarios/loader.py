"""Load the catalogue from TOML, checking every field, and expand scenarios into cases.

A mistake in a catalogue file is a ``CatalogueError`` naming the file, the scenario and the
field: catalogue files are edited by people, and a typo must not turn into a silent pass.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path
from typing import Any

from harness.adapters.base import Capability
from harness.scenarios.model import (
    PROFILES,
    VARIANTS,
    BufferSpec,
    Case,
    Expectation,
    Scenario,
    Step,
)
from harness.sspi.constants import BufferType, SecStatus

DATA_DIR = Path(__file__).parent / "data"
ID_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
OPS = {"sizes", "sign", "verify", "seal", "unseal", "delete"}
BUFFER_FLAGS = {"READONLY": 0x80000000, "READONLY_WITH_CHECKSUM": 0x10000000}

_SCENARIO_KEYS = {"id", "title", "source", "steps", "needs", "variants", "context", "params"}
_STEP_KEYS = {
    "op",
    "by",
    "handle",
    "buffers",
    "qop",
    "seqno",
    "version",
    "null_buffers",
    "count",
    "save",
    "expect",
    "evidence",
    "expect_buffers",
    "expect_sizes",
    "expect_unchanged",
    "expect_qop",
}
_BUFFER_KEYS = {f.name for f in dataclasses.fields(BufferSpec)} - {"source"} | {"from"}


class CatalogueError(ValueError):
    """A malformed catalogue file; the text is one line naming where."""


def _fail(where: str, problem: str) -> CatalogueError:
    return CatalogueError(f"{where}: {problem}")


def _unknown(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise _fail(where, f"unknown field(s) {', '.join(extra)}")


def _status(where: str, name: object) -> str:
    if not isinstance(name, str) or name not in SecStatus.__members__:
        raise _fail(where, f"{name!r} is not a SEC_E_*/SEC_I_* status name")
    return name


def _expectation(where: str, raw: object, evidence: object) -> Expectation:
    if isinstance(raw, str):
        by_profile = {"documented": _status(where, raw)}
    elif isinstance(raw, dict):
        unknown = set(raw) - set(PROFILES)
        if unknown or "documented" not in raw:
            raise _fail(where, f"expect needs a 'documented' entry and only {PROFILES}")
        by_profile = {k: _status(where, v) for k, v in raw.items()}
    else:
        raise _fail(where, "expect must be a status name or a table of profiles")
    if evidence is not None and not isinstance(evidence, dict):
        raise _fail(where, "evidence must be a table of profile = text")
    return Expectation(by_profile, dict(evidence or {}))


def _buffer(where: str, raw: object) -> BufferSpec:
    if not isinstance(raw, dict):
        raise _fail(where, "a buffer must be a table")
    _unknown(where, raw, _BUFFER_KEYS)
    kind = raw.get("type")
    if kind not in BufferType.__members__:
        raise _fail(
            where, f"buffer type {kind!r} is not one of {', '.join(BufferType.__members__)}"
        )
    flags = tuple(raw.get("flags", ()))
    for flag in flags:
        if flag not in BUFFER_FLAGS:
            raise _fail(where, f"buffer flag {flag!r} is not one of {', '.join(BUFFER_FLAGS)}")
    if "hex" in raw:
        try:
            bytes.fromhex(raw["hex"])
        except (TypeError, ValueError):
            raise _fail(where, f"hex {raw['hex']!r} is not hex") from None
    xor = raw.get("xor")
    if xor is not None and not (isinstance(xor, list) and len(xor) == 2):
        raise _fail(where, "xor must be [offset, value]")
    values = {k: v for k, v in raw.items() if k not in ("from", "flags", "xor")}
    return BufferSpec(
        flags=flags, source=raw.get("from"), xor=tuple(xor) if xor else None, **values
    )


SIZE_MEMBERS = {"cbMaxToken", "cbMaxSignature", "cbBlockSize", "cbSecurityTrailer"}


def _sizes(where: str, raw: object) -> dict[str, dict[str, int]] | None:
    """``{cbMaxSignature = 16}`` for every profile, or ``{documented = {...}, windows = {...}}``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(where, "expect_sizes must be a table")
    by_profile = raw if set(raw) <= set(PROFILES) else {"documented": raw}
    if "documented" not in by_profile:
        raise _fail(where, "expect_sizes per profile needs a 'documented' entry")
    for members in by_profile.values():
        if not isinstance(members, dict) or set(members) - SIZE_MEMBERS:
            raise _fail(
                where, f"expect_sizes members must be among {', '.join(sorted(SIZE_MEMBERS))}"
            )
    return {profile: dict(members) for profile, members in by_profile.items()}


QOP_WORDS = ("unchanged", "any")


def _qop(where: str, raw: object) -> dict[str, int | str] | None:
    """``expect_qop = 0`` for every profile, or ``{documented = "any", windows = "unchanged"}``:
    the pfQOP a successful call leaves ("unchanged": the caller's value stays)."""
    if raw is None:
        return None
    by_profile = raw if isinstance(raw, dict) else {"documented": raw}
    if set(by_profile) - set(PROFILES) or "documented" not in by_profile:
        raise _fail(where, f"expect_qop needs a 'documented' entry and only {PROFILES}")
    for value in by_profile.values():
        if not (isinstance(value, int) or value in QOP_WORDS):
            raise _fail(where, f"expect_qop {value!r} is not a number, 'unchanged' or 'any'")
    return dict(by_profile)


def _substitute(value: Any, values: dict[str, object]) -> Any:
    """Put parameter values into a raw step: "{name}" alone keeps the value's type."""
    if isinstance(value, str):
        for name, item in values.items():
            if value == "{" + name + "}":
                return item
            value = value.replace("{" + name + "}", str(item))
        return value
    if isinstance(value, list):
        return [_substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, values) for k, v in value.items()}
    return value


def _combinations(where: str, raw: object) -> list[dict[str, object]]:
    """Every combination of the scenario's ``params`` (a table of name = [values])."""
    if raw is None:
        return [{}]
    if not isinstance(raw, dict) or not raw:
        raise _fail(where, "params must be a table of name = [values]")
    combos: list[dict[str, object]] = [{}]
    for name, choices in raw.items():
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            raise _fail(where, f"param name {name!r} must be lower_snake_case")
        if not isinstance(choices, list) or not choices:
            raise _fail(where, f"param {name!r} needs a non-empty list of values")
        combos = [{**c, name: choice} for c in combos for choice in choices]
    return combos


def _step(where: str, raw: object) -> Step:
    if not isinstance(raw, dict):
        raise _fail(where, "a step must be a table")
    _unknown(where, raw, _STEP_KEYS)
    op = raw.get("op")
    if op not in OPS:
        raise _fail(where, f"op {op!r} is not one of {', '.join(sorted(OPS))}")
    if raw.get("by", "client") not in ("client", "server"):
        raise _fail(where, "by must be 'client' or 'server'")
    if raw.get("handle", "valid") not in ("valid", "zero", "garbage", "other"):
        raise _fail(where, "handle must be 'valid', 'zero', 'garbage' or 'other'")
    buffers = tuple(_buffer(f"{where} buffer {i}", b) for i, b in enumerate(raw.get("buffers", ())))
    expect = raw.get("expect")
    expect_buffers = tuple(
        (int(e["index"]), e["hex"] if "hex" in e else e["text"].encode().hex())
        for e in raw.get("expect_buffers", ())
    )
    return Step(
        op=op,
        by=raw.get("by", "client"),
        handle=raw.get("handle", "valid"),
        buffers=buffers,
        qop=int(raw.get("qop", 0)),
        seqno=int(raw.get("seqno", 0)),
        version=raw.get("version"),
        null_buffers=bool(raw.get("null_buffers", False)),
        count=raw.get("count"),
        save=raw.get("save"),
        expect=None if expect is None else _expectation(where, expect, raw.get("evidence")),
        expect_buffers=expect_buffers,
        expect_sizes=_sizes(where, raw.get("expect_sizes")),
        expect_unchanged=bool(raw.get("expect_unchanged", False)),
        expect_qop=_qop(where, raw.get("expect_qop")),
    )


def _scenario(where: str, raw: dict[str, Any], group: str) -> Scenario:
    _unknown(where, raw, _SCENARIO_KEYS)
    sid = raw.get("id")
    if not isinstance(sid, str) or not ID_PATTERN.match(sid):
        raise _fail(where, f"id {sid!r} is not kebab-case")
    where = f"{where} ({sid})"
    source = raw.get("source")
    if not isinstance(source, dict) or not source.get("ref") or not source.get("quote"):
        raise _fail(where, "source needs 'ref' and 'quote'")
    needs = Capability.NONE
    for name in raw.get("needs", ()):
        try:
            needs |= Capability.parse(name)
        except ValueError as exc:
            raise _fail(where, str(exc)) from None
    variants = tuple(raw.get("variants", VARIANTS))
    for variant in variants:
        if variant not in VARIANTS:
            raise _fail(where, f"variant {variant!r} is not one of {', '.join(VARIANTS)}")
    steps = raw.get("steps")
    if not steps:
        raise _fail(where, "a scenario needs steps")
    context = raw.get("context", {})
    unknown_options = set(context) - {f.name for f in dataclasses.fields(VARIANTS["ntlmv2"][0])}
    if unknown_options:
        raise _fail(where, f"unknown context option(s) {', '.join(sorted(unknown_options))}")
    params = raw.get("params")
    expansions = []
    checks_qop = any(isinstance(step, dict) and "expect_qop" in step for step in steps)
    if checks_qop and not needs & Capability.QOP_OUT:
        raise _fail(where, "a step with expect_qop needs the scenario to need 'qop-out'")
    for values in _combinations(where, params):
        label = ",".join(f"{k}={v}" for k, v in values.items())
        concrete = _substitute(steps, values)
        parsed = tuple(
            _step(f"{where} {label} step {i}".replace("  ", " "), s) for i, s in enumerate(concrete)
        )
        expansions.append((tuple(values.items()), parsed))
    return Scenario(
        id=sid,
        title=str(raw.get("title", sid)),
        source_ref=str(source["ref"]),
        source_quote=str(source["quote"]),
        source_url=str(source.get("url", "")),
        steps=expansions[0][1],
        needs=needs,
        variants=variants,
        context=dict(context),
        group=group,
        expansions=tuple(expansions) if params is not None else (),
    )


def load_scenarios(paths: list[Path] | None = None) -> list[Scenario]:
    """Every scenario of the given TOML files (default: the shipped catalogue)."""
    paths = paths if paths is not None else sorted(DATA_DIR.glob("*.toml"))
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    for path in paths:
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise CatalogueError(f"{path}: {exc}") from None
        for i, raw in enumerate(document.get("scenario", [])):
            scenario = _scenario(f"{path.name} scenario {i}", raw, path.stem)
            if scenario.id in seen:
                raise CatalogueError(f"{path.name}: duplicate scenario id {scenario.id!r}")
            seen.add(scenario.id)
            scenarios.append(scenario)
    return scenarios


def expand(scenario: Scenario) -> list[Case]:
    """One case per variant and parameter combination, with the context options applied.

    Ids read ``scenario[variant]``, or ``scenario[variant,name=value]`` when parameterised.
    """
    cases = []
    expansions = scenario.expansions or (((), scenario.steps),)
    for variant in scenario.variants:
        options, needs = VARIANTS[variant]
        options = dataclasses.replace(options, **scenario.context)  # type: ignore[arg-type]
        if options.datagram:
            needs |= Capability.DATAGRAM
        for values, steps in expansions:
            label = "".join(f",{k}={v}" for k, v in values)
            cases.append(
                Case(
                    f"{scenario.id}[{variant}{label}]",
                    scenario,
                    variant,
                    options,
                    scenario.needs | needs,
                    steps,
                )
            )
    return cases


def load_catalogue(paths: list[Path] | None = None) -> list[Case]:
    """All cases of the catalogue, in file order."""
    return [case for scenario in load_scenarios(paths) for case in expand(scenario)]
