"""Every subcommand against bad input: exit code 2, exactly one stderr line `rcid-tl: error: ...` naming the bad
value, no traceback, nothing written under --out, and the input files left as they were.

Placeholders in the arguments: {tiny} a 2-layer GPT-2 directory, {fx} the damaged fixtures below, {out} the
output path the case must not create (added as --out / --out-base-dir unless the case names its own).
"""

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

ROW = {"clean": "When Mary and John went to the store, John gave a drink to",
       "corrupt": "When Mary and John went to the store, Mary gave a drink to", "answer": " Mary", "wrong": " John"}
WORLD_ROW = {"clean": "After Martha and Wanda left the farm, Wanda sent a wallet to",  # words world-gpt2 knows
             "corrupt": "After Martha and Wanda left the farm, Martha sent a wallet to", "answer": " Martha",
             "wrong": " Wanda"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json")


def _model_copy(tiny: Path, root: Path, name: str) -> Path:
    target = root / name
    shutil.copytree(tiny, target)
    return target


@pytest.fixture(scope="module")
def fx(tmp_path_factory, tiny_gpt2_dir) -> Path:
    """Damaged models, bad pairs files and other broken inputs, each named by what is wrong with it."""
    root = tmp_path_factory.mktemp("bad-inputs")
    (_model_copy(tiny_gpt2_dir, root, "empty-weights") / "model.safetensors").write_bytes(b"")
    weights = _model_copy(tiny_gpt2_dir, root, "truncated-weights") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    (_model_copy(tiny_gpt2_dir, root, "corrupt-config") / "config.json").write_text('{"model_type": "gpt2", ')
    no_tok = _model_copy(tiny_gpt2_dir, root, "no-tokenizer")
    for name in TOKENIZER_FILES:
        (no_tok / name).unlink(missing_ok=True)
    bad_class = _model_copy(tiny_gpt2_dir, root, "model-as-tokenizer") / "tokenizer_config.json"
    bad_class.write_text(json.dumps({**json.loads(bad_class.read_text()), "tokenizer_class": "GPT2LMHeadModel"}))
    remote = _model_copy(tiny_gpt2_dir, root, "remote-code") / "config.json"
    remote.write_text(json.dumps({**json.loads(remote.read_text()), "model_type": "evil",
                                  "auto_map": {"AutoModelForCausalLM": "evil.EvilModel"}}))
    (root / "no-config").mkdir()
    (root / "read-only").mkdir(mode=0o555)
    (root / "a-file").write_text("not a directory\n")

    pairs = {
        "good": [ROW],
        "template-not-int": [{**ROW, "template": "first"}],
        "too-long": [{**ROW, "clean": "the " * 200 + ROW["clean"], "corrupt": "the " * 200 + ROW["corrupt"]}],
        "lengths-differ": [{**ROW, "corrupt": "When Mary and John went to the store, Mary Ann gave a drink to"}],
        "identical": [{**ROW, "corrupt": ROW["clean"]}],
        "missing-field": [{k: v for k, v in ROW.items() if k != "wrong"}],
        "two-token-answer": [{**ROW, "answer": " Zyxwv"}],
        "world-unknown-answer": [{**WORLD_ROW, "answer": " Zyxwv"}],
        "world-unknown-word": [{**WORLD_ROW, "clean": WORLD_ROW["clean"].replace("farm", "zyxwvut"),
                                "corrupt": WORLD_ROW["corrupt"].replace("farm", "zyxwvut")}],
    }
    for name, rows in pairs.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "not-json.jsonl").write_text("{clean: no quotes}\n")
    (root / "empty.jsonl").write_text("")
    (root / "latin1.jsonl").write_bytes(json.dumps({**ROW, "answer": " Zoë"}, ensure_ascii=False).encode("latin-1"))
    (root / "columns.csv").write_text("clean,corrupt,answer\na,b,c\n")
    (root / "checkpoints-corrupt.json").write_text("{")
    (root / "checkpoints-empty.json").write_text('{"checkpoints": []}')
    (root / "checkpoints-layer.json").write_text('{"checkpoints": [{"layer": 9, "position": "end"}]}')
    (root / "short.txt").write_text("too short\n")
    (root / "relations-bad.csv").write_text("q_id,input\nopp,hot\n")
    (root / "layer-map-3x2.json").write_text('{"kind": "file", "weights": [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]}')
    return root


def _fingerprint(*roots: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for root in roots for p in sorted(root.rglob("*"))
            if p.is_file()}


T = "{tiny}"
D = "--model"
# (command, arguments, message regex). The default model is the embedded world-gpt2 where a case gives none.
CASES = {
    # --out: creatable and writable, checked before any model loads
    "out is a file": (["patch"], ["--out", "{fx}/a-file"], r"--out .*a-file.* is an existing file"),
    "out under a file": (["knockout", "--all-heads"], ["--out", "{fx}/a-file/run"], r"--out .*a-file.* not a directory"),
    "out under read-only parent": (["patch"], ["--out", "{fx}/read-only/run"], r"is not writable"),
    "out unwritable": (["checkpoints"], ["--out", "/proc/rcid-tl-out"], r"--out '/proc/rcid-tl-out' .*(writable|create)"),
    "distill out is a file": (["distill"], ["--out", "{fx}/a-file"], r"--out .*a-file.* is an existing file"),
    "fv out-base is a file": (["fv", "cie"], ["--out-base-dir", "{fx}/a-file"], r"--out-base-dir .*is an existing file"),
    "export out is a dir": (["fv", "export-world-relations"], ["--out", "{fx}/no-config"], r"is a directory"),
    # devices and dtypes
    "cuda missing": (["patch", D, T, "--device", "cuda"], [], r"device 'cuda' is not available"),
    "device unknown": (["knockout", "--heads", "0.1", "--device", "gpu0"], [], r"unknown device 'gpu0'"),
    "device index": (["checkpoints", "--device", "cuda:7"], [], r"device 'cuda:7' is not available"),
    "distill device": (["distill", "--device", "mps"], [], r"device 'mps' is not available"),
    "fv device": (["fv", "cie", "--device", "tpu"], [], r"unknown device 'tpu'"),
    "dtype": (["patch", D, T, "--dtype", "float8"], [], r"unknown dtype 'float8'"),
    # counts
    "n huge": (["patch", "--n", "1000000000"], [], r"--n 1000000000 .*at most"),
    "n negative": (["knockout", "--all-heads", "--n", "-3"], [], r"--n must be ≥ 1, got -3"),
    "n huge gt": (["checkpoints", "--task", "greater-than", "--n", "5000000"], [], r"--n 5000000 .*at most"),
    "n over pairs rows": (["patch", D, T, "--task", "pairs:{fx}/good.jsonl", "--n", "3"], [],
                          r"--n 3 exceeds the 1 rows"),
    "batch size": (["patch", "--batch-size", "0"], [], r"--batch-size must be ≥ 1, got 0"),
    "consistency bootstrap": (["consistency", "--student", T, "--n-bootstrap", "0"], [], r"--n-bootstrap must be ≥ 1"),
    "distill steps": (["distill", "--steps", "0"], [], r"--steps must be ≥ 1, got 0"),
    "distill pretrain": (["distill", "--pretrain-steps", "-1"], [], r"--pretrain-steps must be ≥ 0, got -1"),
    "distill eval n": (["distill", "--eval-n", "0"], [], r"--eval-n must be ≥ 1, got 0"),
    "distill n huge": (["distill", "--n", "1000000000"], [], r"--n 1000000000 .*at most"),
    "distill every": (["distill", "--save-every", "0"], [], r"--save-every must be ≥ 1, got 0"),
    "evaluate n": (["evaluate", "--student", T, "--n", "0"], [], r"--n must be ≥ 1, got 0"),
    "fv trials": (["fv", "cie", "--n-trials", "0"], [], r"--n-trials must be ≥ 1, got 0"),
    "fv demos": (["fv", "sample", "--n-demos", "-1"], [], r"--n-demos must be ≥ 1 .*got -1"),
    "fv k zero": (["fv", "run", "--k", "0"], [], r"--k must be ≥ 1, got 0"),
    # real numbers: finite and in range
    "lr nan": (["distill", "--lr", "nan"], [], r"--lr must be a finite number > 0, got nan"),
    "lr negative": (["distill", "--lr", "-0.1"], [], r"--lr must be a finite number > 0, got -0.1"),
    "lr inf": (["distill", "--lr", "inf"], [], r"--lr must be a finite number > 0, got inf"),
    "lambda negative": (["distill", "--lambda", "-1"], [], r"--lambda must be a finite number ≥ 0, got -1"),
    "lambda nan": (["distill", "--lambda", "nan"], [], r"--lambda must be a finite number ≥ 0, got nan"),
    "temperature zero": (["distill", "--temperature", "0"], [], r"--temperature must be a finite number > 0, got 0"),
    "temperature inf": (["distill", "--temperature", "inf"], [], r"--temperature must be a finite number > 0"),
    "mix weight nan": (["distill", "--mix-weight", "nan"], [], r"--mix-weight must be a finite number ≥ 0, got nan"),
    "fv alpha nan": (["fv", "inject", "--run-id", "x", "--alpha", "1,nan"], [], r"--alpha .*finite"),
    "fv alpha text": (["fv", "run", "--alpha", "one"], [], r"bad --alpha 'one'"),
    "fv edit alpha inf": (["fv", "vectors", "--run-id", "x", "--alpha", "inf"], [], r"--alpha must be a finite"),
    # choices
    "method": (["distill", "--method", "kd"], [], r"unknown method 'kd'; allowed: standard-kd"),
    "knockout method": (["knockout", "--all-heads", "--method", "median"], [], r"unknown --method 'median'"),
    "reference": (["knockout", "--all-heads", "--reference", "noise"], [], r"unknown --reference 'noise'"),
    "direction": (["patch", "--direction", "sideways"], [], r"unknown direction 'sideways'"),
    "site": (["patch", "--site", "resid"], [], r"unknown site 'resid'"),
    "checkpoint site": (["checkpoints", "--site", "pattern"], [], r"site 'pattern' cannot be a checkpoint site"),
    "max saturation": (["checkpoints", "--max-saturation", "-1"], [], r"--max-saturation must be > 0"),
    "head map": (["consistency", "--student", T, "--head-map", "best"], [], r"unknown --head-map 'best'"),
    "reference n": (["knockout", "--all-heads", "--reference-n", "0"], [], r"--reference-n must be ≥ 1, got 0"),
    "layer map": (["consistency", "--student", T, "--layer-map", "best"], [], r"unknown --layer-map 'best'"),
    "metric": (["patch", "--metric", "accuracy"], [], r"unknown metric 'accuracy'; allowed: task"),
    "corruption": (["distill", "--corruption", "swap"], [], r"unknown corruption 'swap'"),
    "task": (["evaluate", "--student", T, "--task", "sst2"], [], r"unknown task 'sst2'"),
    "text too short": (["distill", "--text", "{fx}/short.txt"], [], r"text file .*short.txt.* has fewer than 128"),
    "text missing": (["distill", "--text", "{fx}/none.txt"], [], r"text source .*none.txt.* is neither"),
    "fv format": (["fv", "sample", "--format", "json"], [], r"unknown prompt format 'json'"),
    "fv score key": (["fv", "cie", "--score-key", "auc"], [], r"unknown score key 'auc'"),
    "fv scope": (["fv", "inject", "--run-id", "x", "--eval-scope", "everywhere"], [], r"unknown --eval-scope"),
    "fv source": (["fv", "inject", "--run-id", "x", "--fv", "mean"], [], r"unknown --fv 'mean'"),
    # run ids are plain names
    "run id parent": (["fv", "cie", "--run-id", ".."], [], r"--run-id '..' .*plain name"),
    "run id slash": (["fv", "sample", "--run-id", "a/b"], [], r"--run-id 'a/b' .*plain name"),
    "run id empty": (["fv", "vectors", "--run-id", ""], [], r"--run-id '' .*plain name"),
    # model-dependent ranges, checked after loading the model and before any forward
    "top-k over candidates": (["checkpoints", D, T, "--top-k", "50"], [], r"--top-k 50 .*only \d+ candidate"),
    "distill top-k over candidates": (["distill", "--top-k", "500"], [], r"--top-k 500 .*only \d+ candidate"),
    "min unmodified": (["checkpoints", "--top-k", "2", "--min-unmodified", "3"], [], r"--min-unmodified must be"),
    "layers": (["patch", D, T, "--layers", "0,5"], [], r"layer 5 is out of range; this model has layers 0..1"),
    "heads": (["knockout", D, T, "--heads", "0.9"], [], r"head 0.9 is out of range"),
    "fv k over heads": (["fv", "run", "--qids", "antonym", "--n-trials", "2", "--k", "99"], [],
                        r"k = 99 is out of range"),
    "position": (["patch", D, T, "--positions", "io,yy"], [], r"unknown position 'yy'; task ioi has: io, s1"),
    "unpatchable site": (["patch", D, T, "--site", "pattern"], [], r"site 'pattern' cannot be patched"),
    "head layer": (["knockout", D, T, "--heads", "7.0"], [], r"layer 7 is out of range"),
    "head syntax": (["knockout", D, T, "--heads", "nine"], [], r"bad head 'nine'; write heads as LAYER.HEAD"),
    "head class": (["knockout", D, T, "--class", "movers"], [], r"unknown head class 'movers'; allowed: name-mover"),
    "class off GPT-2 small": (["knockout", D, T, "--class", "induction"], [], r"names GPT-2 small's heads"),
    "two head choices": (["knockout", D, T, "--heads", "0.1", "--all-heads"], [], r"choose exactly one of --heads"),
    "no head choice": (["knockout", D, T], [], r"choose exactly one of --heads"),
    # damaged models
    "empty weights": (["patch", D, "{fx}/empty-weights"], [], r"could not load model .*empty-weights"),
    "truncated weights": (["knockout", D, "{fx}/truncated-weights", "--all-heads"], [],
                          r"could not load model .*truncated-weights"),
    "corrupt config": (["checkpoints", D, "{fx}/corrupt-config"], [], r"config.json .*not valid JSON"),
    "no tokenizer": (["patch", D, "{fx}/no-tokenizer"], [], r"has no tokenizer files"),
    "model as tokenizer": (["patch", D, "{fx}/model-as-tokenizer"], [],
                           r"tokenizer class 'GPT2LMHeadModel' .*not a tokenizer"),
    "remote code": (["patch", D, "{fx}/remote-code"], [], r"custom code .*not run"),
    "no config": (["consistency", "--student", "{fx}/no-config"], [], r"has no config.json"),
    "hub name offline": (["patch", D, "no-such-org/no-such-model"], [],
                         r"model 'no-such-org/no-such-model' is not an embedded model .*hub is unreachable"),
    "model missing": (["patch", D, "{fx}/no-such-dir"], [], r"is not a directory with a Hugging Face model"),
    "model is a file": (["evaluate", "--student", "{fx}/a-file"], [], r"is not a directory with a Hugging Face"),
    "student damaged": (["distill", "--student", "{fx}/empty-weights"], [], r"could not load model .*empty-weights"),
    # damaged pairs files
    "pairs not utf-8": (["patch", D, T, "--task", "pairs:{fx}/latin1.jsonl"], [], r"latin1.jsonl is not UTF-8 text"),
    "pairs template": (["patch", D, T, "--task", "pairs:{fx}/template-not-int.jsonl"], [],
                       r"row 1: template 'first' is not an integer"),
    "pairs too long": (["patch", D, T, "--task", "pairs:{fx}/too-long.jsonl"], [],
                       r"row 1 is \d+ tokens, more than the model's context of 128"),
    "pairs lengths": (["patch", D, T, "--task", "pairs:{fx}/lengths-differ.jsonl"], [], r"they must match"),
    "pairs identical": (["knockout", D, T, "--all-heads", "--task", "pairs:{fx}/identical.jsonl"], [], r"identical"),
    "pairs field": (["patch", D, T, "--task", "pairs:{fx}/missing-field.jsonl"], [], r"missing or non-text field"),
    "pairs json": (["patch", D, T, "--task", "pairs:{fx}/not-json.jsonl"], [], r"line 1: not valid JSON"),
    "pairs missing": (["patch", D, T, "--task", "pairs:{fx}/none.jsonl"], [], r"pairs file .* does not exist"),
    "pairs two-token answer": (["knockout", D, T, "--all-heads", "--task", "pairs:{fx}/two-token-answer.jsonl"], [],
                               r"row 1: answer ' Zyxwv' is \d tokens; it must be exactly one"),
    "pairs empty": (["patch", D, T, "--task", "pairs:{fx}/empty.jsonl"], [], r"has no rows"),
    "pairs csv": (["patch", D, T, "--task", "pairs:{fx}/columns.csv"], [], r"missing or non-text field 'wrong'"),
    "pairs unknown answer": (["patch", "--task", "pairs:{fx}/world-unknown-answer.jsonl"], [],
                             r"answer ' Zyxwv' contains text .*unknown token"),
    "pairs unknown word": (["knockout", "--all-heads", "--task", "pairs:{fx}/world-unknown-word.jsonl"], [],
                           r"row 1: clean .*unknown token"),
    # checkpoint files
    "checkpoints corrupt": (["consistency", "--student", T, "--teacher", T, "--checkpoints",
                             "{fx}/checkpoints-corrupt.json"], [], r"not valid JSON"),
    "checkpoints empty": (["distill", "--checkpoints", "{fx}/checkpoints-empty.json"], [], r"holds no checkpoints"),
    "checkpoints layer": (["evaluate", "--student", T, "--teacher", T, "--checkpoints",
                           "{fx}/checkpoints-layer.json"], [], r"layer 9 is out of range"),
    "checkpoints missing": (["distill", "--checkpoints", "{fx}/none.json"], [], r"checkpoints file .* not found"),
    # other commands' own inputs
    "relations columns": (["fv", "sample", "--relations", "{fx}/relations-bad.csv"], [], r"lacks column"),
    "relations missing": (["fv", "cie", "--relations", "{fx}/none.csv"], [], r"none.csv"),
    "aie needs qids": (["fv", "aie", "--run-id", "x", "--qids", ""], [], r"--qids must name at least one"),
    "different tokenizers": (["consistency", "--student", T], [], r"tokenizer differs from the teacher's"),
    "evaluate no student": (["evaluate"], [], r"--student is required"),
    # the command line itself (click's wording differs between releases)
    "missing option": (["consistency"], [], r"Missing (option|parameter).*student"),
    "not an integer": (["patch", "--n", "ten"], [], r"Invalid value for '--n'.*(integer|ten)"),
    "no such option": (["knockout", "--head", "0.1"], [], r"No such option.*--head"),
    "no such command": (["pach"], [], r"No such command.*pach"),
    "models extra": (["models", "--all"], [], r"No such option.*--all"),
    # rcid-tl heads, and knockout --classes reading its heads.json
    "heads repeat n": (["heads", "--repeat-n", "0"], [], r"--repeat-n must be ≥ 1, got 0"),
    "heads repeat length": (["heads", "--repeat-length", "1"], [], r"--repeat-length must be ≥ 2, got 1"),
    "heads repeat over context": (["heads", D, T, "--repeat-length", "64"], [],
                                  r"--repeat-length 64 makes sequences longer than the model's context of 128"),
    "heads out is a file": (["heads"], ["--out", "{fx}/a-file"], r"--out .*a-file.* is an existing file"),
    "heads corruption": (["heads", "--corruption", "swap"], [], r"unknown corruption 'swap'"),
    "classes missing": (["knockout", D, T, "--class", "induction", "--classes", "{fx}/none.json"], [],
                        r"classes file .*none.json.* not found; write one with `rcid-tl heads`"),
    "classes corrupt": (["knockout", D, T, "--class", "induction", "--classes", "{fx}/checkpoints-corrupt.json"], [],
                        r"is not a readable heads.json"),
    "classes lacks class": (["knockout", D, T, "--class", "induction", "--classes", "{fx}/checkpoints-empty.json"],
                            [], r"has no class 'induction'"),
    "patch method": (["patch", "--method", "guess"], [],
                     r"unknown --method 'guess'; allowed: exact, attribution, attribution\+exact"),
    "patch top": (["patch", "--method", "attribution+exact", "--top", "0"], [], r"--top must be ≥ 1, got 0"),
    # KV distillation: distill-kv and diagnose-losses
    "objective": (["distill", "--objective", "kd"], [], r"unknown --objective 'kd'; `rcid-tl distill` is the method"),
    "objective kv": (["distill", "--objective", "kv"], [], r"--objective kv .* is `rcid-tl distill-kv`"),
    "kv option on distill": (["distill", "--kv-loss", "cosine"], [], r"No such option: --kv-loss; `rcid-tl distill-kv`"),
    "kv loss": (["distill-kv", "--kv-loss", "l1"], [], r"unknown --kv-loss 'l1'; allowed: mse, cosine"),
    "kv weight negative": (["distill-kv", "--kv-weight", "-1"], [],
                           r"--kv-weight must be a finite number ≥ 0, got -1"),
    "cka weight nan": (["distill-kv", "--cka-weight", "nan"], [],
                       r"--cka-weight must be a finite number ≥ 0, got nan"),
    "kv warmup negative": (["distill-kv", "--attention-weighted-kv-warmup", "-5"], [],
                           r"--attention-weighted-kv-warmup must be ≥ 0, got -5"),
    "teacher attention alone": (["distill-kv", "--use-teacher-attention"], [],
                                r"--use-teacher-attention chooses the attention of --attention-weighted-kv"),
    "kv compression": (["distill-kv", "--kv-compression", "0"], [],
                       r"--kv-compression must be ≥ 1, got 0"),
    "kv checkpointing on cpu": (["distill-kv", "--gradient-checkpointing"], [],
                                r"--gradient-checkpointing .*needs a CUDA --device"),
    "kv teacher without cot words": (["distill-kv", "--teacher", "world-gpt2"], [],
                                     r"teacher 'world-gpt2' has no chain-of-thought vocabulary"),
    "kv cka layer": (["distill-kv", "--teacher", T, "--cka-layers", "5"], [],
                     r"layer 5 is out of range; the student has layers 0..0"),
    "diagnose loss": (["diagnose-losses", "--teacher", T, "--kv-loss", "huber"], [], r"unknown --kv-loss 'huber'"),
    "diagnose batches": (["diagnose-losses", "--teacher", T, "--n-batches", "0"], [], r"--n-batches must be ≥ 1, got 0"),
    "diagnose codi layer": (["diagnose-losses", "--teacher", T, "--codi-weight", "0.5", "--codi-layers", "3"], [],
                            r"layer 3 is out of range; the student has layers 0..0"),
    # multi-teacher KV distillation: distill-multiteacher --teachers A,B
    "teachers on distill": (["distill", "--teachers", "world-gpt2,world-qwen2"], [],
                            r"--teachers .* `rcid-tl distill-multiteacher` \(--teachers A,B\)"),
    "unknown fusion": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2", "--fusion", "mean"],
                       [], r"unknown fusion 'mean'; allowed: fixed, similarity, learned"),
    "negative teacher weight": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2",
                                 "--teacher-weights", "0.5,-0.5"], [],
                                r"teacher weights must be finite, ≥ 0 and not all 0, got \[0.5, -0.5\]"),
    "teacher weights count": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2",
                               "--teacher-weights", "1"], [], r"got 1 teacher weights for 2 teachers"),
    "teacher weights with a router": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2",
                                       "--fusion", "learned", "--teacher-weights", "1,2"], [],
                                      r"teacher weights apply to fixed fusion only, not learned"),
    "mismatched layer map": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2", "--layer-map",
                              "{fx}/layer-map-3x2.json,{fx}/layer-map-3x2.json"], [],
                             r"layer map for world-gpt2 is 2 student × 3 teacher layers; the models have 2 student "
                             r"and 6 teacher layers"),
    "layer map per teacher": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2", "--layer-map",
                               "{fx}/layer-map-3x2.json"], [], r"one existing map file per teacher \(2"),
    "teachers without cot words": (["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2"], [],
                                   r"'world-gpt2' has no chain-of-thought vocabulary"),
    "time alignment": (["distill-multiteacher", "--teachers", "world-gpt2", "--time-alignment", "dtw"], [],
                       r"unknown --time-alignment 'dtw'; allowed: soft, hard"),
    # the mini-study
    "study steps": (["study", "--steps", "0"], [], r"--steps must be ≥ 1, got 0"),
    "study jobs": (["study", "--jobs", "0"], [], r"--jobs must be ≥ 1, got 0"),
    "study pretrain": (["study", "--pretrain-steps", "-1"], [], r"--pretrain-steps must be ≥ 0, got -1"),
    "study scale": (["study", "--scale", "5"], [], r"--scale must be in \(0, 4\], got 5"),
    "study teacher missing": (["study", "--teacher", "./missing"], [], r"model path './missing' is not a directory"),
    "study out is a file": (["study"], ["--out", "{fx}/a-file"], r"--out .*a-file.* is an existing file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(cli, tiny_gpt2_dir, fx, tmp_path, monkeypatch, case):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # tests never reach the hub, even where it is reachable
    command, extra, message = CASES[case]
    if "/proc/" in " ".join(extra) and not sys.platform.startswith("linux"):
        pytest.skip("needs Linux's /proc as an unwritable location")
    if "read-only" in " ".join(extra) and os.geteuid() == 0:
        pytest.skip("root writes into a read-only directory anyway ('out unwritable' covers root)")
    out = tmp_path / "out"
    args = [a.format(tiny=tiny_gpt2_dir, fx=fx) for a in command + extra]
    if command[0] not in {"models", "pach"} and not extra and command != ["consistency"]:
        args += ["--out-base-dir" if command[0] == "fv" and command[1] != "export-world-relations" else "--out",
                 str(out / "x.csv" if command[1:2] == ["export-world-relations"] else out)]
    before = _fingerprint(fx, tiny_gpt2_dir)
    run = cli(*args)
    lines = run.stderr.strip().splitlines()
    assert run.code == 2, run.stderr
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("rcid-tl: error: "), lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert not out.exists()
    assert _fingerprint(fx, tiny_gpt2_dir) == before


def test_the_table_spans_every_command():
    commands = {c[0] if c[0] != "fv" else f"fv {c[1]}" for c, _, _ in CASES.values()}
    expected = {"models", "patch", "knockout", "checkpoints", "consistency", "distill", "distill-kv",
                "distill-multiteacher", "evaluate", "fv sample",
                "fv cie", "fv aie", "fv vectors", "fv inject", "fv run", "fv export-world-relations", "diagnose-losses", "study"}
    assert expected <= commands and len(CASES) >= 60
