"""A seeded synthetic world for training small default teachers: corpus generator, splits and tokenizer."""

from rcid_tl.world.cot import CoTBatch, CoTExample, CoTSplit, Segment, cot_batch, cot_examples, positions_before_answer
from rcid_tl.world.cot_eval import CoTScores, evaluate_cot
from rcid_tl.world.corpus import DEFAULT_WEIGHTS, DocKind, WorldConfig, generate_corpus, generate_document
from rcid_tl.world.fewshot import RelationPrompt, relation_prompt
from rcid_tl.world.ioi import (
    IOI_HELD_OUT_TEMPLATES,
    IOI_TRAIN_TEMPLATES,
    IOIOrder,
    IOIPrompt,
    fill_ioi,
    ioi_templates,
    sample_ioi,
)
from rcid_tl.world.lexicon import EVENT_NOUNS, NAMES, OBJECTS, PLACES
from rcid_tl.world.relations import ADJECTIVES, ANIMALS, COUNTRIES, NUMBER_WORDS, RELATION_DOMAIN, RELATIONS, Domain
from rcid_tl.world.splits import (
    HELD_OUT_NAMES,
    HELD_OUT_RELATION_INPUTS,
    IOI_NAMES,
    Split,
    ioi_names,
    relation_pairs,
)
from rcid_tl.world.tokenizer import (
    EOS_TOKEN,
    build_cot_tokenizer,
    build_tokenizer,
    cot_vocab,
    load_tokenizer,
    save_tokenizer,
    world_vocab,
    world_words,
)
from rcid_tl.world.years import (
    CENTURIES,
    GT_HELD_OUT_FORMATS,
    GT_TRAIN_FORMATS,
    YearSpanPrompt,
    gt_formats,
    year_span_prompt,
)

__all__ = [
    "ADJECTIVES", "ANIMALS", "CENTURIES", "COUNTRIES", "DEFAULT_WEIGHTS", "EOS_TOKEN", "EVENT_NOUNS",
    "GT_HELD_OUT_FORMATS", "GT_TRAIN_FORMATS", "HELD_OUT_NAMES", "HELD_OUT_RELATION_INPUTS", "IOI_HELD_OUT_TEMPLATES",
    "IOI_NAMES", "IOI_TRAIN_TEMPLATES", "NAMES", "NUMBER_WORDS", "OBJECTS", "PLACES", "RELATIONS", "RELATION_DOMAIN",
    "CoTBatch", "CoTExample", "CoTScores", "CoTSplit", "Segment", "build_cot_tokenizer", "cot_batch", "cot_examples",
    "cot_vocab", "evaluate_cot", "positions_before_answer",
    "DocKind", "Domain", "IOIOrder", "IOIPrompt", "RelationPrompt", "Split", "WorldConfig", "YearSpanPrompt",
    "build_tokenizer", "fill_ioi", "generate_corpus", "generate_document", "gt_formats", "ioi_names", "ioi_templates",
    "load_tokenizer", "relation_pairs", "relation_prompt", "sample_ioi", "save_tokenizer", "world_vocab", "world_words",
    "year_span_prompt",
]
