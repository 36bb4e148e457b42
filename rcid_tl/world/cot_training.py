"""Fine-tune a world teacher on chain-of-thought arithmetic mixed with the world corpus, seeded and resumable.

The parent's embeddings grow by the CoT tokens (new rows start at the mean embedding; world ids keep their rows), and
training uses the world trainer's optimizer, schedule and checkpoint format (`rcid_tl.world.training`, through the
shared loop of `rcid_tl.training`). Given the same config and thread count, an interrupted and resumed run ends with
the same weights as an uninterrupted one.
"""

import json
import logging
import random
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

import torch
from jaxtyping import Int
from torch import Tensor
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from rcid_tl.artifacts import atomic_dir
from rcid_tl.models.embedded import embedded_path
from rcid_tl.portable import write_tokenizer
from rcid_tl.training import settings_json
from rcid_tl.world.corpus import generate_corpus
from rcid_tl.world.cot import CoTSplit, cot_examples, encode_example
from rcid_tl.world.cot_eval import evaluate_cot
from rcid_tl.world.cot_record import write_cot_training_record
from rcid_tl.world.evaluate import evaluate_teacher
from rcid_tl.world.splits import Split
from rcid_tl.errors import parse_choice
from rcid_tl.world.tokenizer import build_cot_digit_tokenizer, build_cot_tokenizer
from rcid_tl.world.training import RESUMABLE_WITH_NEW, TrainConfig, run_training

log = logging.getLogger(__name__)

EVAL_SPLITS = (CoTSplit.ID, CoTSplit.OOD_LONGER, CoTSplit.OOD_PAIRS)
EVAL_SEED = 12345  # as evaluate_teacher's default: never a training stream
_CHUNK_DOCS = 4096
WORLD_SPACE_NUMBERS = range(11, 20)  # the only " N" tokens the world corpus emits (counting lists)


class CoTTokenizer(str, Enum):
    """WORDS: `build_cot_tokenizer()` (one token per number up to 99). DIGITS: `build_cot_digit_tokenizer()` (same
    ids, numbers split into digits): a teacher that segments differently from the word-level students."""

    WORDS = "words"
    DIGITS = "digits"

    def build(self):
        return build_cot_digit_tokenizer() if self is CoTTokenizer.DIGITS else build_cot_tokenizer()


@dataclass(frozen=True)
class CoTTrainConfig:
    """Fine-tuning run: `parent` (embedded name or directory), the world trainer's settings, and the CoT mixture.

    `cot_fraction` is the probability that a document of the stream is a CoT problem rather than a world document."""

    parent: str = "world-gpt2"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1200, lr=1e-3, warmup=50))
    cot_fraction: float = 0.5
    cot_seed: int = 0
    eval_cot_examples: int = 100
    final_cot_examples: int = 500
    tokenizer: CoTTokenizer | str = CoTTokenizer.WORDS

    def __post_init__(self) -> None:
        object.__setattr__(self, "tokenizer", parse_choice(CoTTokenizer, self.tokenizer, "tokenizer"))
        if not 0 < self.cot_fraction <= 1:
            raise ValueError(f"cot_fraction must be in (0, 1], got {self.cot_fraction}")

    def to_dict(self) -> dict:
        d = asdict(self) | {"train": self.train.to_dict()}
        if self.tokenizer is CoTTokenizer.WORDS:  # the shipped word-level teachers' records have no such key
            del d["tokenizer"]
        else:
            d["tokenizer"] = self.tokenizer.value
        return d


def parent_dir(parent: str) -> Path:
    return embedded_path(parent) or Path(parent)


def grow_parent(parent: str, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """The parent teacher with its (tied) embedding grown to `tokenizer`; new rows = the mean of the old rows.

    The world corpus writes numbers with a leading space only in counting lists (" 11".." 19"); every other " N"
    row was never an input and has collapsed onto one shared "never next" vector, so the parent cannot tell " 5"
    from " 23". Those rows restart as copies of the trained year-suffix tokens ("05", "23"), which the parent tells
    apart and orders (Greater-Than). A parent that already has the CoT vocabulary (a CoT teacher re-tokenized, e.g.
    into digits) is returned unchanged."""
    model = AutoModelForCausalLM.from_pretrained(parent_dir(parent))
    old = model.get_input_embeddings().weight.shape[0]
    if old == len(tokenizer):
        return model
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    unseen = [n for n in range(100) if n not in WORLD_SPACE_NUMBERS]
    spaced = tokenizer.convert_tokens_to_ids([f" {n}" for n in unseen])
    suffix = tokenizer.convert_tokens_to_ids([f"{n:02d}" for n in unseen])
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb[old:] = emb[:old].mean(0)
        emb[spaced] = emb[suffix]
    return model


def mixed_rows(cfg: CoTTrainConfig, tokenizer: PreTrainedTokenizerBase, n_rows: int) -> Int[Tensor, "row row_len"]:
    """The first `n_rows` training rows: documents (world or CoT, drawn per document) joined by <|endoftext|>.

    Document i's kind depends only on (cot_seed, i), and the k-th world / CoT document is the k-th of its own
    stream, so the stream for n rows is a prefix of the stream for more (resume sees the same batches)."""
    row_len, needed, eos = cfg.train.seq_len, n_rows * cfg.train.seq_len, tokenizer.eos_token_id
    flat: list[int] = []
    n_docs = n_cot = n_world = 0
    while len(flat) < needed:
        chunk = min(_CHUNK_DOCS, 64 + n_docs)  # small runs generate little; the kinds depend on i alone
        kinds = [random.Random(f"cot-mix:{cfg.cot_seed}:{i}").random() < cfg.cot_fraction
                 for i in range(n_docs, n_docs + chunk)]
        cots = cot_examples(CoTSplit.TRAIN, sum(kinds), seed=cfg.cot_seed, start=n_cot)
        worlds = generate_corpus(cfg.train.world, Split.TRAIN, len(kinds) - len(cots), start=n_world)
        world_ids = iter(tokenizer(worlds, add_special_tokens=False)["input_ids"] if worlds else [])
        cot_ids = iter(encode_example(tokenizer, ex)[0][:-1] for ex in cots)  # the next document's eos closes it
        for is_cot in kinds:
            flat += next(cot_ids) if is_cot else [eos, *next(world_ids)]
        n_docs, n_cot, n_world = n_docs + len(kinds), n_cot + len(cots), n_world + len(worlds)
    return torch.tensor(flat[:needed], dtype=torch.long).view(n_rows, row_len)


def cot_scores(model, tokenizer, n: int) -> dict[str, dict]:
    """CoT accuracy and perplexity on `n` fresh problems of each evaluation split."""
    return {s.value: evaluate_cot(model, tokenizer, cot_examples(s, n, seed=EVAL_SEED)).to_dict() for s in EVAL_SPLITS}


def train_cot_teacher(cfg: CoTTrainConfig, out_dir: str | Path, command: str = "",
                      stop_after: int | None = None) -> Path:
    """Fine-tune (or resume) in `out_dir`; returns the final Hugging Face directory `out_dir/model`.

    Same layout as `train_teacher`: `out_dir` keeps checkpoint.pt, metrics.jsonl (with CoT and world scores every
    `eval_every` steps) and loss_curve.html; `model/` gets weights, tokenizer, training.json and TRAINING.md."""
    t, out = cfg.train, Path(out_dir)
    torch.manual_seed(t.seed)
    tokenizer = cfg.tokenizer.build()
    model = grow_parent(cfg.parent, tokenizer)

    def evaluate() -> dict:
        world = evaluate_teacher(model, tokenizer, n=t.eval_prompts, draws=2).to_dict()
        cot = cot_scores(model, tokenizer, cfg.eval_cot_examples)
        log.info("cot %s", {k: round(v["accuracy"], 3) for k, v in cot.items()})
        return {"eval": {k: v for k, v in world.items() if not k.endswith("by_relation")}, "cot": cot}

    step, wall_s = run_training(model, t, out, _settings(cfg), f"cot {cfg.parent}", evaluate, stop_after,
                                lambda: mixed_rows(cfg, tokenizer, t.steps * t.batch_size))
    if step < t.steps:
        return out / "model"
    return _finish(model, tokenizer, cfg, out, command, wall_s)


def _settings(cfg: CoTTrainConfig) -> str:
    # settings that cannot change the weights may differ on resume: the world trainer's, and the CoT evaluation sizes
    return settings_json(cfg.to_dict(), [*(f"train.{k}" for k in RESUMABLE_WITH_NEW), "eval_cot_examples",
                                         "final_cot_examples"])


def _finish(model, tokenizer, cfg: CoTTrainConfig, out: Path, command: str, wall_s: float) -> Path:
    scores = evaluate_teacher(model, tokenizer, n=cfg.train.final_eval_prompts).to_dict()
    cot = cot_scores(model, tokenizer, cfg.final_cot_examples)
    parent_record = json.loads((parent_dir(cfg.parent) / "training.json").read_text())
    with atomic_dir(out / "model") as model_dir:  # weights and record appear together or not at all
        model.save_pretrained(model_dir)
        write_tokenizer(tokenizer, model_dir)
        write_cot_training_record(model_dir, cfg.to_dict(), scores, cot, parent_record["scores"], command=command,
                                  wall_s=wall_s, n_params=sum(p.numel() for p in model.parameters()),
                                  tokens=cfg.train.steps * cfg.train.batch_size * cfg.train.seq_len)
    return out / "model"
