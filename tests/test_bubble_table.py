"""The zero-bubble paper's bubble tables, reproduced from its profiled times.

Qi et al., "Zero Bubble Pipeline Parallelism" (ICLR 2024): Table 3 (setup), the table of profiled
T_F, T_B, T_W, T_comm (ICLR Table 6 / arXiv Table 9) and Table 5 (bubble rates computed from
them); arXiv v1's Table 8 (ZB-V experiments, whose profiled times are constants of the authors'
``efficiency.py``, branch ``arxiv``, commit f68d3879: per chunk, doubled for the one-chunk
schedules). Bubble rate = (cost - m (T_F + T_B + T_W)) / cost, cost = the longest stage's span.

Each profiled time is an integer number of cycles (the printed milliseconds x 1000, as the
authors' code stores them) and T_comm is a link of that latency, unlimited bandwidth. Columns
that reproduce to the four printed decimals: 1F1B, ZB-H1, ZB-H2 (every row of both tables).
1F1B-I does not: the authors' interleaved simulator (``get_interleave_schedule``) lets a chunk's
first processor wait for the previous chunk only for the first micro-batch of each group of p
(``elif _rk == 0 and v > 0``). Run with that condition made ``elif v > 0``, so that every
micro-batch waits for its own input, their simulator prints :data:`INTERLEAVED_ALL_DEPENDENCIES`,
which is asserted here. ZB-V does not reproduce (the authors' greedy ``zbv.py`` places the
cool-down's W differently from PyTorch's order, which we run; ``benchmarks/bubble_table.py``).
"""

import json
import math

import pytest

from models.network.uniform import uniform_network
from schedules.registry import build_schedule
from simulator.cli import main
from simulator.costs import MacArray
from simulator.costs.links import LinkModel
from simulator.engine import simulate
from simulator.platform import Platform
from simulator.trace import MemoryTrace

# (model, p, m, T_F, T_B, T_W, T_comm) x1000, then the printed 1F1B, ZB-H1, ZB-H2 bubble rates
TABLE5 = [
    ("1.5B", 8, 24, 18522, 18086, 9337, 601, 0.2431, 0.1585, 0.1083),
    ("1.5B", 8, 32, 18513, 18086, 9331, 626, 0.1985, 0.1242, 0.0837),
    ("1.5B", 8, 64, 18546, 18097, 9321, 762, 0.1240, 0.0674, 0.0444),
    ("6.2B", 8, 24, 29718, 29444, 19927, 527, 0.2347, 0.1323, 0.0698),
    ("6.2B", 8, 32, 29802, 29428, 19530, 577, 0.1898, 0.1045, 0.0559),
    ("6.2B", 8, 64, 29935, 29621, 19388, 535, 0.1091, 0.0554, 0.0294),
    ("14.6B", 16, 48, 11347, 11248, 8132, 377, 0.2552, 0.1397, 0.0672),
    ("14.6B", 16, 64, 11307, 11254, 8101, 379, 0.2082, 0.1088, 0.0516),
    ("14.6B", 16, 128, 11325, 11308, 8109, 378, 0.1251, 0.0576, 0.0266),
    ("28.3B", 32, 96, 10419, 10207, 7715, 408, 0.2646, 0.1421, 0.0641),
    ("28.3B", 32, 128, 10408, 10204, 7703, 408, 0.2168, 0.1106, 0.0490),
    ("28.3B", 32, 256, 10402, 10248, 7698, 460, 0.1352, 0.0594, 0.0257),
]
# arXiv Table 8: per-chunk times (a whole stage is twice them), same columns
TABLE8 = [
    ("6.2B", 16, 48, 14407, 14380, 9676, 1610, 0.2668, 0.1536, 0.0823),
    ("6.2B", 16, 64, 14412, 14393, 9688, 1621, 0.2206, 0.1198, 0.0630),
    ("6.2B", 16, 128, 14316, 14306, 9639, 1619, 0.1390, 0.0637, 0.0325),
    ("14.6B", 24, 72, 6763, 6969, 5251, 755, 0.2699, 0.1439, 0.0628),
    ("14.6B", 24, 96, 6783, 6984, 5259, 758, 0.2229, 0.1121, 0.0480),
    ("14.6B", 24, 192, 6785, 6990, 5260, 770, 0.1403, 0.0595, 0.0247),
    ("28.3B", 32, 96, 9458, 9748, 7288, 879, 0.2676, 0.1429, 0.0629),
    ("28.3B", 32, 128, 9469, 9744, 7306, 892, 0.2204, 0.1111, 0.0478),
    ("28.3B", 32, 256, 9447, 9644, 7193, 887, 0.1362, 0.0593, 0.0251),
]
SCHEDULES = ("1f1b", "zb-h1", "zb-h2")
#: Table 5's 1F1B-I column from the authors' simulator with every dependency enforced (module docstring)
INTERLEAVED_ALL_DEPENDENCIES = (0.1090, 0.0847, 0.0461, 0.0827, 0.0644, 0.0328, 0.1136, 0.0878, 0.0459, 0.1528, 0.1192,
                                0.0641)
LAYERS = {"1.5B": 24, "6.2B": 32, "14.6B": 48, "28.3B": 64}  # the authors' code: Table 3's layers + 2


def cases(table, scale: int = 1):
    for model, p, m, f, b, w, c, *rates in table:
        for name, rate in zip(SCHEDULES, rates):
            yield pytest.param(p, m, scale * f, scale * b, scale * w, c, name, rate, id=f"{model}-m{m}-{name}")


def one_iteration_bubble(p, m, f, b, w, c, name, chunks: int = 1) -> float:
    """From the trace of one step: (longest stage span - m (f + b + w)) / that span; ``chunks``
    stages of f, b, w per processor for interleaved 1F1B."""
    spec = f"uniform:p={p * chunks},f={f},b={b},w={w}"
    plat = Platform.homogeneous(p, MacArray(256), LinkModel(c, math.inf))
    options = {"virtual_stages": chunks} if name == "interleaved-1f1b" else {"parallelism": "pipeline"}
    sched = build_schedule(name, uniform_network(spec), plat, minibatches=1, batch=m, microbatches=m, **options)
    trace = MemoryTrace()
    simulate(sched, plat, trace=trace, exact=False)
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for t in trace.tasks:
        first[t.proc] = min(first.get(t.proc, math.inf), t.start)
        last[t.proc] = max(last.get(t.proc, 0), t.end)
    span = max(last[q] - first[q] for q in last)
    return (span - chunks * m * (f + b + w)) / span


@pytest.mark.parametrize("p,m,f,b,w,c,name,rate", [*cases(TABLE5), *cases(TABLE8, scale=2)])
def test_bubble_table(p, m, f, b, w, c, name, rate):
    assert round(one_iteration_bubble(p, m, f, b, w, c, name), 4) == rate


@pytest.mark.parametrize("p,m,f,b,w,c,name,rate", [c for c in cases(TABLE5) if c.values[0] == 8])
def test_bubble_rate_from_the_command_line(capsys, p, m, f, b, w, c, name, rate):
    """The steady state of repeated steps (the simulate JSON's bubble_rate) gives the paper's figure."""
    code = main(["simulate", f"uniform:p={p},f={f},b={b},w={w},comm={c}", "-s", name, "-p", str(p),
                 "--batch", str(m), "--microbatches", str(m), "--parallelism", "pipeline", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["steady_state"] == "exact" and row["platform"].endswith(f"link latency {c}, inf B/cycle, full")
    assert round(row["bubble_rate"], 4) == rate


@pytest.mark.parametrize("row,expected", list(zip(TABLE5, INTERLEAVED_ALL_DEPENDENCIES)),
                         ids=[f"{r[0]}-m{r[2]}" for r in TABLE5])
def test_interleaved_column_with_every_dependency(row, expected):
    """The paper's per-chunk costs: a stage's F and B + W over its chunks (scaled by the chunk count
    so they stay integers; the ratio does not change), T_comm on every chunk hop."""
    model, p, m, f, b, w, c, *_ = row
    chunks = LAYERS[model] // p
    assert round(one_iteration_bubble(p, m, f, b + w, 0, c * chunks, "interleaved-1f1b", chunks), 4) == expected
