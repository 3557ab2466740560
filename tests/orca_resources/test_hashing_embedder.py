"""The offline embedder, plain (`HashingEmbedder`) and as a Dagster resource (`HashingEmbedderResource`).

Deterministic, unit-length vectors that rank similar texts first; the resource gives the plain embedder's.
"""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import numpy as np
import pytest

from orca_core.embedder import BatchOutcome, Embedder, ModelInfo
from orca_resources.hashing_embedder import MODEL_NAME, HashingEmbedder, HashingEmbedderResource

Hashing = HashingEmbedder | HashingEmbedderResource  # every test of the vectors runs on both


@pytest.fixture(params=["plain", "resource"])
def embedder(request) -> Hashing:
    if request.param == "plain":
        return HashingEmbedder(dimensions=256, batch_size=4)
    return HashingEmbedderResource(dimensions=256, batch_size=4)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b) / float(np.linalg.norm(a) * np.linalg.norm(b))


def test_satisfies_the_embedder_protocol() -> None:
    resource = HashingEmbedderResource()
    assert isinstance(resource, Embedder)
    assert resource.dimensions == 768 and resource.batch_size == 256
    plain = HashingEmbedder()
    assert isinstance(plain, Embedder)
    assert plain.dimensions == 768 and plain.batch_size == 256
    plain.close()  # nothing to release, but every embedder can be closed


def test_the_resource_delegates_to_a_plain_embedder() -> None:
    resource = HashingEmbedderResource(dimensions=64, batch_size=8)
    resource.setup_for_execution(dg.build_init_resource_context())
    plain = resource.embedder()
    assert (type(plain), plain.dimensions, plain.batch_size) == (HashingEmbedder, 64, 8)
    assert resource.model_info() == HashingEmbedder(dimensions=64).model_info()
    np.testing.assert_array_equal(resource.embed_query("krill"), HashingEmbedder(dimensions=64).embed_query("krill"))
    resource.teardown_after_execution(dg.build_init_resource_context())
    assert resource.embedder() is not plain


def test_model_info_describes_the_algorithm(embedder: Hashing) -> None:
    info = embedder.model_info()
    assert isinstance(info, ModelInfo)
    assert (info.name, info.dimensions, info.context_length, info.normalized) == (MODEL_NAME, 256, 8192, True)
    assert info.name == "orca-hashing-v1"
    assert info.digest.startswith("sha256:") and len(info.digest) == len("sha256:") + 64
    assert info.prefix_for("document") == "" and info.prefix_for("query") == ""
    assert info == HashingEmbedderResource(dimensions=256).model_info()  # stable across instances
    other = HashingEmbedderResource(dimensions=128).model_info()
    assert other.digest != info.digest and other.identity != info.identity


def test_vectors_have_the_configured_dimensions_and_unit_norm(embedder: Hashing) -> None:
    texts = ["hello world", "Hello, World!", "東京は日本の首都です", "भारत एक देश है", "a", "x" * 20_000]
    vectors = embedder.embed_texts(texts)
    assert vectors.shape == (len(texts), 256) and vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("text", ["", "   ", "!!! ??? ...", "\U0001f600\U0001f600"])
def test_texts_without_words_still_get_a_stable_unit_vector(embedder: Hashing, text: str) -> None:
    vector = embedder.embed_query(text)
    assert np.count_nonzero(vector) >= 1
    assert np.linalg.norm(vector) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_array_equal(vector, embedder.embed_query(text))


def test_deterministic_across_calls_batches_and_processes(embedder: Hashing) -> None:
    texts = ["The harbour master logs every ship.", "Tides decide when freighters dock.", "東京の電車"]
    together = embedder.embed_texts(texts)
    alone = np.stack([embedder.embed_query(text) for text in texts])
    np.testing.assert_array_equal(together, alone)  # a vector never depends on its batch neighbours
    np.testing.assert_array_equal(together, embedder.embed_texts(texts))
    # Python's hash() is salted per process; the vectors must not be.
    script = (
        "from orca_resources.hashing_embedder import HashingEmbedderResource as H;"
        f"print(H(dimensions=256).embed_query({texts[0]!r}).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other_process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert bytes.fromhex(other_process.stdout.strip()) == together[0].tobytes()


def test_near_duplicate_is_closer_than_unrelated_text(embedder: Hashing) -> None:
    query = embedder.embed_query("The quick brown fox jumps over the lazy dog")
    near = embedder.embed_query("the quick brown fox jumped over a lazy dog!")
    unrelated = embedder.embed_query("Quarterly revenue grew in the semiconductor division")
    assert cosine(query, near) > 0.6
    assert cosine(query, near) > cosine(query, unrelated) + 0.3


def test_cjk_without_spaces_gets_useful_features(embedder: Hashing) -> None:
    tokyo = embedder.embed_query("東京は日本の首都です。人口は千四百万人です。")
    tokyo_again = embedder.embed_query("東京は日本の首都です。")
    bees = embedder.embed_query("ミツバチは冬に巣を温めます。")
    assert cosine(tokyo, tokyo_again) > cosine(tokyo, bees)


def test_case_and_width_are_normalised(embedder: Hashing) -> None:
    np.testing.assert_array_equal(embedder.embed_query("Orca Search"), embedder.embed_query("ORCA search"))
    np.testing.assert_array_equal(embedder.embed_query("ＡＢＣ１２３"), embedder.embed_query("abc123"))


def test_repetition_counts_sublinearly(embedder: Hashing) -> None:
    base = embedder.embed_query("apple banana")
    twice = embedder.embed_query("apple apple banana")
    many = embedder.embed_query("apple " * 50 + "banana")
    banana = embedder.embed_query("banana")
    assert cosine(base, banana) > cosine(twice, banana) > cosine(many, banana) > 0.05


def test_embed_batches_yields_one_outcome_per_batch_in_order(embedder: Hashing) -> None:
    batches = [["alpha", "beta", "gamma"], [], ["delta"]]
    outcomes = list(embedder.embed_batches(iter(batches), kind="document"))
    assert [len(outcome) for outcome in outcomes] == [3, 0, 1]
    for batch, outcome in zip(batches, outcomes):
        assert isinstance(outcome, BatchOutcome)
        assert outcome.vectors.shape == (len(batch), 256) and outcome.vectors.dtype == np.float32
        assert outcome.failed == {} and outcome.truncated == set()
        if batch:
            np.testing.assert_array_equal(outcome.vectors, embedder.embed_texts(batch))


def test_embed_batches_reads_lazily(embedder: Hashing) -> None:
    consumed: list[int] = []

    def batches():
        for number in range(1_000_000):
            consumed.append(number)
            yield [f"text {number}"]

    outcomes = embedder.embed_batches(batches())
    next(outcomes)
    next(outcomes)
    assert consumed == [0, 1]


def test_query_and_document_kinds_agree_without_prefixes(embedder: Hashing) -> None:
    (document,) = embedder.embed_batches([["search me"]], kind="document")
    (query,) = embedder.embed_batches([["search me"]], kind="query")
    np.testing.assert_array_equal(document.vectors, query.vectors)
    np.testing.assert_array_equal(document.vectors[0], embedder.embed_query("search me"))
    assert embedder.embed_query("search me").shape == (256,)


@pytest.mark.parametrize("dimensions", [0, 7, 1_000_000])
def test_unreasonable_dimensions_are_refused(dimensions: int) -> None:
    with pytest.raises(Exception, match="dimensions"):
        HashingEmbedderResource(dimensions=dimensions)
    with pytest.raises(ValueError, match="dimensions"):
        HashingEmbedder(dimensions=dimensions)


def test_large_batch_gives_one_unit_vector_per_text_in_order() -> None:
    # Its speed is a benchmark's business (machines here are shared): this checks the vectorised path's result.
    resource = HashingEmbedderResource()
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    texts = [" ".join(words[j] for j in rng.integers(0, 5000, 180)) for _ in range(2000)]
    vectors = resource.embed_texts(texts)
    assert vectors.shape == (2000, 768)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[1234], resource.embed_texts([texts[1234]])[0], atol=1e-6)
