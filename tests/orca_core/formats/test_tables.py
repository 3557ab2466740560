"""Markdown tables: header, delimiter row, escaped pipes, one line per row."""

from __future__ import annotations

from orca_core.formats.tables import markdown_table


def test_header_delimiter_and_rows_padded_to_the_widest() -> None:
    assert markdown_table([["a", "b"], ["1"], ["x", "y", "z"]]) == (
        "| a | b |  |\n| --- | --- | --- |\n| 1 |  |  |\n| x | y | z |"
    )


def test_pipes_are_escaped_and_line_breaks_become_spaces() -> None:
    assert markdown_table([["k|v"], ["two\nlines\t here"]]) == "| k\\|v |\n| --- |\n| two lines here |"


def test_empty_rows_are_left_out_and_no_rows_is_no_table() -> None:
    assert markdown_table([["", " "], ["h"], [None, ""]]) == "| h |\n| --- |"
    assert markdown_table([]) == "" and markdown_table([["", ""]]) == ""
