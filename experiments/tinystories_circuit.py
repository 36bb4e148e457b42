"""Find stories260K's circuit for a TinyStories task by greedy mean-ablation knockout (`rcid_tl.heads.circuit`), with
the other TinyStories task as the control, then measure it on held-out prompts: the cut when it is ablated, its
faithfulness (the share of the clean logit difference it keeps with every other head ablated) after each greedy
step, and each head's role (`rcid_tl.heads.roles`).

    python experiments/tinystories_circuit.py --task tinystories-pronoun --out figures/tinystories_circuit

The search runs on `n` prompts of the task's training split; every number after it is on the held-out split, which
the search never saw. Means come from the task's `all` split, per frame and answer position.
"""

import argparse
import json
import time
from pathlib import Path

import torch

import rcid_tl
from rcid_tl.artifacts import write_json, write_text
from rcid_tl.heads.circuit import (circuit_scores, grow_for_faithfulness, search_circuit, tinystories_task,
                                   tinystories_tasks)
from rcid_tl.heads.roles import head_roles, role_of
from rcid_tl.hooks.names import Head
from rcid_tl.models.loading import load_model
from rcid_tl.progress import set_progress

MODEL = "../shared/data/checkpoints/stories260K/hf"


def parse_head(text: str) -> Head:
    layer, head = text.split(".")
    return Head(int(layer), int(head))


def run(model_path: str, task: str, n: int, seed: int, max_heads: int, target_cut: float, tolerance: float,
        grow_to: int, faithfulness: float) -> dict:
    model = load_model(model_path)
    t0 = time.perf_counter()
    tasks = tinystories_tasks(model, task, n=n, seed=seed)
    report = search_circuit(model, tasks=tasks, max_heads=max_heads, target_cut=target_cut, tolerance=tolerance)
    search_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    grown = grow_for_faithfulness(model, tasks[task], [parse_head(h) for h in report.circuit], grow_to, faithfulness)
    grow_s = time.perf_counter() - t1
    circuit = [parse_head(h) for h in grown[-1]["heads"]]
    held_out = {name: tinystories_task(model, name) for name in tasks}  # the held-out splits, every prompt
    path = [{"heads": [str(h) for h in circuit[: k + 1]], "found_by": "knockout" if k < len(report.circuit)
             else "faithfulness", **circuit_scores(model, held_out[task], circuit[: k + 1])}
            for k in range(len(circuit))]
    controls = {name: {"knockout_circuit": circuit_scores(model, t, circuit[: len(report.circuit)]),
                       "grown_circuit": circuit_scores(model, t, circuit)}
                for name, t in held_out.items() if name != task}
    roles = head_roles(model, held_out[task], circuit)
    all_heads = [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]
    return {
        "rcid_tl_version": rcid_tl.__version__, "model": model_path, "task": task, "search": report.to_dict(),
        "search_wall_s": round(search_s, 1), "grown": grown, "grow_wall_s": round(grow_s, 1),
        "held_out": path[-1] if path else None, "greedy_path_held_out": path,
        "controls_held_out": controls, "roles": roles, "role_summary": {h: role_of(r) for h, r in roles.items()},
        "all_heads_direct_effect": {str(h): v["direct_effect"] for h, v in
                                    head_roles(model, held_out[task], all_heads).items()},
        "held_out_token_ids": {name: [e.to_json() for e in t.dataset.examples] for name, t in held_out.items()},
        "search_token_ids": {name: [list(e.clean_ids) for e in t.dataset.examples] for name, t in tasks.items()},
    }


def markdown(result: dict) -> str:
    s, h = result["search"], result["held_out"]
    lines = [f"# {result['task']} circuit of stories260K (greedy mean-ablation search)", "",
             f"Search on {s['config']['tasks'][result['task']]['n']} training prompts ({result['search_wall_s']} s), "
             f"control {', '.join(s['config']['controls'])} (tolerance ±{s['config']['tolerance']:.0%}); "
             f"circuit **{', '.join(s['circuit'])}** (criteria met: {s['meets_criteria']}). Grown for "
             f"faithfulness on the same prompts ({result['grow_wall_s']} s): **{', '.join(result['grown'][-1]['heads'])}"
             f"** (training-prompt faithfulness {result['grown'][-1]['faithfulness']:.2f}).", "",
             "## Greedy path, measured on held-out prompts", "",
             "| heads | found by | clean | circuit ablated | cut | circuit alone (rest ablated) | faithfulness | "
             "all ablated |", "|---|---|---|---|---|---|---|---|"]
    for p in result["greedy_path_held_out"]:
        lines.append(f"| {', '.join(p['heads'])} | {p['found_by']} | {p['clean']:+.3f} | {p['without_circuit']:+.3f} | {p['cut']:+.1%} "
                     f"| {p['circuit_only']:+.3f} | {p['faithfulness']:.2f} | {p['none']:+.3f} |")
    lines += ["", "Controls on their held-out prompts with the circuit ablated (relative change of the mean metric): " +
              ", ".join(f"{k} {v['knockout_circuit']['cut']:+.1%} (knockout circuit), {v['grown_circuit']['cut']:+.1%} "
                        f"(grown circuit; clean {v['grown_circuit']['clean']:+.3f}), faithfulness of the grown circuit "
                        f"on it {v['grown_circuit']['faithfulness']:.2f}"
                        for k, v in result["controls_held_out"].items()),
              "", "## Each head's role (held-out prompts)", "",
              "Attention from the answer position (end) and from the word's last token (word); ablation at one "
              "position or everywhere (relative change of the mean logit difference); direct effect = path-patched "
              "into the final residual at end.", "",
              "| head | end→word | end→previous | end→first | word→previous | word→earlier word tokens | word→first | "
              "ablated at word | ablated at end | ablated everywhere | direct effect | DLA | reading |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for head, r in result["roles"].items():
        lines.append(f"| {head} | {r['attn_end_to_word']:.2f} | {r['attn_end_to_previous']:.2f} | "
                     f"{r['attn_end_to_first']:.2f} | {r['attn_word_to_previous']:.2f} | "
                     f"{r['attn_word_to_word_start']:.2f} | {r['attn_word_to_first']:.2f} | {r['ablate_at_word']:+.1%} | "
                     f"{r['ablate_at_end']:+.1%} | {r['ablate_everywhere']:+.1%} | {r['direct_effect']:+.3f} | "
                     f"{r['direct_logit_attribution']:+.3f} | {result['role_summary'][head]} |")
    top = sorted(result["all_heads_direct_effect"].items(), key=lambda kv: -abs(kv[1]))[:5]
    lines += ["", f"Held-out clean {h['clean']:+.3f} logit difference; largest direct effects of any head: " +
              ", ".join(f"{k} {v:+.3f}" for k, v in top) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--task", default="tinystories-pronoun", choices=("tinystories-pronoun", "tinystories-object"))
    parser.add_argument("--n", type=int, default=128, help="training-split prompts the search scores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-heads", type=int, default=8)
    parser.add_argument("--target-cut", type=float, default=0.9)
    parser.add_argument("--tolerance", type=float, default=0.25)
    parser.add_argument("--grow-to", type=int, default=16, help="at most this many heads when growing for faithfulness")
    parser.add_argument("--faithfulness", type=float, default=0.8, help="growth stops at this faithfulness")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    parser.add_argument("--roles-only", action="store_true",
                        help="keep OUT.json's search and circuit, recompute only the heads' roles")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    if args.roles_only:
        result = json.loads(args.out.with_suffix(".json").read_text())
        model = load_model(result["model"])
        circuit = [parse_head(h) for h in result["grown"][-1]["heads"]]
        result["roles"] = head_roles(model, tinystories_task(model, result["task"]), circuit)
        result["role_summary"] = {h: role_of(r) for h, r in result["roles"].items()}
        result["rcid_tl_version"] = rcid_tl.__version__
        write_json(args.out.with_suffix(".json"), result)
        write_text(args.out.with_suffix(".md"), markdown(result))
        print(markdown(result))
        return
    result = run(args.model, args.task, args.n, args.seed, args.max_heads, args.target_cut, args.tolerance,
                 args.grow_to, args.faithfulness)
    write_json(args.out.with_suffix(".json"), result)
    write_text(args.out.with_suffix(".md"), markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
