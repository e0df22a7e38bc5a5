"""Sweeps whose cluster or workers fail: one line, the finished rows kept, Ctrl-C heard, nothing
left running.

Each test starts real processes (a Dask scheduler and workers from the ``dask`` command line, or
a local ``-j 2`` sweep) and breaks them the way a cluster breaks: no worker ever joins, the
scheduler is killed mid-sweep, the only worker is killed without a nanny, the sweep itself is
killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")  # a dependency: present unless the install is broken

GRID = ["--networks", "alexnet", "vgg16", "--processors", "2-6", "--no-progress"]
DASK = shutil.which("dask") or str(Path(sys.executable).with_name("dask"))


def _rows(path: Path) -> int:
    return max(0, path.read_text().count("\n") - 1) if path.exists() else 0


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture
def scheduler(tmp_path):
    """A Dask scheduler in its own process group; yields (process, address)."""
    if not Path(DASK).exists():
        pytest.skip("the dask command line is not installed")
    info = tmp_path / "scheduler.json"
    proc = _start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                   "--scheduler-file", str(info)])
    deadline = time.monotonic() + 60
    while not (info.exists() and info.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    address = json.loads(info.read_text())["address"]
    yield proc, address
    _kill(proc)


def _worker(address: str) -> subprocess.Popen:
    return _start([DASK, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"])


def _sweep(tmp_path, address: str, timeout: float = 3) -> tuple[list[str], Path]:
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", *GRID, "-o", str(out), "--dask-scheduler", address,
           "--dask-timeout", str(timeout)]
    return cmd, out


def _wait_rows(proc, out: Path, n: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while _rows(out) < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(out) >= n, "no rows appeared"


def _kill_mid_sweep(tmp_path, address: str, victim: subprocess.Popen, rows: int, timeout: float = 3):
    """Start a sweep on the cluster, SIGKILL ``victim``'s process group once ``rows`` rows are on
    disk; return the sweep's exit code, its stderr and the CSV's path."""
    cmd, out = _sweep(tmp_path, address, timeout=timeout)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_rows(proc, out, rows)
    os.killpg(victim.pid, signal.SIGKILL)
    err = proc.communicate(timeout=60)[1]
    return proc.returncode, err, out


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    return lines[0]


def test_a_cluster_without_workers_is_one_line_not_a_wait_for_ever(tmp_path, scheduler):
    _, address = scheduler
    cmd, out = _sweep(tmp_path, address, timeout=2)
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and time.monotonic() - t0 < 45
    assert "has had no worker for 2 s" in _one_line(done.stderr)


def test_a_killed_scheduler_ends_the_sweep_in_one_line_and_keeps_the_rows(tmp_path, scheduler):
    sched, address = scheduler
    worker = _worker(address)
    try:
        code, err, out = _kill_mid_sweep(tmp_path, address, sched, rows=2)
        assert code == 2
        assert "lost the Dask scheduler" in _one_line(err) and "finished runs are kept" in err
        kept = _rows(out)
        assert kept >= 2
        # the rows on disk are whole: a local rerun resumes from them
        rerun = subprocess.run([sys.executable, "-m", "simulator.cli", "sweep", *GRID, "-o", str(out), "-j", "1",
                                "--networks", "alexnet", "--json"], capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr
    finally:
        _kill(worker)


def test_the_only_worker_killed_without_a_nanny_ends_in_one_line(tmp_path, scheduler):
    _, address = scheduler
    worker = _worker(address)
    try:
        code, err, out = _kill_mid_sweep(tmp_path, address, worker, rows=1, timeout=2)
        assert code == 2
        assert "has had no worker" in _one_line(err) or "worker died" in err
        assert _rows(out) >= 1
    finally:
        _kill(worker)


def test_ctrl_c_is_heard_while_the_cluster_has_no_worker(tmp_path, scheduler):
    _, address = scheduler
    cmd, out = _sweep(tmp_path, address, timeout=600)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # connected, waiting for workers that never come
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=30)[1]
    assert proc.returncode == 130 and "interrupted" in _one_line(err)


def _descendants(pid: int) -> list[int]:
    """Processes of the session ``pid`` leads (the sweep started it), the leader excluded."""
    out = subprocess.run(["ps", "-o", "pid=", "-s", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if int(p) != pid]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_local_sweep_leaves_no_worker_running(tmp_path, sig):
    out = tmp_path / "r.csv"
    cmd = [sys.executable, "-m", "simulator.cli", "sweep", "--networks", "vgg16", "resnet18", "--processors", "2-8",
           "-o", str(out), "-j", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(_descendants(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_descendants(proc.pid)) >= 2, "the workers never started"
        time.sleep(1.0)
        os.kill(proc.pid, sig)  # the sweep only: its workers are left to notice
        proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while _descendants(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _descendants(proc.pid) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
