"""User pairs from JSONL and CSV: parsing, named positions, and one-line InputErrors that name the bad row."""

import csv
import json

import pytest

from rcid_tl.errors import InputError
from rcid_tl.tasks import PairsConfig, TaskSpec, build_pairs, build_task

ROWS = [
    {"clean": "When Mary and John went to the store, John gave a drink to",
     "corrupt": "When Mary and John went to the store, Mary gave a drink to", "answer": " Mary", "wrong": " John"},
    {"clean": "The cat sat on the mat because it was", "corrupt": "The dog sat on the mat because it was",
     "answer": " tired", "wrong": " happy"},
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _csv(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["clean", "corrupt", "answer", "wrong"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_jsonl_and_csv_give_the_same_examples(tmp_path, gpt2_tokenizer):
    a = build_pairs(PairsConfig(_jsonl(tmp_path / "p.jsonl", ROWS)), gpt2_tokenizer)
    b = build_pairs(PairsConfig(_csv(tmp_path / "p.csv", ROWS)), gpt2_tokenizer)
    assert a.examples == b.examples and len(a) == 2
    first, second = a.examples
    assert first.clean_ids[0] == gpt2_tokenizer.bos_token_id
    assert gpt2_tokenizer.decode([first.clean_ids[first.positions["diff"]]]) == " John"
    assert gpt2_tokenizer.decode([second.corrupt_ids[second.positions["diff"]]]) == " dog"
    assert first.positions["end"] == first.answer_pos == len(first.clean_ids) - 1
    assert first.correct_id == gpt2_tokenizer.encode(" Mary")[0]


def test_template_keeps_its_json_type(tmp_path, gpt2_tokenizer):
    # found by the fuzz test: a null or integer `template` is not text, and the rows' type says so
    rows = [{**ROWS[0], "template": None}, {**ROWS[1], "template": 3}]
    data = build_pairs(PairsConfig(_jsonl(tmp_path / "p.jsonl", rows)), gpt2_tokenizer)
    assert [e.template for e in data.examples] == [0, 3]


def test_first_n_rows_and_the_task_spec(tmp_path, gpt2_tokenizer):
    path = _jsonl(tmp_path / "p.jsonl", ROWS)
    assert len(build_task(TaskSpec(f"pairs:{path}", n=1), gpt2_tokenizer)) == 1
    with pytest.raises(InputError, match="--n 3 exceeds the 2 rows of p.jsonl"):
        build_pairs(PairsConfig(path, n=3), gpt2_tokenizer)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("bad, message", [
    (dict(answer=" Maryanne Smith"), r"row 2: answer ' Maryanne Smith' is \d+ tokens; it must be exactly one"),
    (dict(wrong=" Johnathan Doe"), r"row 2: wrong ' Johnathan Doe' is \d+ tokens"),
    (dict(corrupt="When Mary and John went to the big store, Mary gave a drink to"),
     r"row 2: clean is \d+ tokens but corrupt is \d+; they must match"),
    (dict(corrupt=ROWS[0]["clean"]), "row 2: clean and corrupt are identical"),
    (dict(answer=None), "row 2: missing or non-text field 'answer'"),
])
def test_bad_rows_name_their_row(tmp_path, gpt2_tokenizer, fmt, bad, message):
    row = {k: v for k, v in {**ROWS[0], **bad}.items() if v is not None}
    rows = [ROWS[1], row]
    if fmt == "csv" and "answer" not in row:
        path = tmp_path / "p.csv"
        path.write_text("clean,corrupt,wrong\nx,y,z\na,b,c\n")
        message = "row 1: missing or non-text field 'answer'"
    else:
        path = (_jsonl if fmt == "jsonl" else _csv)(tmp_path / f"p.{fmt}", rows)
    with pytest.raises(InputError, match=message):
        build_pairs(PairsConfig(path), gpt2_tokenizer)


def test_malformed_json_line_names_its_line(tmp_path, gpt2_tokenizer):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + '{"clean": "unterminated\n')
    with pytest.raises(InputError, match="p.jsonl, line 2: not valid JSON"):
        build_pairs(PairsConfig(path), gpt2_tokenizer)


def test_missing_and_empty_files(tmp_path, gpt2_tokenizer):
    with pytest.raises(InputError, match="does not exist"):
        build_pairs(PairsConfig(tmp_path / "nope.jsonl"), gpt2_tokenizer)
    with pytest.raises(InputError, match="has no rows"):
        build_pairs(PairsConfig(_jsonl(tmp_path / "empty.jsonl", [])), gpt2_tokenizer)


def test_stories_pairs_are_single_token_name_swaps(stories_pairs, stories):
    dataset = build_pairs(PairsConfig(stories_pairs), stories.tokenizer)
    for e in dataset.examples:
        assert e.clean_ids[0] == 1  # stories260K's <s>
        assert sum(a != b for a, b in zip(e.clean_ids, e.corrupt_ids)) == 1
        assert e.corrupt_ids[e.positions["diff"]] == e.correct_id
