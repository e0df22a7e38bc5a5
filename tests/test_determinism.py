"""Determinism: the same inputs give byte-identical results, in one process and across processes.

The simulator draws no random numbers; what could still make two runs differ is iteration
over sets and dicts keyed by strings, whose order depends on ``PYTHONHASHSEED`` (different
in every process), state left behind by a previous run in the same process, or the order
in which runs are made. The training core is seeded: the same seed gives the same weights
and the same minibatch order. The property tests run derandomized (a fixed seed per test),
so they draw the same examples every time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from simulator.cli import main

HASH_SEEDS = ("0", "4242")


def _cli() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "layerpipe")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "simulator.cli"]


def run_cli(argv: list[str], hash_seed: str, cwd) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    proc = subprocess.run(_cli() + argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("argv", [
    # a DAG (residual adds), every schedule, on a costly link
    ["compare", "resnet18_cifar", "-p", "3", "-n", "8", "-b", "4", "--input", "3x8x8", "--json"],
    # a ring (multi-hop routes), heterogeneous hop counts, LayerPipe's offloading search
    ["simulate", "lenet5", "-s", "layerpipe", "-p", "4", "-n", "12", "--link", "10,4", "--topology", "ring", "--json"],
    # replicated stages (P > L) and a mesh
    ["compare", "mlp", "--schedules", "pipedream,layerpipe", "-p", "6", "-n", "12", "--topology", "mesh", "--json"],
])
def test_cli_output_is_identical_across_processes_and_hash_seeds(argv, tmp_path):
    first, second = (run_cli(argv, seed, tmp_path) for seed in HASH_SEEDS)
    assert first == second
    assert json.loads(first)  # a real answer, not an empty one


def test_trace_files_are_byte_identical_across_processes(tmp_path):
    files = []
    for seed in HASH_SEEDS:
        for name in ("t.jsonl", "t.json"):
            run_cli(["trace", "resnet18_cifar", "-s", "layerpipe2", "-p", "3", "-n", "6", "-b", "4", "--input", "3x8x8",
                     "--link", "20,8", "-o", f"{seed}-{name}"], seed, tmp_path)
        files.append(((tmp_path / f"{seed}-t.jsonl").read_bytes(), (tmp_path / f"{seed}-t.json").read_bytes()))
    assert files[0] == files[1]
    assert len(files[0][0].splitlines()) > 100


SCHEDULE_TEXT = """
import sys
from models.network.zoo import get_network
from schedules.registry import SCHEDULES, applicable, build_schedule
from simulator.costs import LinkModel, MacArray
from simulator.platform import Platform
net = get_network("resnet18_cifar", (3, 8, 8))
for p in (2, 5):
    plat = Platform.homogeneous(p, MacArray(64), LinkModel(50, 8.0), topology="ring")
    for name in (n for n in SCHEDULES if applicable(n, net, p, 4)):
        s = build_schedule(name, net, plat, minibatches=4, batch=4, time_limit=0.2)  # optimal's solver limit
        sys.stdout.write(s.to_text() + repr(sorted(s.info.items(), key=str)) + "\\n")
"""


def test_schedules_are_identical_across_hash_seeds(tmp_path):
    outs = []
    for seed in HASH_SEEDS:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", SCHEDULE_TEXT], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1] and outs[0].count("# schedule:") >= 14


def test_repeating_a_command_in_one_process_gives_the_same_output(capsys):
    argv = ["compare", "lenet5", "-p", "3", "-n", "8", "--json", "--link", "10,8"]
    outs = []
    for _ in range(2):
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]


def test_the_order_of_runs_does_not_change_any_run():
    from models.network.zoo import get_network
    from simulator.costs import LinkModel, MacArray
    from simulator.evaluate import compare
    from simulator.platform import Platform

    net = get_network("lenet5")
    plat = Platform.homogeneous(3, MacArray(256), LinkModel(100, 16.0))
    a = compare(net, ["layerpipe", "gpipe", "layerpipe2"], plat, minibatches=8, batch=8)
    b = compare(net, ["layerpipe2", "gpipe", "layerpipe"], plat, minibatches=8, batch=8)
    by_name = lambda rows: {r["schedule"]: json.dumps(r, sort_keys=True, default=str) for r in rows}  # noqa: E731
    assert by_name(a) == by_name(b)


def test_training_is_reproducible_from_its_seed():
    from models.network.zoo import get_network
    from models.training.data import load_digits_split
    from models.training.trainer import TrainConfig, train

    data = load_digits_split()
    net = get_network("mlp:64-32-10", (1, 8, 8))

    def run(seed: int):
        r = train(net, data, TrainConfig(compensation="stash", delays=(1, 0), epochs=1, seed=seed, batch_size=64))
        return json.dumps(r.to_dict(), sort_keys=True, default=str)

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_property_tests_are_derandomized():
    """The property tests draw the same examples on every run (no database, no clock)."""
    import test_properties

    if test_properties.PROFILE == "ci":
        assert test_properties.BASE.derandomize and test_properties.BASE.database is None
