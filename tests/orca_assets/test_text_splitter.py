"""Tests for `orca_assets.text_splitter`: structure-aware splitting, overlap, and the guarantees callers rely on."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from orca_assets.text_splitter import CHUNKER_VERSION, chunk_text
from orca_core.tokens import estimate_tokens

SENTENCES = [
    "The harbour master logs every ship that enters the bay.",
    "Tides decide when the heavy freighters may dock!",
    "Do fishing boats come and go at dawn?",
    "東京は日本の首都です。",
    "人口は千四百万人を超えています！",
    "भारत एक विशाल देश है।",
    "यहाँ अनेक भाषाएँ बोली जाती हैं॥",
    "Numbers like 3.14 and e.g. abbreviations stay readable.",
]


def non_space(text: str) -> Counter:
    return Counter(ch for ch in text if not ch.isspace())


def check_guarantees(text: str, chunks: list[str], max_tokens: int) -> None:
    """The invariants every caller relies on, whatever the input."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    position = 0
    for chunk in chunks:
        assert estimate_tokens(chunk) <= max_tokens
        assert chunk and chunk == chunk.strip()
        position = normalised.find(chunk, position)  # chunks are slices of the input, in order
        assert position >= 0
    assert not non_space(text) - non_space("".join(chunks)), "some input characters are in no chunk"


def random_document(rng: random.Random, size: int) -> str:
    """A messy mix of headings, prose, lists, code fences, CJK, Hindi, long tokens and odd whitespace."""
    parts: list[str] = []
    while sum(map(len, parts)) < size:
        kind = rng.random()
        if kind < 0.1:
            parts.append("#" * rng.randint(1, 6) + " " + rng.choice(SENTENCES).rstrip(".!?"))
        elif kind < 0.15:
            title = rng.choice(SENTENCES)
            parts.append(title + "\n" + rng.choice("=-~^") * (len(title) + 2))
        elif kind < 0.25:
            fence = rng.choice(["```", "~~~~"])
            body = "\n".join(f"    line_{i} = {i} * 2" for i in range(rng.randint(1, 80)))
            parts.append(f"{fence}python\n{body}\n{fence if rng.random() < 0.9 else ''}")
        elif kind < 0.3:
            parts.append("\n".join(f"- item {i}: {rng.choice(SENTENCES)}" for i in range(rng.randint(1, 9))))
        elif kind < 0.35:
            parts.append(rng.choice(["x" * rng.randint(100, 3000), "字" * rng.randint(100, 2000), "क्षि" * 400]))
        elif kind < 0.4:
            parts.append(rng.choice([" " * rng.randint(1, 5000), "\n" * rng.randint(3, 50), "\t\u3000\r\n"]))
        else:
            sep = rng.choice([" ", " ", "", "\n"])
            parts.append(sep.join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 40))))
    return rng.choice(["\n\n", "\n", "\r\n\r\n"]).join(parts)


def test_version_is_a_string() -> None:
    assert isinstance(CHUNKER_VERSION, str) and CHUNKER_VERSION


@pytest.mark.parametrize(("text", "tokens"), [("", 0), ("abc", 1), ("abcd", 2), ("東京", 2), ("é", 1), ("a" * 9, 3)])
def test_estimate_tokens_is_bytes_over_three_rounded_up(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


@pytest.mark.parametrize(("max_tokens", "overlap"), [(15, 0), (16, 8), (100, 50), (100, -1), (64.0, 8)])
def test_invalid_arguments_are_refused(max_tokens, overlap) -> None:
    with pytest.raises(ValueError):
        chunk_text("some text", max_tokens=max_tokens, overlap_tokens=overlap)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t \r\n", "\u3000"])
def test_blank_input_gives_no_chunks(text: str) -> None:
    assert chunk_text(text) == []


def test_short_text_is_one_stripped_chunk() -> None:
    assert chunk_text("\n\n  Hello there.  \n") == ["Hello there."]


def test_small_document_stays_whole() -> None:
    doc = "# Title\n\nFirst paragraph.\n\n## Part\n\nSecond paragraph."
    assert chunk_text(doc) == [doc]


def test_sections_start_new_chunks_at_headings() -> None:
    body = " ".join(SENTENCES[:3] * 4)
    doc = f"# Alpha\n\n{body}\n\n# Beta\n\n{body}\n\nBeta setext\n-----------\n\n{body}"
    chunks = chunk_text(doc, max_tokens=256, overlap_tokens=16)
    assert [c.split("\n")[0] for c in chunks] == ["# Alpha", "# Beta", "Beta setext"]


def test_restructuredtext_titles_are_headings() -> None:
    body = " ".join(SENTENCES[:3] * 4)
    doc = f"=====\nIntro\n=====\n\n{body}\n\nUsage\n~~~~~\n\n{body}"
    chunks = chunk_text(doc, max_tokens=256, overlap_tokens=0)
    assert chunks[0].startswith("=====\nIntro\n=====") and chunks[1].startswith("Usage\n~~~~~")


def test_tiny_section_joins_the_next_one() -> None:
    body = " ".join(SENTENCES[:3] * 3)
    chunks = chunk_text(f"# Doc\n\nShort intro.\n\n## Details\n\n{body}", max_tokens=128, overlap_tokens=0)
    assert chunks[0].startswith("# Doc\n\nShort intro.\n\n## Details\n\nThe harbour")


def test_code_fence_is_not_split_when_it_fits() -> None:
    code = "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(10)) + "\n```"
    prose = " ".join(SENTENCES[:3] * 3)
    chunks = chunk_text(f"{prose}\n\n{code}\n\n{prose}", max_tokens=128, overlap_tokens=16)
    assert sum(code in chunk for chunk in chunks) >= 1
    assert all(code in chunk for chunk in chunks if "value_0" in chunk or "value_9" in chunk)


def test_oversized_code_fence_is_split_by_lines() -> None:
    lines = [f"    result_{i} = transform(data_{i})" for i in range(200)]
    chunks = chunk_text("~~~\n" + "\n".join(lines) + "\n~~~", max_tokens=64, overlap_tokens=0)
    assert len(chunks) > 5
    pieces = [line.strip() for chunk in chunks for line in chunk.split("\n")]
    assert all(line.strip() in pieces for line in lines), "a code line was cut in the middle"


def test_headings_inside_code_are_not_sections() -> None:
    doc = "Intro text.\n\n```bash\n# not a heading\necho hi\n```"
    assert chunk_text(doc) == [doc]


def test_overlap_repeats_trailing_sentences_within_a_section() -> None:
    sentences = [f"Sentence number {i} talks about item {i}." for i in range(60)]
    chunks = chunk_text(" ".join(sentences), max_tokens=64, overlap_tokens=20)
    assert len(chunks) > 3
    for previous, current in zip(chunks, chunks[1:]):
        first_sentence = current.split(". ")[0] + "."
        assert previous.endswith(first_sentence), "a continuing chunk starts with the previous chunk's tail"
        assert estimate_tokens(first_sentence) <= 20


def test_no_overlap_when_disabled_or_across_headings() -> None:
    sentences = " ".join(f"Sentence {i} is here." for i in range(60))
    chunks = chunk_text(sentences, max_tokens=64, overlap_tokens=0)
    assert " ".join(chunks) == sentences
    doc = f"# One\n\n{sentences}\n\n# Two\n\n{sentences}"
    chunks = chunk_text(doc, max_tokens=64, overlap_tokens=16)
    two = next(i for i, c in enumerate(chunks) if c.startswith("# Two"))
    assert "# One" not in chunks[two] and chunks[two - 1].endswith("Sentence 59 is here.")


def test_cjk_without_spaces_is_split_at_sentences_then_characters() -> None:
    text = "東京は日本の首都です。" * 50 + "字" * 500
    chunks = chunk_text(text, max_tokens=32, overlap_tokens=0)
    check_guarantees(text, chunks, 32)
    assert all(chunk.endswith("。") for chunk in chunks[:5])
    assert "".join(chunks) == text  # no overlap, no spaces: the chunks tile the text exactly


def test_hindi_sentences_keep_danda_and_combining_marks() -> None:
    text = " ".join(["भारत एक विशाल देश है।", "यहाँ अनेक भाषाएँ बोली जाती हैं॥"] * 30)
    chunks = chunk_text(text, max_tokens=48, overlap_tokens=0)
    check_guarantees(text, chunks, 48)
    assert all(chunk[-1] in "।॥" for chunk in chunks)
    no_spaces = "क्षि" * 300  # consonant clusters with virama and vowel sign: marks never start a chunk
    assert all(not chunk[0] in "\u094d\u093f" for chunk in chunk_text(no_spaces, max_tokens=16, overlap_tokens=0))


def test_long_sentence_is_cut_at_whitespace() -> None:
    words = [f"word{i}" for i in range(500)]
    chunks = chunk_text(" ".join(words), max_tokens=32, overlap_tokens=0)
    assert [w for chunk in chunks for w in chunk.split()] == words


def test_deterministic() -> None:
    doc = random_document(random.Random(7), 50_000)
    assert chunk_text(doc, max_tokens=100, overlap_tokens=20) == chunk_text(doc, max_tokens=100, overlap_tokens=20)


@pytest.mark.parametrize("seed", range(40))
def test_guarantees_hold_on_generated_documents(seed: int) -> None:
    rng = random.Random(seed)
    max_tokens = rng.choice([16, 17, 32, 64, 128, 384, 1000])
    overlap = rng.randrange(0, max_tokens // 2)
    doc = random_document(rng, rng.choice([50, 2_000, 20_000]))
    check_guarantees(doc, chunk_text(doc, max_tokens=max_tokens, overlap_tokens=overlap), max_tokens)


@pytest.mark.parametrize("seed", range(20))
def test_guarantees_hold_on_random_characters(seed: int) -> None:
    rng = random.Random(1000 + seed)
    alphabet = "ab .!?\n\n#=-`~\t。字ि्क।\u3000\r\U0001f600\u0301"
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4000)))
    check_guarantees(text, chunk_text(text, max_tokens=16, overlap_tokens=7), 16)


def test_lone_surrogates_do_not_crash() -> None:
    text = "before \udcff after. " * 100
    check_guarantees(text, chunk_text(text, max_tokens=16, overlap_tokens=4), 16)


def test_two_megabytes_keep_every_guarantee() -> None:
    """Its speed is measured in bench/splitter.py, against a baseline of the same run."""
    doc = random_document(random.Random(3), 2_000_000)
    check_guarantees(doc, chunk_text(doc), 384)
