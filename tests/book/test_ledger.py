"""The claims ledger: the book page is the rendered registry, and every chapter records the claims it owns."""
import re
from pathlib import Path

import pytest

from sdl_paper.book import chapters, ledger

ROOT = Path(__file__).resolve().parents[2]


def test_the_book_page_is_the_rendered_registry():
    page = (ROOT / "book" / "ledger.md").read_text()
    table = page.split(ledger.START + "\n", 1)[1].split(ledger.END, 1)[0]
    assert table == ledger.render(), "book/ledger.md is stale: run sdl_paper.book.ledger.write('book/ledger.md')"


def test_every_claim_row_links_a_chapter_that_exists_and_records_it_once():
    for key, claim in ledger.CLAIMS.items():
        if claim.chapter is None:
            assert claim.verdict in ledger.VERDICTS
            continue
        assert claim.chapter in chapters.CHAPTERS, f"{key}: unknown chapter {claim.chapter}"
        text = chapters.CHAPTERS[claim.chapter].path.read_text()
        assert len(re.findall(rf'ledger\.record\(\s*"{key}"', text)) == 1, f"{claim.chapter} must record {key} once"
        assert f"({claim.label})=" in text, f"{claim.chapter} lacks the section label {claim.label}"


def test_record_refuses_unknown_claims_and_verdicts():
    with pytest.raises(KeyError, match="unknown or untested claim 'nope'"):
        ledger.record("nope", "holds", "1")
    with pytest.raises(KeyError, match="untested"):
        ledger.record("exp_resampling_llm", "holds", "1")
    with pytest.raises(ValueError, match="is not one of"):
        ledger.record("thm3_1", "mostly true", "1")


def test_write_replaces_only_the_table(tmp_path):
    page = tmp_path / "l.md"
    page.write_text(f"# head\n\n{ledger.START}\nold table\n{ledger.END}\n\ntail\n")
    ledger.write(page)
    text = page.read_text()
    assert text.startswith("# head\n") and text.endswith("\ntail\n") and "old table" not in text
    assert ledger.render() in text
