"""The `embeddings` step hands the embedder its texts batch by batch, in order, however they are taken from Arrow."""

from __future__ import annotations

import pyarrow as pa

from orca_assets.embeddings import _text_batches


def test_text_batches_follow_the_rows_across_takes():
    texts = pa.chunked_array([pa.array([f"t{i}" for i in range(50)], pa.large_string()),
                              pa.array([f"t{i}" for i in range(50, 100)], pa.large_string())])
    rows = [99, 3, 50, 49, *range(10, 40)]
    for taken in (1, 7, 8, 4096):  # a take of fewer rows than a batch still gives whole batches
        batches = list(_text_batches(texts, rows, size=4, taken=taken))
        assert [len(batch) for batch in batches] == [4] * 8 + [2]
        assert [text for batch in batches for text in batch] == [f"t{row}" for row in rows]
