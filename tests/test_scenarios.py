"""The catalogue loads, is well-formed, and the loader rejects malformed files in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenarios import CatalogueError, load_catalogue
from harness.scenarios.loader import load_scenarios


def test_catalogue_has_at_least_twenty_scenarios_with_sources() -> None:
    scenarios = load_scenarios()
    assert len(scenarios) >= 20
    for scenario in scenarios:
        assert scenario.source_ref and scenario.source_quote, scenario.id
    ids = [c.id for c in load_catalogue()]
    assert len(ids) == len(set(ids))


def test_catalogue_covers_the_issue_topics() -> None:
    ids = {s.id for s in load_scenarios()}
    for needed in [
        "sanity",
        "sizes-after-establish",
        "sign-verify-client-to-server",
        "sign-verify-server-to-client",
        "sign-tamper-data",
        "sign-tamper-checksum",
        "sign-missing-token",
        "sign-token-too-small",
        "sign-readonly-not-signed",
        "sign-readonly-with-checksum-signed",
        "sign-garbage-handle",
        "sign-deleted-handle",
        "seal-unseal-client-to-server",
        "verify-replay",
        "verify-reorder",
        "qop-out-unseal",
        "qop-out-verify",
        "handle-other-context-verify",
        "handle-other-context-unseal",
    ]:
        assert needed in ids


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


GOOD_STEP = (
    'steps = [{ op = "sign", buffers = [{ type = "TOKEN", size = 16 }], expect = "SEC_E_OK" }]'
)
SOURCE = 'source = { ref = "r", quote = "q" }'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f'id = "Bad_Id"\n{SOURCE}\n{GOOD_STEP}', "kebab-case"),
        (f'id = "x"\n{GOOD_STEP}', "source needs"),
        (f'id = "x"\n{SOURCE}\nsteps = [{{ op = "frobnicate" }}]', "op 'frobnicate'"),
        (f'id = "x"\n{SOURCE}\nsteps = [{{ op = "sign", expect = "SEC_E_NOPE" }}]', "SEC_E_NOPE"),
        (f'id = "x"\n{SOURCE}\nneeds = ["teleport"]\n{GOOD_STEP}', "unknown capability"),
        (f'id = "x"\n{SOURCE}\ncolour = "red"\n{GOOD_STEP}', "unknown field(s) colour"),
        (
            f'id = "x"\n{SOURCE}\nsteps = [{{ op = "sign", buffers = [{{ type = "WAT" }}] }}]',
            "buffer type 'WAT'",
        ),
        (f'id = "x"\n{SOURCE}\nvariants = ["ntlmv9"]\n{GOOD_STEP}', "variant 'ntlmv9'"),
        (
            f'id = "x"\n{SOURCE}\nsteps = [{{ op = "unseal", expect_qop = 0 }}]',
            "needs the scenario to need 'qop-out'",
        ),
        (
            f'id = "x"\n{SOURCE}\nneeds = ["qop-out"]\n'
            'steps = [{ op = "unseal", expect_qop = "kept" }]',
            "expect_qop 'kept' is not a number",
        ),
        (
            f'id = "x"\n{SOURCE}\nneeds = ["qop-out"]\n'
            'steps = [{ op = "unseal", expect_qop = { windows = "unchanged" } }]',
            "expect_qop needs a 'documented' entry",
        ),
    ],
)
def test_loader_rejects_malformed_scenarios(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, "[[scenario]]\n" + body + "\n")
    with pytest.raises(CatalogueError) as err:
        load_scenarios([path])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_loader_rejects_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="bad.toml"):
        load_scenarios([_write(tmp_path, "[[scenario]\nid=")])


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    one = f'[[scenario]]\nid = "x"\n{SOURCE}\n{GOOD_STEP}\n'
    with pytest.raises(CatalogueError, match="duplicate scenario id 'x'"):
        load_scenarios([_write(tmp_path, one + one)])
