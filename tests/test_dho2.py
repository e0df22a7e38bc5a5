"""Distributed designs: collective formulas, engine makespans against hand sums, DHO2's overlap and memory, CLI."""

import json
import math

import pytest

from models.errors import ScheduleError
from models.graph.tasks import TaskKind
from models.graph.work import TaskWork
from models.network.zoo import mlp
from models.training.lanczos import iteration_collectives
from schedules.passes import validate
from schedules.schedule import Schedule
from simulator.cli import main
from simulator.costs import FREE_LINK, LinkModel, MacArray
from simulator.costs.collectives import (
    allgather_cycles,
    allreduce_cycles,
    broadcast_cycles,
    collective_cycles,
    redistribute_cycles,
)
from simulator.engine import simulate
from simulator.platform import Platform
from simulator.studies.dho2 import (
    DESIGNS,
    KIND_MEANING,
    DesignConfig,
    Memory,
    batch_shares,
    design_cost,
    dho2_candidates,
    dho2_period_schedule,
    dho2_refresh_schedule,
    dho2_step_schedule,
    memory,
    network_work,
    step_schedule,
)

LINK = LinkModel(100, 16)
MAC = MacArray(256)
NET = mlp((64, 32, 10))  # 2,410 parameters: small graphs, fast simulations
N = NET.total_params()
CFG = DesignConfig(batch=64, curvature_batch=32, k=2, refresh=10)


def plat(p, link=LINK):
    return Platform.homogeneous(p, MAC, link)


def test_ring_collectives_follow_the_textbook_formula():
    # bytes divisible by P * bandwidth: 2(P-1)/P * bytes/bw + 2(P-1) * latency exactly
    for p in (2, 4, 8):
        nbytes = 16 * p * 100
        assert allreduce_cycles(nbytes, p, LINK) == 2 * (p - 1) / p * nbytes / 16 + 2 * (p - 1) * 100
        assert allgather_cycles(nbytes, p, LINK) == (p - 1) * (100 + nbytes // p // 16)
        assert broadcast_cycles(nbytes, p, LINK) == 2 * allgather_cycles(nbytes, p, LINK)
    assert allreduce_cycles(10**6, 1, LINK) == 0 and allreduce_cycles(0, 4, LINK) == 0
    # 4 senders -> 2 receivers: each receiver takes half the vector in 2 messages
    assert redistribute_cycles(6400, 4, 2, LINK) == 2 * 100 + 3200 // 16


def test_one_device_step_is_the_sum_of_its_tasks():
    s = step_schedule("dp-sgd", NET, 1, plat(1), CFG)
    total = sum(MAC.task_cycles(d["work"]) for _, d in s.graph.nodes(data=True))
    assert simulate(s, plat(1)).makespan == total
    w = network_work(NET, 64)
    assert total == MAC.task_cycles(w.forward) + MAC.task_cycles(w.backward) + math.ceil(2 * N / 256)


def test_data_parallel_step_is_compute_plus_allreduce_plus_update():
    P = 4
    s = step_schedule("dp-sgd", NET, P, plat(P), CFG)
    w = network_work(NET, 16)
    expect = (MAC.task_cycles(w.forward) + MAC.task_cycles(w.backward) + allreduce_cycles(2 * N, P, LINK)
              + math.ceil(2 * N / 256))
    assert simulate(s, plat(P)).makespan == expect
    # an HVP costs 2-3 gradients: 9 GEMMs per inner layer against 3, 4 for the first layer against 2
    assert 2.0 < network_work(NET, 16).hvp.macs / (w.forward.macs + w.backward.macs) < 3.0


def test_schedules_use_the_schedule_kinds_and_round_trip_as_text():
    for design in DESIGNS:
        s = design_cost(design, NET, 3, plat(3), CFG, keep_schedules=True).schedules
        for sched in s.values():
            kinds = {k for k, _ in sched.graph.nodes}
            assert kinds <= set(KIND_MEANING), (design, kinds)
            validate(sched)
            back = Schedule.from_text(sched.to_text(), sched.graph)
            assert back.orders == sched.orders


def test_fosi_refresh_runs_on_device_zero_only():
    P = 3
    ref = step_schedule("fosi", NET, P, plat(P), CFG, refresh=True)
    hvps = [(n, d) for n, d in ref.graph.nodes(data=True) if "HVP on" in d["label"]]
    assert len(hvps) == CFG.lanczos_iterations == 8 and {d["device"] for _, d in hvps} == {0}
    c = design_cost("fosi", NET, P, plat(P), CFG)
    assert c.cycles_per_step == pytest.approx(c.step_cycles + (c.refresh_cycles - c.step_cycles) / 10)
    # memory: device 0 holds the whole Lanczos basis (m * n) and every device the eigenvectors
    assert c.memory[0].lanczos_basis == 8 * N and c.memory[1].lanczos_basis == 0
    assert all(m.eigenvectors == 2 * N for m in c.memory)


def test_fosi_with_data_parallel_hvps_against_hand_sums():
    """fosi-dp (hsivan/fosi's b_parallel): each Lanczos iteration is the HVP of the device's share
    of the curvature batch, an all-reduce of n values, then on every device the two Gram-Schmidt
    passes and the norm; the eigen-solve runs everywhere and V needs no broadcast. So its refresh
    costs m x (HVP of the largest share + the all-reduce) + the replicated vector work, and on
    one device it is exactly FOSI's."""
    P, m = 4, CFG.lanczos_iterations
    c = design_cost("fosi-dp", NET, P, plat(P), CFG, keep_schedules=True)
    share = max(batch_shares(CFG.curvature_batch, P))
    vector = sum(2 * MAC.task_cycles(TaskWork(macs=2 * (j + 1) * N)) + MAC.task_cycles(TaskWork(macs=N, elementwise=N))
                 for j in range(m)) + MAC.task_cycles(TaskWork(macs=m ** 3 + CFG.rank * N * m))
    expect = m * (MAC.task_cycles(network_work(NET, share).hvp) + allreduce_cycles(2 * N, P, LINK)) + vector
    assert c.refresh_cycles - c.step_cycles == expect
    assert c.cycles_per_step == pytest.approx(c.step_cycles + expect / CFG.refresh)
    hvps = [d for n, d in c.schedules["refresh"].graph.nodes(data=True) if n.kind == TaskKind.HVP]
    assert len(hvps) == m * P and {d["device"] for d in hvps} == set(range(P))
    # every device holds FOSI's device 0: the whole basis and a residual
    assert all(x.lanczos_basis == m * N and x.workspace == N and x.eigenvectors == 2 * N for x in c.memory)
    one, ref = design_cost("fosi-dp", NET, 1, plat(1), CFG), design_cost("fosi", NET, 1, plat(1), CFG)
    assert (one.step_cycles, one.refresh_cycles) == (ref.step_cycles, ref.refresh_cycles)
    # on 4 devices the HVPs shrink 4x: the refresh costs less than FOSI's on device 0 here
    assert c.refresh_cycles < design_cost("fosi", NET, P, plat(P), CFG).refresh_cycles


def test_dho2_shards_the_lanczos_and_hides_it_behind_the_updates():
    P, P_c = 4, 2
    p4 = plat(P)
    cfg = DesignConfig(batch=64, curvature_batch=32, k=2, refresh=10, curvature_devices=P_c)
    c = design_cost("dho2", NET, P, p4, cfg, keep_schedules=True)
    step = simulate(dho2_step_schedule(NET, P, P_c, p4, cfg), p4).makespan
    ref = simulate(dho2_refresh_schedule(NET, P, P_c, p4, cfg), p4).makespan
    assert (c.step_cycles, c.refresh_cycles) == (step, ref)
    assert c.staleness == math.ceil(ref / step)
    period = max(10, c.staleness)
    assert c.refresh_period == period
    # the Lanczos chain runs beside the update steps: the period costs its steps plus the two
    # short collectives the update devices join, far less than steps + refresh
    extra = broadcast_cycles(2 * N, P_c + 1, LINK) + redistribute_cycles(2 * 2 * N, P_c, P - P_c, LINK)
    assert period * step <= c.info["period_cycles"] <= period * step + extra
    assert c.info["period_cycles"] < period * step + ref
    # the HVPs are split over the curvature devices, every Lanczos collective is in the graph
    sched = c.schedules["refresh"]
    hvps = [d for n, d in sched.graph.nodes(data=True) if n.kind == TaskKind.HVP]
    assert len(hvps) == 8 * P_c and {d["label"].split(" on ")[1] for d in hvps} == {"16 samples"}
    colls = [d for n, d in sched.graph.nodes(data=True) if n.kind.is_communication and "barrier" not in d["label"]]
    # the weight broadcast (P_c + 1 participants), then the five collectives of every iteration
    assert len(colls) == (P_c + 1) + P_c * sum(len(iteration_collectives(j, N)) for j in range(8))


def test_released_dho2_blocks_every_device_for_a_sharded_lanczos():
    """dho2-release (ShunxianGu/DHO2's code): every step the whole FOSI update with Adam and the dual on
    every device; every T steps the Lanczos chain of dho2's curvature devices run on *all* P devices
    while no update runs, then the all-gather of V and the period's jump (4n element-wise). So its
    refresh costs exactly dho2's chain on P devices plus those, and its memory shards only the basis."""
    P, m = 4, CFG.lanczos_iterations
    c = design_cost("dho2-release", NET, P, plat(P), CFG, keep_schedules=True)
    hvps = [d for n, d in c.schedules["refresh"].graph.nodes(data=True) if n.kind == TaskKind.HVP]
    assert len(hvps) == m * P and {d["device"] for d in hvps} == set(range(P))
    # by hand: per iteration its five collectives on P devices, the HVP of a device's share, two
    # Gram-Schmidt passes and the norm on a shard of ceil(n / P); the eigen-solve; the all-gather; the jump
    ns, share = math.ceil(N / P), max(batch_shares(CFG.curvature_batch, P))
    chain = sum(sum(collective_cycles(x.op, x.words * CFG.word_bytes, P, LINK)
                    for x in iteration_collectives(j, N, data_parallel_hvp=True))
                + MAC.task_cycles(network_work(NET, share).hvp) + 2 * MAC.task_cycles(TaskWork(macs=2 * (j + 1) * ns))
                + MAC.task_cycles(TaskWork(macs=ns, elementwise=ns)) for j in range(m))
    chain += MAC.task_cycles(TaskWork(macs=m ** 3 + CFG.rank * ns * m))
    tail = allgather_cycles(CFG.rank * N * CFG.word_bytes, P, LINK) + MAC.task_cycles(TaskWork(elementwise=4 * N))
    assert c.refresh_cycles - c.step_cycles == chain + tail
    assert c.cycles_per_step == pytest.approx(c.step_cycles + (c.refresh_cycles - c.step_cycles) / CFG.refresh)
    assert c.curvature_devices == P and c.staleness == 0
    basis = [x.lanczos_basis for x in c.memory]
    assert sum(basis) == m * N and max(basis) == m * math.ceil(N / P)
    assert all(x.eigenvectors == 2 * N and x.optimizer == 5 * N for x in c.memory)  # Adam 2n, velocity, dual, start


def test_dho2_memory_shards_basis_and_optimizer_state():
    P, P_c = 8, 4
    mem = memory("dho2", N, P, CFG, curvature_devices=P_c)
    upd, curv = mem[:P - P_c], mem[P - P_c:]
    m = CFG.lanczos_iterations
    assert sum(x.lanczos_basis for x in curv) == m * N and max(x.lanczos_basis for x in curv) == m * math.ceil(N / P_c)
    assert sum(x.eigenvectors for x in upd) == 2 * N and sum(x.optimizer for x in upd) == 2 * N  # heavy-ball + velocity
    one = memory("fosi", N, P, CFG)
    assert one[0].lanczos_basis == m * N and one[0].total > max(x.total for x in mem)


def test_dho2_memory_falls_with_devices_and_one_device_is_fosi():
    cfg = DesignConfig(batch=64, curvature_batch=32, k=2, refresh=10)
    words = [design_cost("dho2", NET, p, plat(p), cfg).memory_words_max for p in (2, 4, 8)]
    assert words[0] > words[1] > words[2]
    one = design_cost("dho2", NET, 1, plat(1), cfg)
    fosi = design_cost("fosi", NET, 1, plat(1), cfg)
    assert one.cycles_per_step == fosi.cycles_per_step and one.memory == fosi.memory
    assert [c.curvature_devices for c in dho2_candidates(NET, 4, plat(4), cfg)] == [1, 2, 3]


def test_period_schedule_waits_when_the_staleness_is_too_small():
    P, P_c = 3, 1
    p3 = plat(P)
    step = simulate(dho2_step_schedule(NET, P, P_c, p3, CFG), p3).makespan
    ok = simulate(dho2_period_schedule(NET, P, P_c, p3, CFG, staleness=20, step_cycles=step), p3).makespan
    rushed = simulate(dho2_period_schedule(NET, P, P_c, p3, CFG, staleness=1, step_cycles=step), p3).makespan
    assert rushed > ok - 10 * step  # the update devices idle until V is ready


def test_free_link_and_kfac_cost_and_errors():
    c = design_cost("dp-kfac", NET, 2, plat(2, FREE_LINK), CFG)
    assert c.refresh_cycles > c.step_cycles and c.refresh_period == CFG.kfac_refresh
    assert c.memory[0].curvature == 2 * sum(d * d for d in (65, 32, 33, 10))
    assert batch_shares(5, 3) == [2, 2, 1]
    with pytest.raises(ScheduleError):
        design_cost("zero", NET, 2, plat(2), CFG)
    with pytest.raises(ScheduleError):
        design_cost("dp-sgd", NET, 3, plat(2), CFG)
    with pytest.raises(ScheduleError):
        design_cost("dho2", NET, 3, plat(3), DesignConfig(curvature_devices=3))
    with pytest.raises(ScheduleError):
        DesignConfig(k=0)
    assert Memory(model=1, gradient=2).total == 3


def test_cli_json_and_table(capsys):
    argv = ["dho2", "--network", "logreg", "--devices", "2", "--quick", "--k", "2", "--refresh", "20",
            "--max-steps", "200", "--target", "0.3"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    designs = {r["design"]: r for r in out["designs"]}
    assert set(designs) == set(DESIGNS) and out["devices"] == 2
    d = designs["dho2"]
    assert d["update_devices"] + d["curvature_devices"] == 2 and d["time_to_target"] == pytest.approx(
        d["steps"] * d["cycles_per_step"])
    assert designs["fosi"]["basis_bytes"] == 8 * 650 * 2
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "dho2" in text and "time (Mcycles)" in text and "mem/device (MiB)" in text
    # the vocabulary of the other commands: a positional network and -p give the same answer
    common = ["dho2", "logreg", "-p", "2", *argv[5:], "--json"]
    assert main(common) == 0
    assert json.loads(capsys.readouterr().out)["designs"] == out["designs"]
    # a subset of the designs, in the designs' order, and optimizer settings taken as given
    assert main([*common, "--designs", "fosi-dp", "dho2", "--lr", "fosi=0.8", "--alpha", "0.02"]) == 0
    sub = json.loads(capsys.readouterr().out)
    assert [r["design"] for r in sub["designs"]] == ["fosi-dp", "dho2"]
    assert sub["learning_rates"]["fosi"] == 0.8 and sub["learning_rates"]["sgd"] == out["learning_rates"]["sgd"]


def test_the_autoencoder_reconstructs_with_the_squared_error_and_fosi_on_adam(capsys):
    argv = ["dho2", "autoencoder", "-p", "2", "--quick", "--designs", "dp-adam", "fosi", "--max-steps", "400",
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    designs = {r["design"]: r for r in out["designs"]}
    assert out["network"].startswith("autoencoder") and "training loss <= 1.5" in out["target"]
    # predicting the mean image scores about 2.34; 1.5 needs about a third of the
    # pixels' variance explained, which both reach within 400 steps, FOSI's Adam base with fewer
    assert 0 < designs["fosi"]["steps"] < designs["dp-adam"]["steps"] <= 400


@pytest.mark.parametrize("argv,needle", [
    (["dho2", "--devices", "2", "--network", "lenet5"], "lenet5"),
    (["dho2", "--devices", "2", "--k", "0"], "k + l"),
    (["dho2", "--devices", "2", "--curvature-devices", "2"], "curvature-devices"),
    (["dho2", "--devices", "2", "--hardware", "gpu"], "hardware"),
    (["dho2", "--devices", "2", "--network", "nonet"], "nonet"),
    (["dho2", "--devices", "0"], "--processors"),
    (["dho2", "logreg", "-p", "2", "--target", "nan"], "finite"),
    (["dho2", "logreg", "-p", "2", "--target", "0"], "above 0"),
    (["dho2", "logreg", "-p", "2", "--target", "1.2", "--target-metric", "test_accuracy"], "(0, 1]"),
    (["dho2", "logreg", "-p", "2", "--k", "700"], "650"),
    (["dho2", "logreg", "-p", "2", "--designs", "dho3"], "dho3"),
    (["dho2", "logreg", "-p", "2", "--lr", "fosi=inf"], "--lr"),
    (["dho2", "logreg", "-p", "2", "--lr", "newton=0.1"], "newton"),
    (["dho2", "logreg", "-p", "2", "--alpha", "-0.5"], "--alpha"),
    (["dho2", "autoencoder", "-p", "2", "--target", "0.9", "--target-metric", "test_accuracy"], "no accuracy"),
])
def test_cli_bad_input_is_one_line_exit_2(capsys, argv, needle):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals exit from inside the parser
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


# --------------------------------------------------------------------------- K-FAC of convolutions, T in epochs,
# parallel runs, the projection


def test_kfac_of_a_convolution_counts_patches_and_positions():
    """conv 3->4 (3x3, padding 1, bias) on 3x8x8, then a dense 256->10 without bias: A is the 3*3*3 patch
    plus the bias (28) and G the 4 channels, each with a row per sample and output position (64); the
    dense layer's A is 256, its G 10. Worked by hand below, against the graph the engine runs."""
    from models.network.layers import Conv2d, Flatten, Linear
    from models.network.spec import chain
    from simulator.studies.dho2 import KfacLayer, kfac_layers

    net = chain("c", (3, 8, 8), [Conv2d(4, kernel=3, padding=1), Flatten(), Linear(10, bias=False)])
    assert kfac_layers(net) == (KfacLayer(28, 4, 64), KfacLayer(256, 10, 1))
    cfg = DesignConfig(batch=6, curvature_batch=4, k=2)
    sched = step_schedule("dp-kfac", net, 2, plat(2), cfg, refresh=True)
    curv = [d["work"] for n, d in sched.graph.nodes(data=True) if n.kind == TaskKind.CURV]
    share = 3  # 6 samples on 2 devices
    assert [w.macs for w in curv] == [(28 * 28 + 4 * 4) * share * 64 + (256 * 256 + 10 * 10) * share] * 2
    upd = [d["work"] for n, d in sched.graph.nodes(data=True) if n.kind == TaskKind.U]
    assert upd[0].macs == (4 * 28 * 4 + 4 * 28 * 28) + (10 * 256 * 10 + 10 * 256 * 256)
    c = design_cost("dp-kfac", net, 2, plat(2), cfg)
    assert c.memory[0].curvature == 2 * (28 ** 2 + 4 ** 2 + 256 ** 2 + 10 ** 2)  # factors and their inverses
    from models.network.zoo import load_network

    with pytest.raises(ScheduleError, match="dp-kfac has no factors for the"):
        kfac_layers(load_network("gpt2"))  # attention and its projections: not this K-FAC's


def test_staleness_rounding_only_rounds_up_and_by_at_most_half():
    from simulator.commands.dho2 import round_staleness

    for q in (1, 8, 32):
        for s in range(0, 2000, 7):
            r = round_staleness(s, q)
            assert r >= s and round_staleness(r, q) == r
            assert r <= max(s + q - 1, math.ceil(1.5 * s)) if s else r == 0


def test_refresh_in_epochs_on_the_command_line(capsys):
    base = ["dho2", "logreg", "-p", "2", "--quick", "--k", "2", "--max-steps", "60", "--target", "0.5",
            "--designs", "dp-sgd", "fosi", "--json"]
    assert main([*base, "--refresh-epochs", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["refresh"] == math.ceil(2 * 1437 / 128) == out["design_config"]["refresh"] == 23
    assert main(base) == 0  # the preset's 8 epochs
    assert json.loads(capsys.readouterr().out)["settings"]["refresh"] == 90
    assert main([*base, "--refresh", "7"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["refresh"] == 7


def test_runs_in_parallel_are_the_runs_in_series():
    from dataclasses import replace

    from simulator.commands.dho2 import StepsOracle, TrainSettings, study_network

    net, preset = study_network("logreg")
    preset = replace(preset, max_steps=40)
    wanted = [("sgd", None, 0, 2), ("fosi", None, 16, 2), ("adam", 0.1, 0, 1)]
    serial, parallel = StepsOracle(net, preset, TrainSettings(seeds=2)), StepsOracle(net, preset, TrainSettings(seeds=2))
    serial.prefetch(wanted, jobs=1)
    parallel.prefetch(wanted, jobs=2)
    assert serial.cache.keys() == parallel.cache.keys() and len(serial.cache) == 5
    for key in serial.cache:
        a, b = serial.cache[key], parallel.cache[key]
        assert (a.steps_to_target, a.steps_run, a.final_train_loss, a.curve) == \
            (b.steps_to_target, b.steps_run, b.final_train_loss, b.curve)


def test_candidates_up_to_a_staleness_are_those_of_the_full_list():
    P = 4
    full = dho2_candidates(NET, P, plat(P), CFG)
    stale = sorted(c.staleness for c in full)
    limit = stale[len(stale) // 2]
    kept = dho2_candidates(NET, P, plat(P), CFG, max_staleness=limit)
    assert [(c.curvature_devices, c.cycles_per_step) for c in kept] == \
        [(c.curvature_devices, c.cycles_per_step) for c in full if c.staleness <= limit]
    least = min(full, key=lambda c: (c.staleness, c.curvature_devices))
    none = dho2_candidates(NET, P, plat(P), CFG, max_staleness=0)
    assert [c.curvature_devices for c in none] == [least.curvature_devices]


def test_projection_is_cycles_times_borrowed_steps_with_the_best_coverable_split():
    from simulator.studies.dho2 import METHOD_OF
    from simulator.studies.dho2_projection import MeasuredSteps, design_costs, project, speedups

    steps = MeasuredSteps("toy", {"sgd": 300, "adam": 200, "kfac": 120, "fosi": 100, "fosi-release": math.inf},
                          ((0, 100.0), (8, 110.0), (64, 150.0)))
    P = 4
    costs = design_costs(NET, P, plat(P), CFG)
    rows = {r.design: r for r in project(costs, steps)}
    for d in DESIGNS:
        if d != "dho2":
            assert rows[d].time_to_target == steps.steps[METHOD_OF[d]] * costs[d].cycles_per_step
    # DHO2 by brute force: every split, FOSI's steps at the first measured staleness >= its own
    def at(s):
        return next((v for p, v in steps.fosi_by_staleness if p >= s), None)
    priced = [(at(c.staleness) * c.cycles_per_step, c.curvature_devices) for c in costs["dho2"] if at(c.staleness)]
    assert (rows["dho2"].time_to_target, rows["dho2"].cost.curvature_devices) == min(priced)
    s = speedups(list(rows.values()))
    first = min(rows[d].time_to_target for d in ("dp-sgd", "dp-adam"))
    second = min(rows[d].time_to_target for d in ("dp-kfac", "fosi-dp"))
    assert s["vs_first_order"] == first / rows["dho2"].time_to_target
    assert s["vs_second_order"] == second / rows["dho2"].time_to_target
    assert rows["dho2-release"].time_to_target == math.inf
    # a baseline on fewer devices counts when it is faster (DHO2's split may idle devices too)
    one = project(design_costs(NET, 1, plat(1), CFG, ("dp-sgd",)), steps)
    s1 = speedups(list(rows.values()), fewer=one)
    assert s1["vs_first_order"] == min(first, one[0].time_to_target) / rows["dho2"].time_to_target


@pytest.mark.parametrize("bad, fragment", [
    ({"steps": {"sgd": 1}}, "has no steps for"),
    ({"fosi_by_staleness": ((8, 10.0),)}, "must start at 0"),
    ({"fosi_by_staleness": ((0, 10.0), (0, 12.0))}, "must start at 0 and increase"),
    ({"fosi_by_staleness": ((0, float("nan")),)}, "steps must be positive"),
])
def test_measured_steps_refuse_what_cannot_be_projected(bad, fragment):
    from models.errors import LayerPipeError
    from simulator.studies.dho2_projection import MeasuredSteps

    good = {"workload": "w", "steps": {"sgd": 1, "adam": 1, "kfac": 1, "fosi": 1, "fosi-release": 1},
            "fosi_by_staleness": ((0, 1.0),)}
    with pytest.raises(LayerPipeError, match=fragment):
        MeasuredSteps(**{**good, **bad})
    with pytest.raises(LayerPipeError, match="malformed"):
        MeasuredSteps.from_json({"workloads": [{"network": "w"}]})
