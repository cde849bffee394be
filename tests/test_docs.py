"""docs/cli.md is generated from the click commands; these tests fail when it is stale or incomplete."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from sescontacts.cli import main as cli_main
from sescontacts.docgen import (
    FIDELITY_STATUSES,
    documented_variables,
    fidelity_rows,
    render_cli,
    render_ses_differences,
    with_ses_differences,
)

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"


def _walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from _walk(sub, f"{path} {name}")


def test_cli_reference_is_current() -> None:
    assert CLI_DOC.exists(), "docs/cli.md is missing: run make docs"
    if CLI_DOC.read_text() != render_cli():
        pytest.fail("docs/cli.md is stale (the commands changed since it was generated): run make docs")


def test_every_command_option_and_variable_is_in_the_reference() -> None:
    text = render_cli()
    for path, command in _walk(cli_main, "sescontacts"):
        assert f"`{path}`" in text, f"{path} missing from the reference"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert all(opt in text for opt in param.opts), f"{path} {param.opts} missing"
                for envvar in [param.envvar] if isinstance(param.envvar, str) else param.envvar or []:
                    assert f"`{envvar}`" in text


def test_every_sescontacts_variable_in_the_code_is_documented() -> None:
    used: dict[str, Path] = {}
    for source in (ROOT / "src" / "sescontacts").rglob("*.py"):
        if source.name != "docgen.py":
            for name in re.findall(r"SESCONTACTS_[A-Z0-9_]+", source.read_text()):
                used.setdefault(name, source)
    assert used, "the scan found no variables at all: is the source tree where this test expects it?"
    undocumented = {
        name: str(path.relative_to(ROOT)) for name, path in used.items() if name not in documented_variables()
    }
    assert not undocumented, (
        f"undocumented environment variables {undocumented}: give the option an envvar or add the variable to "
        "OTHER_VARIABLES in src/sescontacts/docgen.py, then run make docs"
    )


def test_rendering_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    first = render_cli()
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("TERM", "dumb")
    assert render_cli() == first


def test_every_test_docs_security_names_exists() -> None:
    """docs/security.md backs each claim with a test by name; a renamed or removed test must fail here."""
    text = (ROOT / "docs" / "security.md").read_text()
    references = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(references) >= 8
    for path, name in references:
        source = ROOT / path
        assert source.exists(), f"docs/security.md names {path}, which does not exist"
        if name:
            assert re.search(rf"^(async )?def {name}\(", source.read_text(), re.M), f"{path}::{name} is not a test"


def test_every_module_docs_architecture_names_exists() -> None:
    """docs/architecture.md is the map of the code as it is: a path it names that no longer exists is drift."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    hypothetical = {"store/postgres/", "tests/test_store_postgres.py"}  # the sketch of a third backend
    names = set(re.findall(r"(?<![\w/.-])((?:[a-z_]+/)*[a-z_]+(?:\.py|/))(?![\w])", text)) - hypothetical
    assert len(names) >= 30
    present = {
        f"{path.relative_to(ROOT)}/" if path.is_dir() else str(path.relative_to(ROOT)) for path in ROOT.rglob("*")
    }
    missing = sorted(name for name in names if not any(path == name or path.endswith("/" + name) for path in present))
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


FIDELITY_DOC = ROOT / "docs" / "ses-fidelity.md"


def test_the_readme_differences_from_ses_are_rendered_from_the_fidelity_table() -> None:
    readme = (ROOT / "README.md").read_text()
    if with_ses_differences(readme, FIDELITY_DOC.read_text()) != readme:
        pytest.fail("README.md's 'Differences from SES' is stale (docs/ses-fidelity.md changed): run make docs")


def test_every_fidelity_row_has_a_known_status_sources_and_existing_tests() -> None:
    rows = fidelity_rows(FIDELITY_DOC.read_text())
    assert len(rows) >= 50, "the table parsed to fewer rows than it has: is its header still '| id |'?"
    assert len({row.id for row in rows}) == len(rows), "two rows share an id"
    tags = {"ref", "guide", "model", "probe", "moto", "users", "aws", "ours"}
    for row in rows:
        assert row.status in FIDELITY_STATUSES, f"{row.id}: status {row.status!r}"
        named = set(re.findall(r"\(([a-z, ]+)\)", row.ses))
        cited = {tag.strip() for group in named for tag in group.split(",")} & tags
        assert cited or "Not documented" in row.ses, f"{row.id}: the SES column cites no source"
        for test in row.tests:
            path, _, name = test.partition("::")
            source = ROOT / "tests" / path
            assert source.exists(), f"{row.id} names {test}: no such file"
            assert re.search(rf"^(async )?def {name}\(", source.read_text(), re.M), f"{row.id}: {test} is not a test"


def test_a_rendered_section_lists_only_the_rows_that_differ_or_are_unsettled() -> None:
    rows = fidelity_rows(FIDELITY_DOC.read_text())
    section = render_ses_differences(rows)
    for row in rows:
        assert (f"({row.id})" in section) == (row.status != "match"), row.id
