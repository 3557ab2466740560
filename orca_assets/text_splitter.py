"""Heading-, paragraph- and sentence-aware chunking with overlap, within a conservative token budget.

Every chunk is a contiguous, stripped slice of the input (after `\\r\\n` -> `\\n`), so chunks keep the
original formatting; consecutive chunks of one section overlap by up to `overlap_tokens`.
"""

from __future__ import annotations

import numbers
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from orca_core.tokens import BYTES_PER_TOKEN

# Part of every chunk's identity: bump when the output for some input changes. 2: documents are extracted
# anew (front matter out of Markdown text, HTML tables and lists as Markdown, packaged formats).
CHUNKER_VERSION = "2"

_ATX = re.compile(r"[ \t]{0,3}#{1,6}(?:[ \t]|$)")
_ADORNMENT = re.compile(r"[ \t]{0,3}([=\-:'\"~^_*+#<>.])\1{2,}[ \t]*$")
_FENCE = re.compile(r"[ \t]*(`{3,}|~{3,})")
_SENTENCE_END = re.compile(
    r"(?=[.!?\u2026\u3002\uff01\uff1f\u0964\u0965\n])"  # the first characters below: skips the rest 3x faster
    r"(?:[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s)"  # Latin-script end, then whitespace
    r"|[\u3002\uff01\uff1f]+[\u300d\u300f\u201d\u2019\uff09]*"  # CJK 。！？ need no space
    r"|[\u0964\u0965]+"  # Devanagari danda । and double danda ॥
    r"|\n(?=[ \t]*(?:[-*+\u2022]|\d{1,3}[.)])[ \t]))"  # a list item starts a new unit
)
_NON_SPACE = re.compile(r"\S")
_BREAKS = (" ", "\n", "\t", "\u3000")

HEADING, PARAGRAPH, SENTENCE, FRAGMENT = 3, 2, 1, 0  # how strong the boundary before an atom is


@dataclass
class _Block:
    """A heading, paragraph or fenced code block: a stripped span and its atoms (start, end, level)."""

    kind: str
    start: int
    end: int
    atoms: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Chunk:
    """One chunk: its text, where it starts in the document's text, and the heading path above it."""

    text: str
    start: int
    section: str | None


def chunk_text(text: str, *, max_tokens: int = 384, overlap_tokens: int = 48) -> list[str]:
    """Split `text` into chunks that each fit `max_tokens` by `estimate_tokens`.

    Chunks prefer to start at headings, keep paragraphs and fenced code whole when they fit, and split
    long paragraphs at sentences. Chunks are non-empty, stripped, deterministic, and together contain
    every non-whitespace character of `text`.
    """
    return [chunk.text for chunk in split_document(text, max_tokens=max_tokens, overlap_tokens=overlap_tokens)]


def split_document(text: str, *, max_tokens: int = 384, overlap_tokens: int = 48) -> list[Chunk]:
    """`chunk_text` with each chunk's start offset and section: the headings above its start (its own first
    heading included), joined with ` > ` (`Install > Linux`)."""
    if not isinstance(max_tokens, numbers.Integral) or max_tokens < 16:
        raise ValueError(f"max_tokens must be an integer >= 16, got {max_tokens!r}")
    max_tokens = int(max_tokens)
    if not isinstance(overlap_tokens, numbers.Integral) or not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError(
            f"overlap_tokens must be >= 0 and < max_tokens // 2 ({max_tokens // 2}), got {overlap_tokens!r}"
        )
    overlap_tokens = int(overlap_tokens)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return []
    codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    cum = np.zeros(len(text) + 1, dtype=np.int64)  # cum[i] = UTF-8 bytes of text[:i]
    np.cumsum(1 + (codepoints >= 0x80) + (codepoints >= 0x800) + (codepoints >= 0x10000), out=cum[1:])
    splitter = _Splitter(text, cum, BYTES_PER_TOKEN * max_tokens)
    found = _blocks(text)
    blocks = [splitter.atomize(block) for block in found]
    spans = _pack(blocks, cum, BYTES_PER_TOKEN * max_tokens, BYTES_PER_TOKEN * overlap_tokens)
    headings = _headings(text, [block for block in found if block.kind == "heading"])
    chunks, path, next_heading = [], [], 0
    for start, end in spans:
        while next_heading < len(headings) and headings[next_heading][0] <= start:
            _, level, title = headings[next_heading]
            path = [entry for entry in path if entry[0] < level] + [(level, title)]
            next_heading += 1
        chunks.append(Chunk(text[start:end], start, " > ".join(title for _, title in path) or None))
    return chunks


def _headings(text: str, blocks: list[_Block]) -> list[tuple[int, int, str]]:
    """(start, level, title) of each heading. ATX headings have their `#` count; underlined ones (setext,
    reStructuredText) a level per adornment style in order of first appearance, as reStructuredText does."""
    styles: dict[tuple[str, bool], int] = {}
    found = []
    for block in blocks:
        lines = [line.strip() for line in text[block.start : block.end].split("\n")]
        if len(lines) == 1:
            marks = len(lines[0]) - len(lines[0].lstrip("#"))
            title, level = lines[0][marks:].strip().rstrip("#").strip(), min(marks, 6)
        else:
            overlined = len(lines) == 3
            style = (lines[-1][:1], overlined)
            level = styles.setdefault(style, len(styles) + 1)
            title = lines[1] if overlined else lines[0]
        title = " ".join(title.split())
        if title:
            found.append((block.start, level, title))
    return found


def _blocks(text: str) -> list[_Block]:
    """Headings, paragraphs and fenced code blocks, in order, as stripped spans of `text`."""
    lines = text.split("\n")
    offsets = [0] * (len(lines) + 1)
    for i, line in enumerate(lines):
        offsets[i + 1] = offsets[i] + len(line) + 1
    blocks: list[_Block] = []
    para: int | None = None  # first line of the open paragraph

    def add(kind: str, first: int, last: int) -> None:
        if lines[last].strip():  # the usual case, cheaper than scanning for the stripped span
            start = offsets[first] + len(lines[first]) - len(lines[first].lstrip())
            end = offsets[last] + len(lines[last].rstrip())
        else:
            start, end = _strip(text, offsets[first], offsets[last] + len(lines[last]))
        if start < end:
            blocks.append(_Block(kind, start, end))

    def close_para(before: int) -> None:
        nonlocal para
        if para is not None and para < before:
            add("para", para, before - 1)
        para = None

    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip():
            close_para(i)
            i += 1
            continue
        adorn = _ADORNMENT.match(line)
        if adorn and para is None and i + 2 < n and lines[i + 2].strip() == line.strip() and lines[i + 1].strip():
            add("heading", i, i + 2)  # reStructuredText title with overline
            i += 3
            continue
        if adorn and para is not None and para < i and _is_underline(adorn.group(1), line, lines[i - 1]):
            close_para(i - 1)
            add("heading", i - 1, i)  # setext / reStructuredText underline: the previous line is the title
            i += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            close_para(i)
            marker = fence.group(1)
            closing = re.compile(rf"[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            j = i + 1
            while j < n and not closing.match(lines[j]):
                j += 1
            add("code", i, min(j, n - 1))  # an unclosed fence runs to the end, as in CommonMark
            i = j + 1
            continue
        if _ATX.match(line):
            close_para(i)
            add("heading", i, i)
        elif para is None:
            para = i
        i += 1
    close_para(n)
    return blocks


def _is_underline(char: str, line: str, title: str) -> bool:
    # Markdown setext underlines may be any length; other reStructuredText adornments must be at least as
    # long as the title, which keeps a "~~~" code fence right after a sentence from becoming a heading.
    return char in "=-" or len(line.strip()) >= len(title.strip())


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    found = _NON_SPACE.search(text, start, end)
    if found is None:
        return end, end
    start = found.start()
    while text[end - 1].isspace():
        end -= 1
    return start, end


class _Splitter:
    """Cuts blocks into atoms: sentences (code: lines), and anything over the budget at spaces or characters."""

    def __init__(self, text: str, cum: np.ndarray, budget: int):
        self.text, self.cum, self.budget = text, cum, budget

    def atomize(self, block: _Block) -> _Block:
        first = HEADING if block.kind == "heading" else PARAGRAPH
        if block.kind == "code":
            bounds = [m.end() for m in re.finditer(r"\n", self.text[block.start : block.end])]
            ends = [block.start + b for b in bounds] + [block.end]
        else:
            ends = [m.end() for m in _SENTENCE_END.finditer(self.text, block.start, block.end)] + [block.end]
        start = block.start
        for end in ends:
            a, b = _strip(self.text, start, end)
            start = end
            if a < b:
                self._cut(block.atoms, a, b, first if not block.atoms else SENTENCE)
        return block

    def _cut(self, atoms: list[tuple[int, int, int]], start: int, end: int, level: int) -> None:
        text, cum = self.text, self.cum
        while start < end:
            if cum[end] - cum[start] <= self.budget:
                atoms.append((start, end, level))
                return
            limit = int(np.searchsorted(cum, cum[start] + self.budget, side="right")) - 1
            cut = max(text.rfind(sep, start + 1, limit + 1) for sep in _BREAKS)
            if cut <= start:  # no space in reach (CJK, long tokens): cut between characters
                cut = limit
                while cut > start + 1 and unicodedata.category(text[cut])[0] == "M":
                    cut -= 1  # keep combining marks (Devanagari vowel signs) with their base
            a, b = _strip(text, start, cut)
            atoms.append((a, b, level))
            level = FRAGMENT
            start, _ = _strip(text, cut, end)


def _pack(blocks: list[_Block], cum: np.ndarray, budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of blocks (whole when they fit) and atoms into chunk spans (start, end)."""
    spans: list[tuple[int, int]] = []
    small = budget // 4  # a chunk below this is "tiny" and may absorb the next section
    start = end = -1  # the open chunk; start < 0 when none is open
    starts: list[int] = []  # sentence starts in the open chunk and current section: overlap candidates

    def size(a: int, b: int) -> int:
        return int(cum[b] - cum[a])

    def carry(reach: int) -> int | None:
        """Earliest start among the open chunk's trailing sentences that fits the overlap and `reach`."""
        best = None
        for candidate in reversed(starts):
            if size(candidate, end) > overlap or size(candidate, reach) > budget:
                break
            best = candidate
        return best

    def restart(reach: int, fresh: int, with_overlap: bool) -> None:
        nonlocal start, end, starts
        spans.append((start, end))
        kept = carry(reach) if with_overlap else None
        starts = [s for s in starts if kept is not None and s >= kept]
        start, end = (kept if kept is not None else fresh), reach

    for block in blocks:
        heading = block.kind == "heading"
        if heading:
            if start >= 0 and size(start, end) >= small:
                spans.append((start, end))
                start = -1
            starts = []  # overlap never reaches back into the previous section
        block_starts = [a for a, _, level in block.atoms if level >= SENTENCE]
        if start >= 0 and size(start, block.end) <= budget:
            end = block.end
            starts.extend(block_starts)
            continue
        if size(block.start, block.end) <= budget:
            if start < 0:
                start, end = block.start, block.end
                starts = block_starts
                continue
            if block.kind == "code" or heading or size(start, end) >= small:
                restart(block.end, block.start, with_overlap=not heading)
                starts.extend(block_starts)
                continue
        for a, b, level in block.atoms:
            if start < 0:
                start, end, starts = a, b, []
            elif size(start, b) <= budget:
                end = b
            else:
                restart(b, a, with_overlap=level < HEADING)
            if level >= SENTENCE:
                starts.append(a)
    if start >= 0:
        spans.append((start, end))
    kept: list[tuple[int, int]] = []
    for span in spans:
        while kept and span[0] <= kept[-1][0] and kept[-1][1] <= span[1]:
            kept.pop()  # a chunk wholly repeated by its successor (a lone heading carried over) adds nothing
        kept.append(span)
    return kept
