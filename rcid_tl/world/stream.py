"""Training token stream: world documents joined by <|endoftext|> and cut into fixed-length rows.

The stream for n rows is a prefix of the stream for any larger n, so batch `step` is the same however long the run
is planned, and a resumed run sees exactly the batches it would have seen.
"""

import torch
from jaxtyping import Int
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from rcid_tl.world.corpus import WorldConfig, generate_corpus
from rcid_tl.world.splits import Split

_SHARD_DOCS = 4096


def token_rows(
    world: WorldConfig,
    split: Split,
    tokenizer: PreTrainedTokenizerBase,
    n_rows: int,
    row_len: int,
) -> Int[Tensor, "row row_len"]:
    """The first `n_rows` rows of `row_len` tokens of `split`; every document is preceded by <|endoftext|>."""
    eos = tokenizer.eos_token_id
    needed = n_rows * row_len
    chunks: list[Tensor] = []
    have, start = 0, 0
    while have < needed:
        docs = generate_corpus(world, split, _SHARD_DOCS, start=start)
        ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
        flat = torch.tensor([t for doc in ids for t in (eos, *doc)], dtype=torch.int32)
        chunks.append(flat)
        have += flat.numel()
        start += _SHARD_DOCS
    return torch.cat(chunks)[:needed].view(n_rows, row_len).long()
