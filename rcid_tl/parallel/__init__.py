"""Several processes (torchrun, `accelerate launch`): which process this is, the one place row sweeps are split across
processes and gathered back, and averages and broadcasts across processes. In one process every helper is a no-op."""

from rcid_tl.parallel.shards import from_main, map_shards, mean_across, rank_slice
from rcid_tl.parallel.world import World, joined, report_failure, world

__all__ = ["World", "from_main", "joined", "map_shards", "mean_across", "rank_slice", "report_failure", "world"]
