"""``vectors lint``: find what is wrong with vector files, as one line per problem.

Vector files are generated, so a problem here means a hand edit or a generator bug; lint is the
gate that keeps ids, counts and flags honest (DESIGN.md §2.3). It never raises for a bad file:
unreadable or malformed input is reported like any other problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from harness.ntlm.flags import flag_names

SCHEMA_DIR_NAME = "schemas"
MAX_MESSAGE = 160


def lint(paths: Iterable[Path | str]) -> list[str]:
    """All problems in the given vector files; an empty list means they are clean."""
    problems: list[str] = []
    for path in paths:
        problems.extend(lint_file(Path(path)))
    return problems


def lint_file(path: Path) -> list[str]:
    """Problems of one file, each line starting with the file name."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return [f"{path}: cannot read: {exc.strerror or exc}"]
    except UnicodeDecodeError as exc:
        return [f"{path}: not UTF-8: {exc.reason} at byte {exc.start}"]
    except json.JSONDecodeError as exc:
        return [f"{path}: malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    if not isinstance(doc, dict):
        return [f"{path}: the top level is not a JSON object"]
    return _schema_problems(path, doc) + _content_problems(path, doc)


def _groups(doc: dict[str, Any]) -> list[dict[str, Any]]:
    groups = doc.get("testGroups")
    return [g for g in groups if isinstance(g, dict)] if isinstance(groups, list) else []


def _tests(group: dict[str, Any]) -> list[dict[str, Any]]:
    tests = group.get("tests")
    return [t for t in tests if isinstance(t, dict)] if isinstance(tests, list) else []


def _where(path: Path, doc: dict[str, Any], location: list[Any]) -> str:
    """``file tcId N`` when a schema error sits inside a test, else ``file``."""
    if len(location) >= 4 and location[0] == "testGroups" and location[2] == "tests":
        try:
            tc_id = doc["testGroups"][location[1]]["tests"][location[3]].get("tcId")
        except (IndexError, KeyError, TypeError, AttributeError):
            tc_id = None
        if tc_id is not None:
            return f"{path} tcId {tc_id}"
    return str(path)


def _schema_problems(path: Path, doc: dict[str, Any]) -> list[str]:
    name = doc.get("schema")
    if not isinstance(name, str) or not name:
        return [f"{path}: no `schema` field naming the file's JSON Schema"]
    if Path(name).name != name:
        return [f"{path}: `schema` must be a bare file name, not {name!r}"]
    schema_path = path.parent / SCHEMA_DIR_NAME / name
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except OSError as exc:
        return [f"{path}: cannot read schema {schema_path}: {exc.strerror or exc}"]
    except (ValueError, SchemaError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [f"{path}: schema {schema_path} is not a valid JSON Schema: {first}"]
    problems = []
    errors = Draft202012Validator(schema).iter_errors(doc)
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        message = error.message
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        where = _where(path, doc, list(error.absolute_path))
        problems.append(f"{where}: schema: {message} (at {error.json_path})")
    return problems


def _content_problems(path: Path, doc: dict[str, Any]) -> list[str]:
    """What a schema cannot say: unique ids, counts, flag definitions, sources, flag names."""
    problems: list[str] = []
    raw_notes = doc.get("notes")
    notes: dict[str, Any] = raw_notes if isinstance(raw_notes, dict) else {}
    seen: dict[Any, int] = {}
    used: set[str] = set()
    count = 0
    for index, group in enumerate(_groups(doc)):
        tests = _tests(group)
        ids = [t.get("tcId") for t in tests]
        label = f"{path} group {index}"
        if ids:
            label += f" (tcId {ids[0]}..{ids[-1]})"
        if not group.get("source"):
            problems.append(f"{label}: the group has no source")
        raw_flags, names = group.get("negotiateFlags"), group.get("flagNames")
        if isinstance(raw_flags, str) and isinstance(names, list):
            try:
                expected = flag_names(int(raw_flags, 16))
            except ValueError:
                expected = None
            if expected is not None and names != expected:
                problems.append(
                    f"{label}: flagNames do not match negotiateFlags {raw_flags} "
                    f"(expected {expected})"
                )
        for test in tests:
            count += 1
            tc_id = test.get("tcId")
            key = tc_id if isinstance(tc_id, int | str) else repr(tc_id)
            if key in seen:
                problems.append(f"{path} tcId {tc_id}: duplicate tcId (first in group {seen[key]})")
            else:
                seen[key] = index
            flags = test.get("flags")
            for flag in flags if isinstance(flags, list) else []:
                if not isinstance(flag, str):
                    continue
                used.add(flag)
                if flag not in notes:
                    problems.append(f"{path} tcId {tc_id}: flag {flag!r} is not defined in notes")
    declared = doc.get("numberOfTests")
    if declared != count:
        problems.append(f"{path}: numberOfTests is {declared!r} but the file has {count} tests")
    for name in notes:
        if name not in used:
            problems.append(f"{path}: warning: note {name!r} is defined but no test uses it")
    return problems


def main(argv: list[str] | None = None) -> int:
    """Lint the given files (default: the shipped vectors); 1 when there are problems.

    For the ``vectors lint`` command; not run with ``python -m`` because the package exports a
    function of the same name as this module.
    """
    import sys

    from harness.vectors.check import default_vector_paths

    args = sys.argv[1:] if argv is None else argv
    problems = lint(args or default_vector_paths())
    for line in problems:
        print(line)
    return 1 if problems else 0
