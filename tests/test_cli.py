"""The command line: tables, JSON, and one-line errors with exit code 2."""

import json

import pytest

from simulator.cli import main
from simulator.commands import SUMMARIES


def test_describe_json(capsys):
    assert main(["describe", "mlp", "--batch", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["network"] == "mlp" and [r["layer"] for r in out["layers"]] == [1, 2, 3]
    # mlp 64-128-64-10, batch 4: F of layer 1 is 4 * 64 * 128 MACs
    assert out["layers"][0]["macs_F"] == 4 * 64 * 128 and out["layers"][0]["gemm_F"] == "4x128x64"


def test_describe_table_has_every_layer(capsys):
    assert main(["describe", "lenet5", "--hardware", "systolic:8x8:os"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "fc3" in out and "systolic 8x8 os" in out


@pytest.mark.parametrize("argv,needle", [
    (["describe", "nonet"], "nonet"),
    (["describe", "mlp", "--batch", "0"], "batch"),
    (["describe", "mlp", "--batch", "-3"], "batch"),
    (["describe", "mlp", "--hardware", "systolic:32x32:xx"], "dataflow"),
    (["describe", "lenet5", "--input", "1x2x2"], "does not fit"),
    (["describe", "lenet5", "--input", "abc"], "--input"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_unknown_subcommand_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_train_takes_delays_from_the_schedule(capsys):
    """`train --schedule` uses S(l) of the Schedule the engine runs (docs/design.md section 2)."""
    from models.network.zoo import get_network
    from schedules.registry import build_schedule
    from simulator.costs import LinkModel, MacArray
    from simulator.platform import Platform

    net = get_network("mlp:64-128-128-64-10")
    sched = build_schedule("pipedream", net, Platform.homogeneous(3, MacArray(256), LinkModel(100, 16.0)),
                           minibatches=1, batch=32)
    assert main(["train", "mlp:64-128-128-64-10", "--schedule", "pipedream", "--processors", "3", "--epochs", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["delays"] == [sched.rule.staleness(l) for l in range(1, 5)] and max(out["delays"]) > 0
    assert main(["train", "mlp", "--schedule", "pipedream", "--delays", "1,0,0"]) == 2


def test_train_a_spiking_network_with_spikepipe_delays(capsys):
    """An SNN name trains its rate-coded digits instance by BPTT with the schedule's delays."""
    assert main(["train", "snn_mlp", "--schedule", "spikepipe", "--processors", "3", "--hardware", "systolic:32x32",
                 "--parallelism", "pipeline", "--optimizer", "adam", "--epochs", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["delays"] == [2, 1, 0]  # one layer per stage on 3 processors: S = stages after
    assert out["test_accuracy"] > 0.8  # 3 epochs of Adam reach ~0.9 (96% after 15 epochs, docs/results)


def test_a_command_imports_only_what_it_runs():
    """`layerpipe --help` lists every subcommand without importing any, and `compare` does not
    import the trainer or SciPy (what makes a CLI call slow to start, not a timing)."""
    import subprocess
    import sys

    from simulator.commands import SUMMARIES

    code = ("import sys; from simulator.cli import build_parser; build_parser({!r}); "
            "print(sorted(m for m in sys.modules if m.startswith(('scipy', 'models.training.trainer', "
            "'simulator.commands.'))))")
    out = subprocess.run([sys.executable, "-c", code.format("")], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    out = subprocess.run([sys.executable, "-c", code.format("compare")], capture_output=True, text=True,
                         check=True).stdout
    assert "scipy" not in out and "trainer" not in out and "simulator.commands.compare" in out
    helptext = subprocess.run([sys.executable, "-m", "simulator.cli", "--help"], capture_output=True, text=True).stdout
    assert all(name in helptext for name in SUMMARIES)


def test_version(capsys):
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"layerpipe-sim {version('layerpipe-sim')}"


def test_tables_use_one_memory_unit_and_whole_numbers(capsys):
    """Memory in MiB in every table, counts of cycles and bytes whole with thousands separators
    (no column mixes 92374.0 with 8.415e+07), and the lower bound says which bound binds."""
    assert main(["compare", "lenet5", "-p", "4", "--schedules", "pipedream,gpipe"]) == 0
    text = capsys.readouterr().out
    assert "peak mem (MiB)" in text and "comm MiB/mb" in text and "bound set by" in text
    assert "e+0" not in text and "(MB)" not in text and "bytes)" not in text
    assert main(["compare", "lenet5", "-p", "4", "--schedules", "pipedream", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert f"{row['cycles_per_minibatch']:,.0f}" in text and row["lower_bound_kind"] in text
    assert main(["simulate", "lenet5", "-s", "layerpipe", "-p", "4"]) == 0
    text = capsys.readouterr().out
    assert "peak memory (MiB)" in text and "e+0" not in text


@pytest.mark.parametrize("command", list(SUMMARIES))
def test_help_is_plain_text(command, capsys):
    """Every subcommand's help exits 0 and shows no reStructuredText markup (the descriptions are
    module docstrings)."""
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: layerpipe {command}") and "`" not in text
