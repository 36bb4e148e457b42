"""Tests for the world task metrics against hand-computed values on stub models with fixed output distributions."""

from types import SimpleNamespace

import pytest
import torch

from rcid_tl.world import IOI_TRAIN_TEMPLATES, build_tokenizer, fill_ioi, year_span_prompt
from rcid_tl.world.evaluate import greater_than_scores, ioi_scores, last_logits
from rcid_tl.world.ioi import IOIOrder
from rcid_tl.world.tokenizer import TWO_DIGITS


class FixedLogits(torch.nn.Module):
    """Returns the same next-token logits at every position."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, ids: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(logits=self.logits.expand(*ids.shape, -1).clone())


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _year_logits(tok, weights: dict[str, float]) -> torch.Tensor:
    logits = torch.full((len(tok),), -1e9)
    for token, w in weights.items():
        logits[tok.convert_tokens_to_ids(token)] = w
    return logits


def test_prob_diff_of_uniform_years(tok) -> None:
    model = FixedLogits(_year_logits(tok, dict.fromkeys(TWO_DIGITS, 0.0)))
    template = "The war lasted from the year {a} to the year {b}."
    prompts = [year_span_prompt(template, "war", 17, yy) for yy in (2, 32, 97)]
    diff, sharp = greater_than_scores(model, tok, prompts)
    # uniform over 00..99: (#later - #not later) / 100, and p(YY+1) = p(YY-1)
    torch.testing.assert_close(diff, torch.tensor([(97 - 3) / 100, (67 - 33) / 100, (2 - 98) / 100]))
    torch.testing.assert_close(sharp, torch.zeros(3))


def test_sharpness_sees_the_next_year(tok) -> None:
    model = FixedLogits(_year_logits(tok, {"33": 0.0}))
    prompt = year_span_prompt("The war lasted from the year {a} to the year {b}.", "war", 17, 32)
    diff, sharp = greater_than_scores(model, tok, [prompt])
    torch.testing.assert_close(diff, torch.tensor([1.0]))
    torch.testing.assert_close(sharp, torch.tensor([1.0]))


def test_ioi_logit_diff_sign(tok) -> None:
    logits = torch.zeros(len(tok))
    logits[tok.convert_tokens_to_ids(" Mary")] = 3.0
    model = FixedLogits(logits)
    prompts = [fill_ioi(IOI_TRAIN_TEMPLATES[0], io, s, IOIOrder.ABBA, "store", "drink")
               for io, s in (("Mary", "John"), ("John", "Mary"))]
    torch.testing.assert_close(ioi_scores(model, tok, prompts), torch.tensor([3.0, -3.0]))


def test_last_logits_reads_each_prompts_last_position(tok) -> None:
    # a model whose logits encode the position index: right padding must not shift what we read
    class PositionEcho(torch.nn.Module):
        def forward(self, ids: torch.Tensor) -> SimpleNamespace:
            pos = torch.arange(ids.shape[1], dtype=torch.float)
            return SimpleNamespace(logits=pos[None, :, None].expand(*ids.shape, 3).clone())

    texts = ["hot: cold", "When Mary and John went to the store, John gave a drink to"]
    out = last_logits(PositionEcho(), tok, texts, batch_size=2)
    lengths = [len(tok(tok.eos_token + t)["input_ids"]) for t in texts]
    assert out[:, 0].tolist() == [n - 1 for n in lengths]
