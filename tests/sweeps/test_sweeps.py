"""Sweep configs and results: validation, the grid of sites or ablations a config expands to, and saved files that
agree with the direct library calls."""

import csv
import json

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.knockout import Ablation, Method, knockout
from rcid_tl.interventions.write import Direction, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.sweeps.common import ModelSpec, parse_layers, parse_positions
from rcid_tl.sweeps.knockout import KnockoutConfig, run_knockout
from rcid_tl.sweeps.patch import PatchConfig, run_patch
from rcid_tl.tasks import IOIConfig, TaskSpec, build_ioi


@pytest.fixture(scope="module")
def spec(tiny_gpt2_dir):
    return ModelSpec(str(tiny_gpt2_dir))


def test_parse_layers(gpt2_tokenizer):
    assert parse_layers("all", 3) == (0, 1, 2) and parse_layers("0,2", 3) == (0, 2)
    with pytest.raises(InputError, match="layer 3 is out of range; this model has layers 0..2"):
        parse_layers("1,3", 3)
    with pytest.raises(InputError, match="bad layer list 'one'"):
        parse_layers("one", 3)


def test_parse_positions(gpt2_tokenizer):
    dataset = build_ioi(IOIConfig(n=1), gpt2_tokenizer)
    assert parse_positions("all", dataset) == ("io", "s1", "s1+1", "s2", "end")
    assert parse_positions("s2, end", dataset) == ("s2", "end")
    with pytest.raises(InputError, match="unknown position 'yy'; task ioi has: io, s1, s1\\+1, s2, end"):
        parse_positions("io,yy", dataset)


def test_config_validation(spec):
    task = TaskSpec("ioi", n=2)
    with pytest.raises(InputError, match="site 'pattern' cannot be patched"):
        PatchConfig(spec, task, site=Site.PATTERN)
    with pytest.raises(InputError, match="--batch-size must be ≥ 1"):
        PatchConfig(spec, task, rows_per_forward=0)
    for chosen in (dict(), dict(heads="0.1", all_heads=True), dict(heads="0.1", head_class="induction")):
        with pytest.raises(InputError, match="choose exactly one of --heads, --class or --all-heads"):
            KnockoutConfig(spec, task, **chosen)
    with pytest.raises(InputError, match="unknown task 'sst2'"):
        TaskSpec("sst2")
    with pytest.raises(InputError, match="unknown corruption 'swap'"):
        TaskSpec("ioi", corruption="swap")


def test_patch_sweep_equals_patch_sites_and_saves_itself(spec, tiny_gpt2, tmp_path):
    config = PatchConfig(spec, TaskSpec("ioi", n=3, seed=4), site=Site.Z, layers="1", positions="s2,end",
                         direction=Direction.DENOISING)
    result = run_patch(config, model=tiny_gpt2)
    assert [(e["layer"], e["position"], e["head"]) for e in result.effects] == [
        (1, p, h) for p in ("s2", "end") for h in range(4)]
    dataset = build_ioi(IOIConfig(n=3, seed=4), tiny_gpt2.tokenizer)
    sites = [PatchSite(Site.Z, 1, p, h) for p in ("s2", "end") for h in range(4)]
    direct, runs = patch_sites(tiny_gpt2, dataset.batch(), sites, metric_for(dataset), Direction.DENOISING)
    assert torch.tensor([e["per_example"] for e in result.effects]).allclose(direct, atol=1e-6)
    assert result.header["metric_clean"] == runs.clean.tolist()

    paths = result.save(tmp_path / "out")
    assert {p.name for p in paths} >= {"patch.json", "patch.csv", "patch.html"}
    saved = json.loads((tmp_path / "out" / "patch.json").read_text())
    assert saved == json.loads(json.dumps(result.to_json()))
    rows = list(csv.DictReader((tmp_path / "out" / "patch.csv").open()))
    assert len(rows) == 8 * 3 and rows[0].keys() == {"site", "layer", "head", "position", "example", "delta"}
    assert float(rows[5]["delta"]) == pytest.approx(result.effects[1]["per_example"][2], abs=1e-6)


def test_knockout_sweep_all_heads(spec, tiny_gpt2, tmp_path):
    config = KnockoutConfig(spec, TaskSpec("ioi", n=2, seed=5), all_heads=True, method=Method.ZERO)
    result = run_knockout(config, model=tiny_gpt2)
    assert [a["heads"] for a in result.ablations] == [[f"{layer}.{h}"] for layer in range(2) for h in range(4)]
    dataset = build_ioi(IOIConfig(n=2, seed=5), tiny_gpt2.tokenizer)
    direct, runs, _ = knockout(tiny_gpt2, dataset.batch(), [Ablation((Head(1, 3),))], metric_for(dataset), Method.ZERO)
    last = result.ablations[-1]
    assert last["metric"] == pytest.approx(direct[0].tolist(), abs=1e-6)
    assert last["delta"] == pytest.approx((runs.clean - direct[0]).tolist(), abs=1e-6)
    assert last["mean"] == pytest.approx(sum(last["delta"]) / 2, abs=1e-6)
    assert result.figure().data[0].type == "heatmap"  # one head per ablation: a layer × head grid
    paths = result.save(tmp_path)
    assert {p.name for p in paths} >= {"knockout.json", "knockout.csv", "knockout.html"}


def test_head_class_needs_gpt2_small(spec, tiny_gpt2):
    config = KnockoutConfig(spec, TaskSpec("ioi", n=1), head_class="name-mover")
    with pytest.raises(InputError, match=r"names GPT-2 small's heads .* this model has 2 × 4; run `rcid-tl heads"):
        run_knockout(config, model=tiny_gpt2)
    with pytest.raises(InputError, match="unknown head class 'movers'; allowed: name-mover"):
        run_knockout(KnockoutConfig(spec, TaskSpec("ioi", n=1), head_class="movers"), model=tiny_gpt2)


def test_sweeps_on_direct_forwards_equal_the_bridge_path(spec, tiny_gpt2, monkeypatch):
    """The patch and knockout sweeps run on direct forwards (the bridge's HF modules, hooks fired by name) when
    nothing is attached to the model; with them turned off every forward goes through the bridge: the same numbers
    to float32 rounding (1e-5: the same arithmetic op for op, in batches of other shapes; tests/interventions/
    test_direct.py)."""
    from rcid_tl.interventions import direct

    patch = PatchConfig(spec, TaskSpec("ioi", n=3, seed=1), site=Site.RESID_PRE, layers="all", positions="s2,end")
    knock = KnockoutConfig(spec, TaskSpec("ioi", n=2, seed=2), all_heads=True, method=Method.ZERO)
    assert direct.usable(tiny_gpt2)
    fast = run_patch(patch, model=tiny_gpt2).effects, run_knockout(knock, model=tiny_gpt2).ablations
    monkeypatch.setattr(direct, "enabled", False)
    slow = run_patch(patch, model=tiny_gpt2).effects, run_knockout(knock, model=tiny_gpt2).ablations
    for a, b in zip(fast[0], slow[0]):
        assert a["per_example"] == pytest.approx(b["per_example"], abs=1e-5)
    for a, b in zip(fast[1], slow[1]):
        assert a["metric"] == pytest.approx(b["metric"], abs=1e-5)
