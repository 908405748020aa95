"""Golden vectors: the shipped files lint clean, replay PASS on the reference, and regenerate
byte for byte; lint catches the mistakes a hand edit makes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.adapters import Capability, load_adapter
from harness.adapters.reference import ReferenceAdapter
from harness.ntlm import keys
from harness.ntlm.crypto import rc4k
from harness.ntlm.flags import NegotiateFlags as F
from harness.vectors import check, default_vector_paths, generate, lint

SHIPPED = ["ntlm_keys_test.json", "ntlm_messages_test.json", "ntlm_seal_test.json"]
VECTORS = generate.VECTORS_DIR


def test_default_paths_are_the_shipped_files() -> None:
    assert sorted(p.name for p in default_vector_paths()) == sorted(SHIPPED)


def test_shipped_vectors_lint_clean() -> None:
    assert lint(default_vector_paths()) == []


# ---------------------------------------------------------------- lint on broken copies


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of vectors/ (files and schemas) that a test may break."""
    shutil.copytree(VECTORS / "schemas", tmp_path / "schemas")
    for name in SHIPPED:
        shutil.copy(VECTORS / name, tmp_path / name)
    return tmp_path


def broken(tree: Path, name: str, mutate: Callable[[dict[str, Any]], None]) -> Path:
    path = tree / name
    doc = json.loads(path.read_text(encoding="utf-8"))
    mutate(doc)
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def first_test(doc: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return doc["testGroups"][0]["tests"][index]


def test_copies_lint_clean(tree: Path) -> None:
    assert lint(sorted(tree.glob("*_test.json"))) == []


def test_lint_duplicate_tcid(tree: Path) -> None:
    def dup(doc: dict[str, Any]) -> None:
        first_test(doc, 1)["tcId"] = first_test(doc, 0)["tcId"]

    problems = lint([broken(tree, "ntlm_keys_test.json", dup)])
    assert any("tcId 1: duplicate tcId" in p and "ntlm_keys_test.json" in p for p in problems)


def test_lint_wrong_number_of_tests(tree: Path) -> None:
    def miscount(doc: dict[str, Any]) -> None:
        doc["numberOfTests"] += 1

    problems = lint([broken(tree, "ntlm_seal_test.json", miscount)])
    path = tree / "ntlm_seal_test.json"
    assert problems == [f"{path}: numberOfTests is 8 but the file has 7 tests"]


def test_lint_undefined_flag(tree: Path) -> None:
    def undefined(doc: dict[str, Any]) -> None:
        first_test(doc)["flags"].append("NoSuchNote")

    problems = lint([broken(tree, "ntlm_messages_test.json", undefined)])
    assert any("tcId 1: flag 'NoSuchNote' is not defined in notes" in p for p in problems)


def test_lint_unused_note(tree: Path) -> None:
    def unused(doc: dict[str, Any]) -> None:
        doc["notes"]["Orphan"] = {"bugType": "BASIC", "description": "used by nothing"}

    problems = lint([broken(tree, "ntlm_seal_test.json", unused)])
    assert any("note 'Orphan' is defined but no test uses it" in p for p in problems)


def test_lint_missing_group_source(tree: Path) -> None:
    def sourceless(doc: dict[str, Any]) -> None:
        del doc["testGroups"][1]["source"]

    problems = lint([broken(tree, "ntlm_keys_test.json", sourceless)])
    assert any("group 1" in p and "no source" in p for p in problems)
    assert any("schema: 'source' is a required property" in p for p in problems)


@pytest.mark.parametrize(
    ("mutation", "needle"),
    [
        (lambda t: t.update(bogus=1), "Additional properties are not allowed"),
        (lambda t: t.update(signature="0100000045C844E509DCD1DF2E459D36"), "does not match"),
        (lambda t: t.update(result="maybe"), "is not one of"),
        (lambda t: t.update(plaintext="abc"), "does not match"),
    ],
)
def test_lint_schema_violation(tree: Path, mutation: Callable[[dict[str, Any]], None],
                               needle: str) -> None:
    path = broken(tree, "ntlm_seal_test.json", lambda doc: mutation(first_test(doc)))
    problems = lint([path])
    assert any(p.startswith(f"{path} tcId 1: schema: ") and needle in p for p in problems), problems


def test_lint_flag_names_must_match(tree: Path) -> None:
    def rename(doc: dict[str, Any]) -> None:
        doc["testGroups"][0]["flagNames"].pop()

    problems = lint([broken(tree, "ntlm_seal_test.json", rename)])
    assert any("flagNames do not match negotiateFlags" in p for p in problems)


def test_lint_malformed_json_and_missing_file(tree: Path) -> None:
    bad = tree / "ntlm_keys_test.json"
    bad.write_text(bad.read_text(encoding="utf-8")[:-20], encoding="utf-8")
    missing = tree / "nothing_test.json"
    problems = lint([bad, missing])
    assert len(problems) == 2
    assert problems[0].startswith(f"{bad}: malformed JSON")
    assert problems[1].startswith(f"{missing}: cannot read")


def test_lint_missing_schema(tree: Path) -> None:
    (tree / "schemas" / "ntlm_seal_schema.json").unlink()
    problems = lint([tree / "ntlm_seal_test.json"])
    assert len(problems) == 1 and "cannot read schema" in problems[0]


# ---------------------------------------------------------------- check


def test_reference_passes_every_vector() -> None:
    paths = default_vector_paths()
    results = check(paths, load_adapter("reference")())
    declared = sum(json.loads(p.read_text(encoding="utf-8"))["numberOfTests"] for p in paths)
    assert len(results) == declared
    failing = [r for r in results if r.outcome != "PASS"]
    assert failing == []
    acceptable = [r for r in results if r.result == "acceptable"]
    assert acceptable and all(r.detail.startswith("acceptable: differs") for r in acceptable)


class NoCapabilities(ReferenceAdapter):
    name = "bare"
    capabilities = Capability.NONE


class ExplodingSeal(ReferenceAdapter):
    name = "exploding"

    def encrypt_message(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("native call crashed\nsecond line")


def test_missing_capabilities_are_unsupported() -> None:
    results = check(default_vector_paths(), NoCapabilities())
    assert results and {r.outcome for r in results} == {"UNSUPPORTED"}
    assert any("NTLM_PRIMITIVES" in r.detail for r in results)
    assert any("SESSION_KEY" in r.detail for r in results)


def test_adapter_exception_is_error() -> None:
    results = check([VECTORS / "ntlm_seal_test.json"], ExplodingSeal())
    by_class = {r.tcId: (r.result, r.outcome, r.detail) for r in results}
    errors = [v for v in by_class.values() if v[1] == "ERROR"]
    assert errors and all(v[2] == "RuntimeError: native call crashed" for v in errors)
    # invalid vectors only call DecryptMessage, which still works
    assert all(v[1] == "PASS" for v in by_class.values() if v[0] == "invalid")


def test_check_reports_unusable_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad_test.json"
    bad.write_text("{", encoding="utf-8")
    [result] = check([bad], load_adapter("reference")())
    assert result.outcome == "ERROR" and result.tcId == 0


# ---------------------------------------------------------------- generator


def test_generator_is_deterministic(tmp_path: Path) -> None:
    written = generate.main(tmp_path)
    assert sorted(p.name for p in written) == sorted(SHIPPED)
    for name in SHIPPED:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), name


# ---------------------------------------------------------------- the spec's bytes, directly


def test_msnlmp_4_2_values() -> None:
    """A few §4.2 values straight from harness.ntlm.keys, independent of the vector files."""
    h = bytes.fromhex
    server, client = h("0123456789abcdef"), h("aaaaaaaaaaaaaaaa")
    random_key = b"\x55" * 16
    assert keys.lmowf_v1("Password") == h("e52cac67419a9a224a3b108f3fa6cb6d")
    assert keys.ntowf_v1("Password") == h("a4f49c406510bdcab6824ee7c30fd852")
    nt_v2 = keys.ntowf_v2("Password", "User", "Domain")
    assert nt_v2 == h("0c868a403bfd7a93a3001ef22ef02e3f")

    v1 = keys.compute_response_v1(0xE2028233, keys.ntowf_v1("Password"),
                                  keys.lmowf_v1("Password"), server, client)
    assert v1.nt_challenge_response == h("67c43011f30298a2ad35ece64f16331c44bdbed927841f94")
    assert v1.session_base_key == h("d87262b0cde4b1cb7499becccdf10784")
    assert rc4k(v1.session_base_key, random_key) == h("518822b1b3f350c8958682ecbb3e3cb7")

    ess = keys.compute_response_v1(0x820A8233, keys.ntowf_v1("Password"),
                                   keys.lmowf_v1("Password"), server, client)
    kx = keys.kxkey(0x820A8233, ess.session_base_key, ess.lm_challenge_response, server,
                    keys.lmowf_v1("Password"), ntlm_v2=False)
    assert kx == h("eb93429a8bd952f8b89c55b87f475edc")
    assert keys.sealkey(0x820A8233, kx, client_to_server=True) == h(
        "04dd7f014d8504d265a25cc86a3a7c06"
    )

    info = h("02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000")
    v2 = keys.compute_response_v2(nt_v2, nt_v2, server, client, b"\x00" * 8, info)
    assert v2.nt_challenge_response[:16] == h("68cd0ab851e51c96aabc927bebef6a1c")
    assert v2.lm_challenge_response == h("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    assert v2.session_base_key == h("8de40ccadbc14a82f15cb0ad0de95ca3")
    assert rc4k(v2.session_base_key, random_key) == h("c5dad2544fc9799094ce1ce90bc9d03e")
    flags = 0xE28A8233
    assert flags & F.KEY_EXCH
    assert keys.signkey(flags, random_key, client_to_server=True) == h(
        "4788dc861b4782f35d43fd98fe1a2d39"
    )
