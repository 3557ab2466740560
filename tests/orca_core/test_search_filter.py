"""Search filters as the CLI writes them, and the rows they keep."""

from __future__ import annotations

import pytest

from orca_core.search_filter import FilterError, SearchFilter, matches


def test_cli_filters_parse_into_one_filter():
    where = SearchFilter.parse_cli(["team=infra", "tier=a=b"], "guides/", "2-5")
    assert where == SearchFilter({"team": "infra", "tier": "a=b"}, "guides/", 2, 5)
    assert SearchFilter.parse_cli([], None, "3") == SearchFilter({}, None, 3, 3)
    assert SearchFilter.parse_cli([], None, None).empty


@pytest.mark.parametrize(
    ("where", "pages", "message"),
    [(["team"], None, "KEY=VALUE"), (["=x"], None, "KEY=VALUE"), ([], "two", "N or N-M"), ([], "5-2", "empty")],
)
def test_bad_cli_filters_say_what_is_expected(where, pages, message):
    with pytest.raises(FilterError, match=message):
        SearchFilter.parse_cli(where, None, pages)


def test_values_match_exactly_or_by_their_json_spelling_from_the_cli():
    assert matches("infra", "infra") and not matches("Infra", "infra")
    assert matches(3, 3) and matches(3, "3") and matches(True, "true") and matches(None, "null")
    assert not matches(True, 1) and not matches("3", 3) and not matches(3.5, "3")
