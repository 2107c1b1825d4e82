"""docs/columns.md's table and README's list of misleading names are what the declaration
(marketlake.columns) renders: a declaration changed without the docs fails here."""

from __future__ import annotations

from pathlib import Path

from marketlake.columns import (
    DAILY_PRICES,
    between_markers,
    markdown_exceptions,
    markdown_table,
)

REPO = Path(__file__).resolve().parents[2]
REGENERATE = (
    'regenerate it: .venv/bin/python -c "import marketlake.columns as c; '
    'print(c.{}())" and paste it between the markers of {}'
)


def test_docs_columns_md_holds_the_declarations_table():
    doc = (REPO / "docs" / "columns.md").read_text(encoding="utf-8")
    assert between_markers(doc) == markdown_table(), REGENERATE.format(
        "markdown_table", "docs/columns.md"
    )


def test_the_readme_lists_the_misleading_names_and_links_the_table():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert between_markers(readme) == markdown_exceptions(), REGENERATE.format(
        "markdown_exceptions", "README.md"
    )
    assert "[docs/columns.md](docs/columns.md)" in readme
    assert len(readme.splitlines()) <= 300


def test_the_table_has_a_row_per_column_and_escapes_markdown():
    rows = markdown_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(DAILY_PRICES)
    parkinson = next(row for row in rows if row.startswith("| `parkinson_vol` "))
    # Its |ln(h/l)| would end the cell, and *_20d start italics, unescaped.
    assert "\\|ln(adj_high / adj_low)\\|" in parkinson and "\\*_20d" in parkinson
    assert parkinson.count(" | ") == 2  # three cells: column, unit, definition
    exceptions = markdown_exceptions().splitlines()
    assert [line.split("`")[1] for line in exceptions] == [
        name for name, column in DAILY_PRICES.items() if column.note
    ]


def test_between_markers_is_empty_without_them():
    assert between_markers("no markers here") == ""
