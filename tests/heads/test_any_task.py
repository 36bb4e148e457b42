"""`rcid-tl heads` on a model that cannot run IOI (stories260K: ' Mary' is three tokens) and a task other than IOI:
the task-free scores run, the task's direct effects are scored on its metric, and the IOI-only ones are skipped."""

import csv
import json

from rcid_tl.heads.run import SCORES, TASK_EFFECTS, TASK_FREE


def test_heads_on_stories260k_and_the_pronoun_task(cli, tmp_path, stories_dir):
    out = tmp_path / "heads"
    run = cli("heads", "--model", stories_dir, "--task", "tinystories-pronoun", "--n", "4", "--repeat-n", "2",
              "--repeat-length", "6", "--out", out)
    assert run.code == 0, run.stderr
    assert "skipped on task tinystories-pronoun" in run.stderr and "largest direct effects on logit_diff" in run.stderr
    payload = json.loads((out / "heads.json").read_text())
    assert payload["task"] == "tinystories-pronoun" and payload["metric"] == "logit_diff"
    assert len(payload["examples"]) == 4 and set(payload["classes"]) == {"induction", "duplicate-token",
                                                                         "previous-token"}
    for name in SCORES:
        grid = payload["scores"][name]
        assert len(grid) == 5 and all(len(row) == 8 for row in grid), name  # 5 layers × 8 query heads
        defined = [v is not None for row in grid for v in row]
        assert all(defined) if name in TASK_FREE + TASK_EFFECTS else not any(defined), name
        assert (name in payload["skipped"]) == (name not in TASK_FREE + TASK_EFFECTS), name
    assert "name-mover" in payload["skipped"] and payload["functional_classes"] == {}
    rows = list(csv.DictReader((out / "heads.csv").open()))
    assert len(rows) == 40 and rows[9]["induction"] and rows[9]["copy"] == ""
    assert (out / "heads_attention.html").is_file() and (out / "heads_effects.html").is_file()
