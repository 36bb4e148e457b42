"""Each head score on a tiny GPT-2 whose weights are set by hand, so the right answer is known: a previous-token
head (QK on positional embeddings), a duplicate-token head, an induction head composing with the previous-token
head, a copying head (OV = +identity on tokens) and an anti-copying one (OV = −identity)."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rcid_tl.heads.attention import end_attention, repeat_scores, repeated_tokens
from rcid_tl.heads.copying import copy_scores, early_residual
from rcid_tl.models.loading import wrap_hf_model
from rcid_tl.tasks.base import Batch

V, L, D, HEAD = 16, 8, 128, 32  # vocabulary, repeat length, d_model, d_head (4 heads)
TOK, POS, PREV = 0, 16, 32  # residual layout: token one-hot, position one-hot, previous token (written by 0.0)


def _qk(attn, head: int, q_rows, k_rows, beta: float) -> None:
    """Query row q_rows[i] and key row k_rows[i] both feed dimension i of `head` (negative beta: repel)."""
    w = attn.c_attn.weight  # (d_model, 3·d_model): queries, keys, values; head h in columns h·d_head...
    for i, (q, k) in enumerate(zip(q_rows, k_rows)):
        w[q, head * HEAD + i] += abs(beta)
        w[k, D + head * HEAD + i] += beta


def _ov(attn, head: int, rows, cols, sign: float) -> None:
    """Value dimension i reads residual row rows[i] and writes sign · it to residual dimension cols[i]."""
    for i, (r, c) in enumerate(zip(rows, cols)):
        attn.c_attn.weight[r, 2 * D + head * HEAD + i] = 1.0
        attn.c_proj.weight[head * HEAD + i, c] = sign


@pytest.fixture(scope="module")
def model(gpt2_tokenizer):
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=2 * L, n_embd=D, n_layer=2, n_head=4)).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            p.zero_() if not name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")) else p.fill_(1.0)
        hf.transformer.wte.weight[:, TOK:TOK + V] = torch.eye(V)  # tied to the unembedding
        hf.transformer.wpe.weight[:, POS:POS + 2 * L] = torch.eye(2 * L)
        first, second = hf.transformer.h[0].attn, hf.transformer.h[1].attn
        positions = range(POS, POS + 2 * L)
        _qk(first, 0, [POS + p + 1 for p in range(2 * L - 1)], positions, 1.0)  # 0.0: query p ↔ key p − 1
        _ov(first, 0, range(TOK, TOK + V), range(PREV, PREV + V), 1.0)  # ... writing the previous token
        _qk(first, 1, range(TOK, TOK + V), range(TOK, TOK + V), 1.0)  # 0.1: same token ...
        for p in range(2 * L):  # ... but not itself
            first.c_attn.weight[POS + p, HEAD + V + p] = 1.0
            first.c_attn.weight[POS + p, D + HEAD + V + p] = -1.0
        _qk(second, 0, range(TOK, TOK + V), range(PREV, PREV + V), 2.5)  # 1.0: key whose previous token = mine
        _ov(second, 1, range(TOK, TOK + V), range(TOK, TOK + V), 1.0)  # 1.1 copies
        _ov(second, 2, range(TOK, TOK + V), range(TOK, TOK + V), -1.0)  # 1.2 writes the opposite
    return wrap_hf_model(hf, gpt2_tokenizer, label="hand-set")


@pytest.fixture(scope="module")
def tokens():
    return repeated_tokens(range(V), n=6, length=L, seed=0, bos=None)


def test_repeated_tokens_repeat_distinct_tokens(tokens):
    assert tokens.shape == (6, 2 * L)
    assert torch.equal(tokens[:, :L], tokens[:, L:])
    assert all(len(set(row[:L].tolist())) == L for row in tokens)
    with_bos = repeated_tokens(range(V), n=2, length=L, seed=0, bos=99)
    assert (with_bos[:, 0] == 99).all() and torch.equal(with_bos[:, 1:], tokens[:2])


def test_repeat_scores_find_the_hand_set_heads(model, tokens):
    scores = repeat_scores(model, tokens, L)
    assert scores["previous_token"][0, 0] > 0.95
    assert scores["duplicate_token"][0, 1] > 0.95
    # the first repeated token's query also matches position 0, whose "previous token" is itself: (7 + ½) / 8
    assert scores["induction"][1, 0] > 0.9
    for name, (layer, head) in {"previous_token": (0, 0), "duplicate_token": (0, 1), "induction": (1, 0)}.items():
        others = scores[name].clone()
        others[layer, head] = 0
        assert others.max() < 0.5, name  # the other heads attend uniformly or elsewhere


def test_end_attention_reads_query_end(model, tokens):
    n = len(tokens)
    end, before = torch.full((n,), 2 * L - 1), torch.full((n,), 2 * L - 2)
    batch = Batch(tokens, tokens, end, tokens[:, 0], tokens[:, 1], {"end": end, "io": before, "s2": end - L + 1},
                  torch.zeros(n, dtype=torch.long), None)
    attention = end_attention(model, batch, ("io", "s2"))
    assert attention["io"][0, 0] > 0.95  # the previous-token head looks one back
    assert attention["s2"][1, 0] > 0.95  # the induction head looks at the token after the earlier copy


def test_copy_scores_of_copying_and_anti_copying_heads(model, tokens):
    positions = torch.tensor([[1, 4, 9]] * len(tokens))
    residual, ids = early_residual(model, tokens, positions)
    assert torch.equal(ids, tokens[:, [1, 4, 9]].flatten())
    copy, negative = copy_scores(model, residual, ids)
    assert copy[1, 1] == 1.0 and negative[1, 1] == 0.0
    assert copy[1, 2] == 0.0 and negative[1, 2] == 1.0
