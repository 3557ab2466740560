"""Token counts without a tokenizer: the one estimate the chunker sizes chunks by and the intake reports.

One token per 3 UTF-8 bytes, rounded up: real tokenizers of embedding models count fewer for ordinary text
in practice, so a chunk sized by it fits the model's context.
"""

from __future__ import annotations

BYTES_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """A token count no real tokenizer exceeds in practice: UTF-8 bytes / BYTES_PER_TOKEN, rounded up."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN)
