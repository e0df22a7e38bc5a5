"""Where every method can run: a test that loops over the registry uses :func:`runnable`.

A chunked schedule (interleaved 1F1B, ZB-V) needs a weight layer per chunk, and interleaved
1F1B a number of micro-batches that is a multiple of P; on a network or batch where it cannot
run, a test takes an MLP of 2P weight layers and a batch of P instead, so it still runs there.
"""

from models.network.zoo import get_network
from schedules.registry import applicable


def deep_mlp(processors: int):
    """An MLP of 2P weight layers of 8 units (two chunks for every processor)."""
    return get_network("mlp:" + "-".join(["8"] * (2 * processors + 1)))


def runnable(name: str, net, processors: int, batch: int):
    """``(net, batch)`` when method ``name`` can run them on ``processors`` processors, else a deep
    MLP and a batch of P (or of ``batch`` when that is enough)."""
    if applicable(name, net, processors, batch):
        return net, batch
    deep = deep_mlp(processors)
    return (deep, batch) if applicable(name, deep, processors, batch) else (deep, processors)
