"""Sampling once: prompt forms, shuffled-label corruption, the target first-token policy, fail-fast and --allow-drop,
and determinism per relation."""

import pytest

from rcid_tl.errors import InputError
from rcid_tl.fv.relations import RelationSet, load_relations, world_relation_set
from rcid_tl.fv.trials import PromptFormat, SamplingConfig, TrialSnapshot, sample_trials
from tests.conftest import require
from tests.fv.test_relations import TODD

COLON = SamplingConfig(n_trials_per_q=5, n_demos=3, seed=7, prompt_format=PromptFormat.COLON)


@pytest.fixture(scope="module")
def snapshot(world):
    return sample_trials(world_relation_set().select(["antonym", "capital"]), world.tokenizer, COLON, "w", 256)


def test_trials_have_the_seed_contract(snapshot, world):
    tok = world.tokenizer
    assert snapshot.qids == ("antonym", "capital") and len(snapshot.trials) == 10
    for t in snapshot.trials:
        assert t.clean_prompt_str == "\n".join(f"{x}: {y}" for x, y in t.demos) + f"\n{t.query}:"
        assert t.zero_shot_prompt_str == f"{t.query}:"
        assert [x for x, _ in t.corrupted_demos] == [x for x, _ in t.demos]
        assert sorted(y for _, y in t.corrupted_demos) == sorted(y for _, y in t.demos)
        assert t.query not in [x for x, _ in t.demos]
        assert t.target_first_token_id == tok.encode(f" {t.target_str}", add_special_tokens=False)[0]
        assert t.clean_ids[0] == tok.bos_token_id and t.clean_ids[1:] == tuple(tok.encode(t.clean_prompt_str))
    assert len({t.query for t in snapshot.of("capital")}) == 5  # distinct queries per relation


def test_snapshot_round_trips_and_is_deterministic(snapshot, world, tmp_path):
    assert TrialSnapshot.load(snapshot.save(tmp_path / "s.json")).trials == snapshot.trials
    alone = sample_trials(world_relation_set().select(["capital"]), world.tokenizer, COLON, "w", 256)
    assert alone.trials == snapshot.of("capital")  # a relation's trials do not depend on what else is sampled
    other = sample_trials(world_relation_set().select(["capital"]), world.tokenizer,
                          SamplingConfig(5, 3, seed=8, prompt_format=PromptFormat.COLON), "w", 256)
    assert other.trials != alone.trials


def test_fail_fast_and_allow_drop(world):
    tiny = RelationSet("t", {"antonym": world_relation_set().pairs["antonym"], "few": (("hot", "cold"),) * 3})
    with pytest.raises(InputError, match="relation 'few' cannot fill 5 trials: 1 usable pairs of 3; 5 needed"):
        sample_trials(tiny, world.tokenizer, COLON, "w", 256)
    dropped = sample_trials(tiny, world.tokenizer, SamplingConfig(5, 3, 7, PromptFormat.COLON, allow_drop=True),
                            "w", 256)
    assert dropped.qids == ("antonym",) and "few" in dropped.meta["dropped"]


def test_unknown_words_are_unusable(world):
    rel = RelationSet("t", {"odd": tuple((f"zz{i}", "cold") for i in range(8))})
    with pytest.raises(InputError, match="0 usable pairs of 8"):
        sample_trials(rel, world.tokenizer, COLON, "w", 256)


def test_snapshot_refuses_another_tokenizer(snapshot, gpt2_tokenizer):
    with pytest.raises(InputError, match="tokenised for model 'w'"):
        snapshot.check_tokenizer(gpt2_tokenizer)


def test_blank_first_tokens_can_be_skipped(stories):
    relation = load_relations(require(TODD), qids=["present-past"])

    def blank(snapshot: TrialSnapshot) -> int:
        return sum(not stories.tokenizer.decode([t.target_first_token_id]).strip() for t in snapshot.trials)

    plain = SamplingConfig(12, 3, 7, PromptFormat.QA)
    assert blank(sample_trials(relation, stories.tokenizer, plain, "s", 512)) > 0  # "▁" then "reflected"'s letters
    skipped = sample_trials(relation, stories.tokenizer, SamplingConfig(12, 3, 7, PromptFormat.QA,
                                                                        skip_blank_targets=True), "s", 512)
    assert blank(skipped) == 0 and len(skipped.trials) == 12


def test_demos_can_exclude_every_query(world):
    config = SamplingConfig(14, 5, 7, PromptFormat.COLON, demos_exclude_queries=True)
    snap = sample_trials(world_relation_set().select(["successor", "antonym"]), world.tokenizer, config, "w", 256)
    for qid in snap.qids:
        queries = {(t.query, t.target_str) for t in snap.of(qid)}
        assert len(queries) == 14 and not queries & {p for t in snap.of(qid) for p in t.demos}
    with pytest.raises(InputError, match="19 usable pairs of 19; 20 needed"):  # successor has 19 pairs
        sample_trials(world_relation_set().select(["successor"]), world.tokenizer,
                      SamplingConfig(15, 5, 7, PromptFormat.COLON, demos_exclude_queries=True), "w", 256)
