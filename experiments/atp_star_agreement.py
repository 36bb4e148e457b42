"""AtP*'s QK-fix vs plain AtP on key and query sites: Spearman and top-10 recall of mean estimates against exact
patching (one hooked forward per site) on the embedded teachers' IOI task, noising.

Run: python experiments/atp_star_agreement.py --n 16
"""

import argparse

import torch

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions.atp_star import KeyQuerySite, key_query_attribution
from rcid_tl.interventions.attribution import agreement
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.tasks import build_task

POSITIONS = ("io", "s1", "s1+1", "s2", "end")


def exact_effects(model, batch, metric, sites):
    """Δ = metric(clean) − metric(clean with the site's key/query at its position from the corrupt run)."""
    rows = torch.arange(len(batch))
    names = sorted({hook_name(s.site, s.layer) for s in sites})
    with torch.no_grad():
        _, corrupt = model.run_with_cache(batch.corrupt, names_filter=names)
        clean = metric(model(batch.clean)[rows, batch.answer_pos], batch)
        effects = []
        for s in sites:
            name, pos = hook_name(s.site, s.layer), batch.position(s.position)

            def patch(act, hook, name=name, pos=pos, head=s.head):
                act = act.clone()
                act[rows, pos, head] = corrupt[name][rows, pos, head]
                return act

            with model.hooks(fwd_hooks=[(name, patch)]):
                effects.append(clean - metric(model(batch.clean)[rows, batch.answer_pos], batch))
    return torch.stack(effects)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in ("world-gpt2", "world-qwen2"):
        model = load_model(name)
        dataset = build_task(model, "ioi", n=args.n, seed=0)
        batch, metric = dataset.batch(), metric_for(dataset)
        n_kv = getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads
        layers = range(model.cfg.n_layers)
        groups = {
            "k at end": [KeyQuerySite(Site.K, layer, "end", h) for layer in layers for h in range(n_kv)],
            "k at io,s1,s1+1,s2,end": [KeyQuerySite(Site.K, layer, p, h) for layer in layers for p in POSITIONS
                                       for h in range(n_kv)],
            "q at end": [KeyQuerySite(Site.Q, layer, "end", h) for layer in layers for h in range(model.cfg.n_heads)],
        }
        for label, sites in groups.items():
            exact = exact_effects(model, batch, metric, sites).mean(1)
            for fix in (False, True):
                estimate, _ = key_query_attribution(model, batch, sites, metric, qk_fix=fix)
                scores = agreement(estimate.mean(1), exact, k=10)
                print(f"{name:12s} {label:24s} sites {len(sites):3d} {'AtP*' if fix else 'AtP ':5s} "
                      f"spearman {scores['spearman']:.3f} top10 recall {scores['top10_recall']:.2f} "
                      f"max |err| {float((estimate.mean(1) - exact).abs().max()):.4f}")


if __name__ == "__main__":
    main()
