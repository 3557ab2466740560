"""HTML to Markdown: tables as Markdown tables, lists as `- ` items, layout tables unwrapped."""

from __future__ import annotations

from orca_core.formats.html import html_title, html_to_text


def test_data_table_becomes_a_markdown_table() -> None:
    page = """<p>Before</p><table><caption>Tides</caption>
    <thead><tr><th>Port</th><th>High | water</th></tr></thead>
    <tbody><tr><td>Oslo</td><td><p>06:10</p><p>18:32</p></td></tr>
    <tr><td></td><td></td></tr><tr><td>Bergen<br>west</td></tr></tbody></table><p>After</p>"""
    assert html_to_text(page) == (
        "Before\n\nTides\n\n| Port | High \\| water |\n| --- | --- |\n| Oslo | 06:10 18:32 |\n"
        "| Bergen west |  |\n\nAfter"
    )


def test_unclosed_cells_and_rows_still_make_a_table() -> None:
    assert html_to_text("<table><tr><th>a<th>b<tr><td>1<td>2</table>") == "| a | b |\n| --- | --- |\n| 1 | 2 |"
    assert html_to_text("<table><tr><td>x<td>y") == "| x | y |\n| --- | --- |"


def test_layout_tables_are_unwrapped_into_blocks() -> None:
    page = """<table><tr><td><h1>Site</h1><p>Welcome.</p></td>
    <td><table><tr><td>k</td><td>v</td></tr><tr><td>1</td><td>2</td></tr></table></td></tr></table>"""
    assert html_to_text(page) == "# Site\n\nWelcome.\n\n| k | v |\n| --- | --- |\n| 1 | 2 |"
    assert html_to_text("<table><tr><td><p>One cell</p><p>two paragraphs</p></td></tr></table>") == (
        "One cell\n\ntwo paragraphs"
    )


def test_lists_keep_dash_items_and_nesting() -> None:
    page = "<ul><li>tea<ul><li>green</li></ul></li><li><p>coffee</p></li><li></li></ul><ol><li>first<li>second</ol>"
    assert html_to_text(page) == "- tea\n\n  - green\n\n- coffee\n\n- first\n\n- second"


def test_title_is_the_title_element() -> None:
    assert html_title("<html><head><title> Tide\n tables </title></head></html>") == "Tide tables"
    assert html_title("<p>none</p>") is None
