"""Work split across processes: a sweep's row chunks dealt out round-robin and gathered back in order, a global
batch's share for data-parallel training, averages of logged numbers, and values computed once on rank 0.

Every process must make the same calls in the same order (they meet in collectives); with one process each helper
is the plain single-process computation, so results do not depend on how many processes ran them."""

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.distributed as dist
from torch import Tensor

from rcid_tl.errors import InputError
from rcid_tl.parallel.world import world
from rcid_tl.progress import track

C = TypeVar("C")
R = TypeVar("R")


def map_shards(chunks: Sequence[C], work: Callable[[C], R], description: str) -> list[R]:
    """`work(chunk)` for every chunk, in chunk order, on every process. Process k of n computes chunks k, k+n, ...
    (round-robin, so chunks ordered by cost stay balanced) and the results are all-gathered; each chunk is computed
    exactly as one process would compute it, so the gathered result equals the single-process one. Results must be
    picklable; keep tensors on the CPU."""
    w = world()
    mine = list(range(w.rank, len(chunks), w.size))
    results = [work(chunks[i]) for i in track(mine, description)]
    if not w.distributed:
        return results
    gathered: list[list[R] | None] = [None] * w.size
    dist.all_gather_object(gathered, results)
    merged: list = [None] * len(chunks)
    for rank, part in enumerate(gathered):
        merged[rank :: w.size] = part
    return merged


def rank_slice(rows: Tensor, what: str) -> Tensor:
    """This process's equal share of a global batch `rows` (contiguous); an InputError unless it splits evenly,
    because data-parallel gradients average the processes' means, which equals the global mean only then."""
    w = world()
    if not w.distributed:
        return rows
    if len(rows) % w.size:
        raise InputError(f"{what} {len(rows)} does not split evenly over {w.size} processes; use a multiple of "
                         f"{w.size}")
    return rows.tensor_split(w.size)[w.rank]


def mean_across(values: dict[str, float]) -> dict[str, float]:
    """Each value averaged over the processes (every process passes the same keys in the same order)."""
    w = world()
    if not w.distributed or not values:
        return values
    total = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(total)
    return dict(zip(values, (total / w.size).tolist()))


def from_main(compute: Callable[[], R]) -> R:
    """`compute()` run on rank 0 only (e.g. reading a file only its machine has) and sent to every process. If it
    raises there, the others stop when rank 0 exits (see `report_failure`)."""
    w = world()
    if not w.distributed:
        return compute()
    box = [compute() if w.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
