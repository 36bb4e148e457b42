"""Held-out FV evaluation: the split is disjoint, seeded and recorded; choosing (k, layer, α) and the CIE sweep never
touch an evaluation trial (poisoned evaluation trials would crash any forward that read them); the study runs."""

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.fv import cie_sweep
from rcid_tl.fv.cie_sweep import CIESweepConfig, run_cie_sweep
from rcid_tl.fv.heldout import HeldOutConfig, evaluate_choice, random_like, select
from rcid_tl.fv.relations import world_relation_set
from rcid_tl.fv.split import SplitIndices, TrialSplit, check_held_out, demo_overlap, subset
from rcid_tl.fv.trials import PromptFormat, SamplingConfig, TrialSnapshot, sample_trials
from rcid_tl.sweeps.common import ModelSpec

QIDS = ["antonym", "successor"]
SAMPLING = SamplingConfig(6, 3, 42, PromptFormat.COLON)


@pytest.fixture(scope="module")
def snapshot(world):
    return sample_trials(world_relation_set().select(QIDS), world.tokenizer, SAMPLING, "world-gpt2", world.cfg.n_ctx)


def poisoned(snapshot: TrialSnapshot, split: SplitIndices, vocab: int) -> TrialSnapshot:
    """Every evaluation trial's token ids replaced by ids past the vocabulary: a forward that reads one fails."""
    held = {(q, i) for q, (_, e) in split.by_qid.items() for i in e}
    bad = lambda ids: tuple(vocab + 7 for _ in ids)  # noqa: E731
    trials = tuple(replace(t, clean_ids=bad(t.clean_ids), corrupted_ids=bad(t.corrupted_ids),
                           zero_shot_ids=bad(t.zero_shot_ids)) if (t.q_id, t.index) in held else t
                   for t in snapshot.trials)
    return TrialSnapshot(snapshot.config, snapshot.meta, trials)


def test_split_is_disjoint_seeded_and_recorded(snapshot, tmp_path):
    split = TrialSplit(2, 3, seed=5).resolve(snapshot)
    for q in QIDS:
        select_ix, eval_ix = split.by_qid[q]
        assert len(select_ix) == 2 and len(eval_ix) == 3 and not set(select_ix) & set(eval_ix)
        assert set(select_ix) | set(eval_ix) <= {t.index for t in snapshot.of(q)}
    assert TrialSplit(2, 3, seed=5).resolve(snapshot) == split  # seeded
    assert any(TrialSplit(2, 3, seed=s).resolve(snapshot).by_qid != split.by_qid for s in range(6, 10))
    assert SplitIndices.load(split.save(tmp_path / "split.json")) == split
    halves = TrialSplit().resolve(snapshot).by_qid["antonym"]
    assert (len(halves[0]), len(halves[1])) == (3, 3)
    assert [t.index for t in split.evaluation(snapshot).of("antonym")] == list(split.by_qid["antonym"][1])
    with pytest.raises(InputError, match="within --n-trials 6; got --n-select 4 and --n-eval 3"):
        TrialSplit(4, 3).resolve(snapshot)
    with pytest.raises(InputError, match="overlap"):
        SplitIndices(0, {"antonym": ((0, 1), (1, 2))})
    built = SplitIndices(0, {"antonym": ((0, 1), (2, 3))})
    with pytest.raises(InputError, match=r"evaluation trial\(s\) \[1\] of 'antonym' were used to build"):
        check_held_out(SplitIndices(0, {"antonym": ((0,), (1, 2))}), built, ["antonym"])


def test_selection_never_sees_evaluation_trials(world, snapshot):
    split = TrialSplit(3, 3, seed=1).resolve(snapshot)
    bad = poisoned(snapshot, split, world.cfg.d_vocab)
    g = torch.Generator().manual_seed(0)
    candidates = {q: {k: torch.randn(world.cfg.d_model, generator=g) * 3 for k in (1, 3)} for q in QIDS}
    config = HeldOutConfig((1, 3), (1.0, 2.0), n_random=2)
    pairs = [(q, q) for q in QIDS]
    grid, best = select(world, snapshot, split, candidates, pairs, config)
    grid_bad, best_bad = select(world, bad, split, candidates, pairs, config)  # would raise if it read one
    assert best_bad == best and {r["trial"] for r in grid.records} == {i for s, _ in split.by_qid.values() for i in s}
    assert len(grid.summary) == 2 * 2 * 2 * 2  # relations × k × layers × α
    with pytest.raises(IndexError):  # the poison works: scoring the evaluation trials does read them
        evaluate_choice(world, split.evaluation(bad), candidates["antonym"][1], "antonym", 1, 1.0, config, 0)


def test_cie_sweep_sees_only_selection_trials(world, snapshot, tmp_path, monkeypatch):
    split = TrialSplit(3, 3).resolve(snapshot)
    monkeypatch.setattr(cie_sweep, "prepare_trials", lambda config, model: poisoned(snapshot, split,
                                                                                    world.cfg.d_vocab))
    result = run_cie_sweep(CIESweepConfig(ModelSpec("world-gpt2"), tmp_path, layers="0,5", sampling=SAMPLING,
                                          split=TrialSplit(3, 3)), world)
    assert result.split == split and all(r.n_trials == 3 for r in result.results.values())
    recorded = json.loads((tmp_path / "artifacts/trial_split.json").read_text())
    assert recorded["by_qid"]["antonym"] == {"selection": list(split.by_qid["antonym"][0]),
                                             "evaluation": list(split.by_qid["antonym"][1])}


def test_random_control_keeps_the_norm():
    v = torch.tensor([3.0, 4.0, 0.0])
    draws = random_like(v, 4, seed=0)
    assert torch.allclose(draws.norm(dim=-1), torch.full((4,), 5.0))  # float32 normalisation: exact to ~1e-6
    assert not torch.allclose(draws[0], draws[1]) and torch.equal(draws, random_like(v, 4, seed=0))


def test_demo_overlap_counts_evaluation_pairs_seen_as_demos(snapshot):
    split = TrialSplit(3, 3).resolve(snapshot)
    before = demo_overlap(snapshot, split)["antonym"]
    s0 = split.by_qid["antonym"][0][0]
    unseen = [t for t in split.evaluation(snapshot).of("antonym")
              if (t.query, t.target_str) not in {p for u in split.selection(snapshot).of("antonym") for p in u.demos}]
    assert before + len(unseen) == 3
    if unseen:  # show one more evaluation pair as a demonstration of a selection trial: the count goes up by one
        pair = (unseen[0].query, unseen[0].target_str)
        trials = tuple(replace(t, demos=(*t.demos, pair)) if (t.q_id, t.index) == ("antonym", s0) else t
                       for t in snapshot.trials)
        assert demo_overlap(TrialSnapshot(snapshot.config, snapshot.meta, trials), split)["antonym"] == before + 1


def test_subset_keeps_indices(snapshot):
    part = subset(snapshot, {"successor": [4, 1]})
    assert [t.index for t in part.trials] == [1, 4] and part.meta["n_trials_by_qid"] == {"successor": 2}


def test_study_runs_on_a_tiny_configuration(tmp_path, monkeypatch):
    path = Path(__file__).resolve().parents[2] / "experiments" / "fv_study.py"
    spec = importlib.util.spec_from_file_location("fv_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    common = ["--figures", str(tmp_path), "--out-root", str(tmp_path / "runs")]
    monkeypatch.setattr(sys, "argv", ["fv_study", "--name", "tiny", "--model", "world-gpt2", "--qids",
                                      "antonym,successor", "--n-trials", "4", "--n-demos", "3", "--ks", "1,2",
                                      "--layers", "1,2", "--alphas", "1", "--n-random", "2", *common])
    module.main()
    monkeypatch.setattr(sys, "argv", ["fv_study", "--combine", "tiny", *common])
    module.main()
    out = json.loads((tmp_path / "fv_study_tiny.json").read_text())
    row = out["relations"]["successor"]
    assert not set(row["selection_trials"]) & set(row["evaluation_trials"]) and len(row["evaluation_trials"]) == 2
    assert row["chosen"]["k"] in (1, 2) and row["chosen"]["layer"] in (1, 2)
    assert {"clean_icl_accuracy", "corrupted_icl_accuracy", "zero_shot_accuracy", "fv_accuracy", "random_accuracy",
            "cie_top_heads"} <= set(row)
    assert set(json.loads((tmp_path / "fv_study.json").read_text())) == {"tiny"}
    assert (tmp_path / "fv_study.html").is_file()
