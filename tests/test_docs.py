"""Generated README blocks: the embedding helper, and that the README matches the reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tailtag.cli import main
from tailtag.docs import embed, generated_block

ROOT = Path(__file__).resolve().parents[1]
TEXT = "intro\n<!-- BEGIN generated: t -->\nold\n<!-- END generated: t -->\noutro\n"


def test_embed_replaces_only_the_block():
    out = embed(TEXT, "t", "new | table")
    assert (
        out == "intro\n<!-- BEGIN generated: t -->\nnew | table\n<!-- END generated: t -->\noutro\n"
    )
    assert generated_block(out, "t") == "new | table\n"
    assert embed(out, "t", "new | table") == out  # idempotent


def test_embed_missing_block_is_a_clear_error():
    with pytest.raises(KeyError, match="no generated block 'other'"):
        embed(TEXT, "other", "x")


def test_embed_command(tmp_path):
    doc, src = tmp_path / "README.md", tmp_path / "table.md"
    doc.write_text(TEXT)
    src.write_text("fresh\n")
    result = CliRunner().invoke(main, ["embed", str(doc), "--block", f"t={src}"])
    assert result.exit_code == 0, result.output
    assert generated_block(doc.read_text(), "t") == "fresh\n"
    bad = CliRunner().invoke(main, ["embed", str(doc), "--block", "t"])
    assert bad.exit_code != 0 and "is not NAME=FILE" in bad.output


@pytest.mark.parametrize("attribute", ["archetype", "sleevetype"])
def test_readme_shows_the_committed_demo_results(attribute):
    """The README's tables are the committed comparison reports, not typed numbers."""
    report = ROOT / f"reports/compare/{attribute}/comparison.md"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert generated_block(readme, f"compare-{attribute}") == report.read_text(encoding="utf-8")
