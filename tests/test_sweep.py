"""``layerpipe sweep`` and :mod:`simulator.sweep`: grids, experiment files, the CSV, resuming,
local and Dask execution, and a sweep killed mid-way."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from models.network.zoo import load_network
from simulator.cli import main
from simulator.costs import parse_hardware, parse_link
from simulator.evaluate import compare
from simulator.platform import Platform
from simulator.runs import auto_minibatches
from simulator.sweep import (
    CONFIG_COLUMNS,
    RENAMED,
    Experiment,
    RunConfig,
    SweepError,
    columns,
    experiment_from_mapping,
    metric_columns,
    parse_processors,
    read_experiment,
    read_rows,
    run_one,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"networks": ["mlp", "lenet5"], "schedules": ["pipedream", "layerpipe", "gpipe"], "processors": [2, 3]}


def small(**over) -> Experiment:
    return experiment_from_mapping({**SMALL, **over})


def cli(*argv: str) -> int:
    return main([str(a) for a in argv])


# --------------------------------------------------------------------------- grid and files


def test_grid_order_networks_outermost_schedules_innermost():
    exp = experiment_from_mapping({"networks": ["a", "b"], "schedules": ["pipedream", "layerpipe"],
                                   "processors": "2-3", "hardware": ["mac:256", "mac:64"], "links": ["100,16", "none"]})
    runs = exp.runs()
    assert len(runs) == 2 * 2 * 2 * 2 * 2
    assert [(r.network, r.hardware, r.link, r.processors, r.schedule) for r in runs[:5]] == [
        ("a", "mac:256", "100,16", 2, "pipedream"), ("a", "mac:256", "100,16", 2, "layerpipe"),
        ("a", "mac:256", "100,16", 3, "pipedream"), ("a", "mac:256", "100,16", 3, "layerpipe"),
        ("a", "mac:256", "none", 2, "pipedream")]
    assert runs[-1] == RunConfig("b", "layerpipe", 3, "mac:64", "none")


def test_processor_lists():
    assert parse_processors("2-4, 8") == (2, 3, 4, 8)
    assert parse_processors([4, "2", 4]) == (4, 2)
    assert parse_processors(6) == (6,)
    for bad in (0, "0", "3-1", "two", [True], -1, []):
        with pytest.raises(SweepError):
            parse_processors(bad)


def test_yaml_and_toml_files_give_the_same_experiment(tmp_path):
    (tmp_path / "e.yaml").write_text("networks: [mlp, lenet5]\nschedule: layerpipe\nprocessors: 2-4\n"
                                     "hardware: mac:256\nlinks: ['100,16', none]\nbatch: 16\nminibatches: auto\n"
                                     "output: out.csv\n")
    (tmp_path / "e.toml").write_text('networks = ["mlp", "lenet5"]\nschedule = "layerpipe"\nprocessors = "2-4"\n'
                                     'hardware = "mac:256"\nlinks = ["100,16", "none"]\nbatch = 16\n'
                                     'minibatches = "auto"\noutput = "out.csv"\n')
    a, b = read_experiment(tmp_path / "e.yaml"), read_experiment(tmp_path / "e.toml")
    assert a == b
    assert a.schedules == ("layerpipe",) and a.processors == (2, 3, 4) and a.links == ("100,16", "none")
    assert a.batch == 16 and a.minibatches is None and a.output == "out.csv"


def test_the_example_experiment_file_is_valid():
    exp = read_experiment(ROOT / "examples" / "experiment.yaml")
    exp.validate()
    assert len(exp.runs()) == 96 and exp.output and exp.plots


@pytest.mark.parametrize("text, message", [
    ("networks: [mlp\n", "malformed YAML"),
    ("- mlp\n", "expected a mapping"),
    ("networks: [mlp]\nprocesors: [2]\n", "unknown key 'procesors'"),
    ("schedules: [layerpipe]\n", "no networks"),
    ("networks: [mlp]\nprocessors: [0]\n", "positive"),
    ("networks: [mlp]\nbatch: -3\n", "batch must be a positive integer"),
    ("networks: [mlp]\nnetwork: lenet5\n", "given twice"),
    ("networks: []\n", "empty"),
    ("networks: [mlp]\noverlap: maybe\n", "overlap must be true or false"),
])
def test_malformed_experiment_files(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SweepError, match=message):
        read_experiment(path)


def test_malformed_toml_and_wrong_suffix(tmp_path):
    (tmp_path / "bad.toml").write_text("networks = [mlp\n")
    with pytest.raises(SweepError, match="malformed TOML"):
        read_experiment(tmp_path / "bad.toml")
    with pytest.raises(SweepError, match=r"\.yaml, \.yml or \.toml"):
        read_experiment(tmp_path / "bad.json")
    with pytest.raises(SweepError, match="cannot read"):
        read_experiment(tmp_path / "missing.yaml")


@pytest.mark.parametrize("over, message", [
    ({"networks": ["mlp", "no_such_net"]}, "no_such_net"),
    ({"schedules": ["layerpipe", "bogus"]}, "unknown schedule"),
    ({"hardware": ["tpu:9"]}, "unknown processor kind"),
    ({"links": ["100"]}, "link"),
    ({"topologies": ["torus"]}, "unknown topology"),
])
def test_bad_grid_values_fail_before_any_run(tmp_path, over, message):
    out = tmp_path / "r.csv"
    with pytest.raises(SweepError, match=message):
        run_sweep(small(**over), out, jobs=1)
    assert not out.exists()


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("networks: [mlp\n")
    cases = [
        ["sweep", "--networks", "no_such_net", "-o", tmp_path / "a.csv"],
        ["sweep", "--networks", "mlp", "--schedules", "bogus", "-o", tmp_path / "a.csv"],
        ["sweep", "--networks", "mlp", "--processors", "0", "-o", tmp_path / "a.csv"],
        ["sweep", bad],
        ["sweep", "--schedules", "layerpipe"],
        ["sweep", "--networks", "mlp", "-o", tmp_path / "no" / "dir.csv"],
        ["sweep", "--networks", "mlp", "--jobs", "0"],
    ]
    for argv in cases:
        capsys.readouterr()
        assert cli(*argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("layerpipe sweep: error: ") and err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err


# --------------------------------------------------------------------------- rows


def test_a_row_holds_every_metric_of_simulate_and_the_configuration():
    config = RunConfig("lenet5", "layerpipe", 3, "mac:256", "100,16", "full", 32)
    row = run_one(config)
    net = load_network("lenet5")
    (expected,) = compare(net, ["layerpipe"], Platform.homogeneous(3, parse_hardware("mac:256"), parse_link("100,16")),
                          minibatches=None, batch=32)  # auto: as compare runs by default
    assert row["error"] is None
    for key, value in expected.items():
        assert row[RENAMED.get(key, key)] == value, key
    assert [RENAMED.get(k, k) for k in expected if k not in ("schedule", "processors")] == list(metric_columns())
    assert set(metric_columns()) <= set(row)


def test_csv_round_trip_and_columns(tmp_path):
    out = tmp_path / "r.csv"
    result = run_sweep(small(), out, jobs=1)
    assert (result.runs, result.computed, result.skipped, result.failed) == (12, 12, 0, 0)
    with open(out, newline="") as fh:
        reader = csv.reader(fh)
        assert tuple(next(reader)) == columns()
        cells = list(reader)
    assert len(cells) == 12
    at = {name: i for i, name in enumerate(columns())}
    assert [(c[at["network"]], c[at["processors"]], c[at["schedule"]]) for c in cells] == [
        (r.network, str(r.processors), r.schedule) for r in small().runs()]
    rows = read_rows(out)
    assert rows == result.rows
    r = rows[1]
    assert (r["network"], r["schedule"], r["processors"], r["minibatches"], r["overlap"]) == ("mlp", "layerpipe", 2, None, True)
    assert isinstance(r["utilization"], list) and len(r["utilization"]) == 2
    assert isinstance(r["delays"], dict) and r["error"] is None
    # floats are written exactly: the CSV holds the same numbers as the simulate JSON
    direct = run_one(small().runs()[1])
    assert r["cycles_per_minibatch"] == direct["cycles_per_minibatch"]
    assert r["speedup_vs_pipedream"] == direct["speedup_vs_pipedream"]


def test_failed_runs_are_recorded_not_fatal(tmp_path):
    # runs given directly skip the up-front checks: a run that fails on bad input becomes a row with
    # its one-line error and empty metrics; the other runs go on
    runs = [RunConfig("mlp", "pipedream", 2), RunConfig("mlp", "pipedream", 2, input="7x7"),
            RunConfig("mlp", "layerpipe", 2, hardware="mac:0")]
    result = run_sweep(runs, tmp_path / "r.csv", jobs=1)
    assert (result.computed, result.failed) == (3, 2)
    ok, bad_input, bad_hw = read_rows(tmp_path / "r.csv")
    assert ok["error"] is None and ok["cycles_per_minibatch"] > 0
    assert "49 elements" in bad_input["error"] and bad_input["cycles_per_minibatch"] is None
    assert "mac:0" in bad_hw["error"] and bad_hw["utilization"] is None
    assert run_sweep(runs, tmp_path / "r.csv", jobs=1).computed == 0  # failed runs are not retried either


# --------------------------------------------------------------------------- determinism and resume


def test_local_parallel_and_serial_csvs_are_identical(tmp_path):
    a, b = tmp_path / "serial.csv", tmp_path / "parallel.csv"
    run_sweep(small(), a, jobs=1)
    run_sweep(small(), b, jobs=2)
    assert a.read_bytes() == b.read_bytes()


def test_resume_skips_rows_already_in_the_csv(tmp_path):
    out, ref = tmp_path / "r.csv", tmp_path / "ref.csv"
    run_sweep(small(), ref, jobs=1)
    first = run_sweep(small(processors=[2]), out, jobs=1)
    assert first.computed == 6
    computed = []
    again = run_sweep(small(), out, jobs=1, on_row=lambda row: computed.append((row["network"], row["processors"])))
    assert (again.computed, again.skipped) == (6, 6)
    assert sorted(set(computed)) == [("lenet5", 3), ("mlp", 3)]
    assert out.read_bytes() == ref.read_bytes()
    assert run_sweep(small(), out, jobs=1).computed == 0
    assert run_sweep(small(), out, jobs=1, overwrite=True).computed == 12
    assert out.read_bytes() == ref.read_bytes()


def test_rows_of_other_configurations_are_kept(tmp_path):
    out = tmp_path / "r.csv"
    run_sweep(small(processors=[3]), out, jobs=1)
    run_sweep(small(processors=[2]), out, jobs=1)
    rows = read_rows(out)
    assert [r["processors"] for r in rows] == [2] * 6 + [3] * 6


def test_a_row_cut_by_a_kill_is_redone(tmp_path):
    out, ref = tmp_path / "r.csv", tmp_path / "ref.csv"
    run_sweep(small(), ref, jobs=1)
    text = ref.read_text()
    out.write_text(text[: len(text) - 40])  # the last row half written
    result = run_sweep(small(), out, jobs=1)
    assert (result.computed, result.skipped) == (1, 11)
    assert out.read_bytes() == ref.read_bytes()


def test_a_foreign_csv_is_not_overwritten(tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("a,b\n1,2\n")
    with pytest.raises(SweepError, match="other columns"):
        run_sweep(small(), out, jobs=1)
    assert out.read_text() == "a,b\n1,2\n"


# --------------------------------------------------------------------------- the command


def test_cli_sweep_table_json_and_plots(tmp_path, capsys):
    exp = tmp_path / "e.toml"
    exp.write_text('networks = ["mlp"]\nschedules = ["pipedream", "layerpipe"]\nprocessors = [2, 3]\n')
    out, plots = tmp_path / "r.csv", tmp_path / "plots"
    assert cli("sweep", exp, "-o", out, "--plots", plots, "--plot-format", "png,svg", "-j", "1") == 0
    text = capsys.readouterr().out
    assert "4 runs: 4 computed, 0 already in" in text
    assert "speedup over PipeDream" in text and "layerpipe" in text
    assert sorted(p.name for p in plots.iterdir()) == ["memory.png", "memory.svg", "speedup.png", "speedup.svg",
                                                       "utilization.png", "utilization.svg"]
    # the command line overrides the file; --json prints a summary
    assert cli("sweep", exp, "-o", out, "--processors", "2-4", "--json", "-j", "1") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["runs"], summary["computed"], summary["skipped"]) == (6, 2, 4)
    assert [r["processors"] for r in read_rows(out)] == [2, 2, 3, 3, 4, 4]


# --------------------------------------------------------------------------- dask


def test_dask_cluster_gives_the_same_csv_as_the_local_run(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")  # a dependency: present unless the install is broken
    local, remote = tmp_path / "local.csv", tmp_path / "dask.csv"
    grid = ["--networks", "mlp", "lenet5", "--schedules", "pipedream", "layerpipe", "gpipe", "--processors", "2-3"]
    assert cli("sweep", *grid, "-o", local, "-j", "2") == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", scheduler_port=0, dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        assert cli("sweep", *grid, "-o", remote, "--dask-scheduler", cluster.scheduler_address, "--json") == 0
    assert remote.read_bytes() == local.read_bytes()


def test_unreachable_dask_scheduler_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("distributed")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli("sweep", "--networks", "mlp", "--processors", "2", "-o", tmp_path / "r.csv",
               "--dask-scheduler", f"tcp://127.0.0.1:{port}", "--dask-timeout", "0.5") == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- killed mid-way


def _rows_in(path: Path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except FileNotFoundError:
        return 0


def test_a_killed_sweep_resumes_without_duplicates_or_gaps(tmp_path):
    """Start `layerpipe sweep` as a subprocess, SIGKILL it (and its workers) once some rows
    are on disk, rerun the same command: no row is lost or duplicated, the finished rows are
    not recomputed, and the CSV equals an uninterrupted run's."""
    grid = ["--networks", "alexnet", "--schedules", "pipedream", "gpipe", "layerpipe", "layerpipe2",
            "--processors", "2-7"]
    total = 4 * 6
    ref = tmp_path / "ref.csv"
    assert cli("sweep", *grid, "-o", ref, "-j", "2", "--json") == 0
    out = tmp_path / "killed.csv"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", *grid, "-o", str(out), "-j", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while _rows_in(out) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker processes, at once
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    with open(out, newline="") as fh:
        partial = list(csv.reader(fh))
    assert tuple(partial[0]) == columns()
    done = [tuple(r[: len(CONFIG_COLUMNS)]) for r in partial[1:] if len(r) == len(columns())]
    assert 3 <= len(done) < total
    assert len(set(done)) == len(done)

    rerun = subprocess.run(cmd + ["--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["skipped"] == len(done) and summary["computed"] == total - len(done)
    assert out.read_bytes() == ref.read_bytes()


def test_ctrl_c_stops_cleanly_and_the_rerun_completes(tmp_path):
    grid = ["--networks", "alexnet", "--schedules", "pipedream", "layerpipe", "layerpipe2", "gpipe",
            "--processors", "2-5"]
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", *grid, "-o", str(out), "-j", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while _rows_in(out) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    if proc.returncode != 0:  # (it may have finished first on a fast machine)
        assert proc.returncode == 130 and "run the same command again to resume" in err and "Traceback" not in err
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    assert len(read_rows(out)) == 16


def test_an_edited_network_file_is_run_again(tmp_path):
    """Rows are keyed by the network's content: after the file changes, resume does not take the old
    row for the new network."""
    net = tmp_path / "net.yaml"
    net.write_text("input: [4]\nlayers:\n  - {type: linear, out_features: 4}\n  - {type: linear, out_features: 2}\n")
    out = tmp_path / "r.csv"
    exp = experiment_from_mapping({"networks": [str(net)], "schedules": ["pipedream"], "processors": [2],
                                   "minibatches": 4})
    first = run_sweep(exp, out, jobs=1)
    assert (first.computed, first.skipped) == (1, 0)
    assert run_sweep(exp, out, jobs=1).skipped == 1  # unchanged: already in the file
    net.write_text("input: [4]\nlayers:\n  - {type: linear, out_features: 4096}\n  - {type: linear, out_features: 2}\n")
    again = run_sweep(exp, out, jobs=1)
    assert (again.computed, again.skipped) == (1, 0)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and rows[0]["network_digest"] != rows[1]["network_digest"]


@pytest.mark.parametrize("column,bad,fragment", [
    ("utilization", "[0.5, 0.5", "a JSON cell does not parse"),
    ("cycles_per_minibatch", "fast", "cycles_per_minibatch is 'fast', not a number"),
    ("info", "{" + "x" * 200_000 + "}", "is corrupt"),
])
def test_corrupt_rows_are_refused_with_their_row_number(tmp_path, capsys, column, bad, fragment):
    out = tmp_path / "r.csv"
    exp = experiment_from_mapping({"networks": ["mlp"], "schedules": ["pipedream", "gpipe"], "processors": [2],
                                   "minibatches": 4})
    run_sweep(exp, out, jobs=1)
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    rows[2][rows[0].index(column)] = bad  # the second data row: line 3 of the file
    with open(out, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    for action in (lambda: run_sweep(exp, out, jobs=1), lambda: read_rows(out)):
        with pytest.raises(SweepError, match="row 3") as exc:
            action()
        assert fragment in str(exc.value) and len(str(exc.value)) < 300
    assert main(["plot", "speedup", str(out), "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 3" in err[0]


# --------------------------------------------------------------------------- schedule options as axes


def test_schedule_options_are_axes_and_a_schedule_runs_once_per_variant_it_takes():
    exp = experiment_from_mapping({"networks": ["mlp"], "schedules": ["pipedream", "layerpipe", "layerpipe2"],
                                   "processors": [2], "offload": ["default", False], "groups": [None, "1"],
                                   "memory": ["stash"]})
    runs = exp.runs()
    variants = {(r.schedule, r.options) for r in runs}
    # pipedream takes none of them: one run; layerpipe takes offload: two; layerpipe2 all three: 2 x 2
    assert sorted(variants) == sorted([
        ("pipedream", ()),
        ("layerpipe", ()), ("layerpipe", (("offload", False),)),
        ("layerpipe2", (("groups", "1"), ("memory", "stash"))), ("layerpipe2", (("memory", "stash"),)),
        ("layerpipe2", (("offload", False), ("groups", "1"), ("memory", "stash"))),
        ("layerpipe2", (("offload", False), ("memory", "stash"))),
    ])
    assert len(runs) == len(variants) == 7
    assert len({r.key() for r in runs}) == 7  # each variant is its own CSV row


def test_a_swept_variant_runs_what_simulate_runs_with_that_option(tmp_path):
    """The row of layerpipe with offload=false is the compare row built with offload=False (an
    independent call of the API), and differs from the default run's options column."""
    out = tmp_path / "r.csv"
    assert cli("sweep", "--networks", "lenet5", "--schedules", "layerpipe", "-p", "3", "--offload", "true", "false",
               "-o", out, "-j", "1") == 0
    rows = {r["offload"]: r for r in read_rows(out)}
    assert set(rows) == {True, False}
    net = load_network("lenet5")
    platform = Platform.homogeneous(3, parse_hardware("mac:256"), parse_link("100,16"))
    for flag in (True, False):
        (ref,) = compare(net, ["layerpipe"], platform, minibatches=auto_minibatches(net), batch=32, offload=flag)
        assert rows[flag]["cycles_per_minibatch"] == ref["cycles_per_minibatch"]
        assert (rows[flag]["info"]["offloaded"] == []) == (ref["info"]["offloaded"] == [])
    # resuming finds both variants already there
    assert cli("sweep", "--networks", "lenet5", "--schedules", "layerpipe", "-p", "3", "--offload", "true", "false",
               "-o", out, "-j", "1", "--json") == 0


def test_the_speedup_table_names_each_variant(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert cli("sweep", "--networks", "mlp", "--schedules", "pipedream", "layerpipe2", "-p", "2",
               "--groups", "default", "1", "-o", out, "-j", "1") == 0
    table = capsys.readouterr().out
    assert "layerpipe2 groups=1" in table and "pipedream groups" not in table


def test_an_old_experiment_file_with_a_memory_capacity_is_told_the_new_key(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("networks: [mlp]\nmemory: [360MB]\n")
    with pytest.raises(SweepError, match="memory_capacities"):
        read_experiment(path)
    path.write_text("networks: [mlp]\nmemory_capacities: [360MB]\nmemory: [stash]\n")
    exp = read_experiment(path)
    assert exp.memory_capacities == ("360MB",) and exp.memory == ("stash",)


def test_every_schedule_option_is_a_sweep_axis():
    from schedules.registry import OPTIONS
    from simulator.sweep import OPTION_AXES

    # microbatches and parallelism have their own keys; of, time_limit, unroll and granularity configure the optimal
    # schedule's solver (a reference run when named, with its defaults in a sweep), not a schedule variant
    assert set(OPTION_AXES) == set(OPTIONS) - {"microbatches", "parallelism", "of", "time_limit", "unroll",
                                               "granularity"}


def test_an_earlier_sweeps_csv_still_reads_and_plots_but_is_not_resumed(tmp_path, capsys):
    """A results file from before the schedule-option columns: plot reads it (the missing columns
    are empty), a sweep refuses to append to it (its rows would not line up) with one line."""
    from simulator.sweep import OPTION_AXES

    new = tmp_path / "new.csv"
    assert cli("sweep", "--networks", "mlp", "--schedules", "pipedream", "layerpipe", "-p", "2", "-o", new,
               "-j", "1") == 0
    with open(new, newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [i for i, c in enumerate(rows[0]) if c not in OPTION_AXES]
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    assert [(r["schedule"], r["cycles_per_minibatch"], r["offload"]) for r in read_rows(old)] == [
        (r["schedule"], r["cycles_per_minibatch"], None) for r in read_rows(new)]
    assert cli("plot", "speedup", old, "-o", tmp_path / "s.png") == 0
    capsys.readouterr()
    assert cli("sweep", "--networks", "mlp", "-p", "2", "-o", old, "-j", "1") == 2
    assert "holds other columns than a sweep writes" in capsys.readouterr().err
