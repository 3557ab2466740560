"""An /api/embed answer's bytes become float32 vectors on the fast path (simdjson) exactly as on the general one
(orjson and check_vectors), and every wrong answer is refused with the general path's reason."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from orca_resources import ollama_api
from orca_resources.errors import InvalidResponse
from orca_resources.ollama_api import check_vectors, vectors_from_answer


def answer(vectors) -> bytes:
    return json.dumps({"model": "nomic-embed-text", "embeddings": vectors, "total_duration": 12}).encode()


def test_the_fast_path_gives_the_very_floats_of_the_general_one():
    rng = np.random.default_rng(7)
    vectors = (rng.standard_normal((32, 768)) * 10.0 ** rng.integers(-8, 3, (32, 768))).tolist()
    body = answer(vectors)
    fast = vectors_from_answer(body, 32, 768)
    assert fast.dtype == np.float32 and fast.shape == (32, 768)
    np.testing.assert_array_equal(fast, check_vectors(orjson.loads(body), 32, 768))
    np.testing.assert_array_equal(fast, np.asarray(vectors, dtype=np.float64).astype(np.float32))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"embeddings": [[0.1, NaN], [0.3, 0.4]]}', "NaN/infinite values in 1 of 2"),
        (answer([[0.1, 1e400], [0.3, 0.4]]), "NaN/infinite values in 1 of 2"),
        (answer([[0.0, 0.0], [0.3, 0.4]]), "1 all-zero vector"),
        (answer([[0.1, 0.2], [0.3]]), "not equal-length lists"),
        (answer([[0.1, 0.2], [0.3, "x"]]), "not equal-length lists of numbers"),
        (answer([[0.1, 0.2], 0.3]), "not equal-length lists"),
        (answer([[0.1, 0.2, 0.5], [0.3, 0.4, 0.6]]), "3-dimensional vectors, expected 2"),
        (answer([[0.1, 0.2]]), "1 vectors for 2 inputs"),
        (b'{"model": "nomic-embed-text"}', "without an 'embeddings' list"),
        (b"[1, 2]", "without an 'embeddings' list"),
        (b'{"embeddings": [[0.1, 0.2], [0.3', "invalid JSON"),
    ],
)
def test_a_wrong_answer_is_refused_with_its_reason(body, reason):
    with pytest.raises(InvalidResponse, match=reason):
        vectors_from_answer(body, 2, 2)


def test_answers_parsed_one_after_another_do_not_interfere():
    first, second = answer([[1.0, 2.0]]), answer([[3.0, 4.0], [5.0, 6.0]])
    with pytest.raises(InvalidResponse):
        vectors_from_answer(b'{"embeddings": [[1.0, "x"]]}', 1, 2)  # a refusal leaves no parser state behind
    assert vectors_from_answer(first, 1, 2).tolist() == [[1.0, 2.0]]
    assert vectors_from_answer(second, 2, 2).tolist() == [[3.0, 4.0], [5.0, 6.0]]


def test_a_huge_but_finite_component_is_no_fault():
    # Its square overflows float32, which the one-pass check must not take for an infinity.
    assert vectors_from_answer(answer([[1e30, 0.5], [0.3, 0.4]]), 2, 2)[0, 0] == np.float32(1e30)


def test_a_parser_still_referenced_is_replaced_not_reused(monkeypatch):
    held = ollama_api._parse(answer([[9.0, 9.0]]))  # a value of this thread's parser, kept alive
    monkeypatch.setattr(ollama_api, "json_body", lambda body: pytest.fail("fell back to the general parse"))
    assert vectors_from_answer(answer([[1.0, 2.0]]), 1, 2).tolist() == [[1.0, 2.0]]
    assert held["embeddings"][0][0] == 9.0  # the value held is untouched
