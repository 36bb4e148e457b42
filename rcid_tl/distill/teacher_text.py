"""Teacher-generated text for distillation (sequence-level knowledge distillation, Kim & Rush 2016): sequences sampled
from the teacher from BOS with a recorded seed, cut into token rows for the student's pre-training (next-token
cross-entropy on the teacher's own samples), the KL mixed into every step and held-out perplexity (a second sample
drawn with another seed)."""

import hashlib
from dataclasses import asdict, dataclass
from functools import cached_property

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformers import AutoModelForCausalLM, PreTrainedModel

from rcid_tl.checks import check_count, check_real
from rcid_tl.errors import InputError
from rcid_tl.models.saving import hf_state_dict
from rcid_tl.progress import track

TEACHER_TEXT = "teacher-text"  # the --text value that asks for this source
HELD_OUT_OFFSET = 1_000_003  # the held-out sample's seed = gen_seed + this: never the training sample's


@dataclass(frozen=True)
class Generation:
    """`n` sequences of `length` tokens (BOS, then `length` − 1 sampled at `temperature`), seeded by `seed`."""

    n: int = 512
    length: int = 128
    seed: int = 0
    temperature: float = 1.0
    batch_size: int = 128

    def __post_init__(self) -> None:
        check_count(self.n, "--gen-n")
        check_count(self.length, "--gen-len", minimum=2)
        check_real(self.temperature, "--gen-temperature", inclusive=False)
        check_count(self.batch_size, "--gen-batch-size")


_SAMPLES: dict[tuple, Tensor] = {}  # (weights digest, n, length, seed, temperature) -> ids: one sample per process


def sample_sequences(model: TransformerBridge, n: int, length: int, seed: int, temperature: float = 1.0,
                     batch_size: int = 128) -> Int[Tensor, "n length"]:
    """`_sample` (see there), kept for the process: a method comparison trains every student on the same sample, and
    the digest of the teacher's weights keys it, so an edited teacher samples afresh."""
    digest = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in hf_state_dict(model).values()))
    key = (digest.hexdigest(), n, length, seed, temperature)
    if key not in _SAMPLES:
        _SAMPLES[key] = _sample(model, n, length, seed, temperature, batch_size)
    return _SAMPLES[key].clone()


@torch.no_grad()
def _sample(model: TransformerBridge, n: int, length: int, seed: int, temperature: float, batch_size: int
            ) -> Int[Tensor, "n length"]:
    """`n` sequences sampled from `model` (ancestral sampling from BOS, through a plain Hugging Face copy of it with
    its key/value cache: the bridge's attention does not read the cache, so the copy gives the hooked forward's
    logits without recomputing the prefix), reproducible from `seed` whatever the batch size (one generator per
    sequence)."""
    bos = model.tokenizer.bos_token_id
    if bos is None:
        raise InputError("teacher-generated text starts every sequence at BOS; this tokenizer has none")
    if length > model.cfg.n_ctx:
        raise InputError(f"--gen-len {length} is longer than the teacher's context of {model.cfg.n_ctx} tokens")
    device, out = model.cfg.device, []
    hf = plain_copy(model)
    for start in track(range(0, n, batch_size), "sampling teacher text"):
        rows = range(start, min(n, start + batch_size))
        gens = [torch.Generator().manual_seed(seed * 1_000_003 + i) for i in rows]
        ids = torch.full((len(gens), 1), bos, dtype=torch.long)
        step, cache = ids, None
        for _ in range(length - 1):
            output = hf(step.to(device), cache=cache, use_cache=True)
            cache = output.cache
            probs = torch.softmax(output.logits[:, -1].float().cpu() / temperature, dim=-1)
            step = torch.stack([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, gens)])
            ids = torch.cat([ids, step], dim=1)
        out.append(ids)
    return torch.cat(out)


def plain_copy(model: TransformerBridge) -> PreTrainedModel:
    """An unbridged Hugging Face copy of `model`'s weights (eval mode), whose attention uses the key/value cache."""
    fresh = AutoModelForCausalLM.from_config(model.original_model.config)
    fresh.load_state_dict(hf_state_dict(model), strict=False)
    return fresh.to(model.cfg.device).eval()


@dataclass
class TeacherText:
    """The teacher's samples as a text source (`rows` as `distill.data.TextSource` gives them): training rows from
    the `generation.seed` sample, held-out rows from a sample of seed + `HELD_OUT_OFFSET`."""

    teacher: TransformerBridge
    generation: Generation
    spec: str = TEACHER_TEXT

    @cached_property
    def sequences(self) -> Int[Tensor, "n length"]:
        g = self.generation
        return sample_sequences(self.teacher, g.n, g.length, g.seed, g.temperature, g.batch_size)

    def held_out(self, n_rows: int, row_len: int) -> Int[Tensor, "n length"]:
        g = self.generation
        return sample_sequences(self.teacher, n_rows, row_len, g.seed + HELD_OUT_OFFSET, g.temperature, g.batch_size)

    def rows(self, tokenizer, n_rows: int, row_len: int, held_out: bool = False) -> Tensor:
        """`n_rows` rows of `row_len` tokens: held out, fresh sequences of that length; else the training sample
        flattened and cut into rows, cycled when it is short (as a text file's rows are)."""
        if n_rows == 0:
            return torch.zeros(0, row_len, dtype=torch.long)
        if held_out:
            return self.held_out(n_rows, row_len)
        flat = self.sequences.flatten()
        have = len(flat) // row_len
        if have < 1:
            raise InputError(f"the teacher's sample ({len(flat)} tokens) is shorter than one row of {row_len}")
        return flat[: have * row_len].view(have, row_len)[torch.arange(n_rows) % have]

    def record(self) -> dict:
        """What reproduces the sample: the generation settings and every token id."""
        return {**asdict(self.generation), "held_out_seed": self.generation.seed + HELD_OUT_OFFSET,
                "token_ids": self.sequences.tolist()}
