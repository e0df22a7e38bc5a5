"""The staleness a trainer uses is the engine's (issue "Close the loop").

Independent truths: the weight versions are re-derived from the engine's trace (task start and
update end times) without the engine's recorder; the trainer's versions are compared with a
longer engine run minibatch by minibatch (which also checks the periodic continuation); update
rounds are checked against a direct re-implementation of averaged SGD; the closed forms of
PipeDream's straight pipeline (stage s of N: N - 1 - s updates behind, N - s versions kept).
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from models.graph.tasks import TaskKind, backward_weight_readers, task_layers, update_tasks, weight_readers
from models.network.zoo import get_network, mlp
from models.training.data import load_dataset
from models.training.nn import Net
from models.training.optim import OptimizerConfig
from models.training.staleness import StalenessPattern
from models.training.trainer import DelayedTrainer, TrainConfig
from schedules.registry import build_schedule
from simulator.cli import main
from simulator.commands.train import resolve_network
from simulator.engine import simulate
from simulator.platform import PlatformSpec
from simulator.selection import choose
from simulator.staleness import realised_staleness, schedule_staleness
from simulator.trace import MemoryTrace

DATA = load_dataset("digits")
DIGITS_MLP = resolve_network("mlp", DATA)  # 64-128-64-10, the network tta trains and simulates


def _run(name, net, P, *, link="none", parallelism="hybrid", minibatches=32, trace=None, plan=None):
    plat = PlatformSpec(P, link=link).build()
    if plan is None:
        chosen = choose(name, net, plat, minibatches=minibatches, batch=32, parallelism=parallelism).chosen
        plan = chosen.candidate.plan if chosen.candidate is not None else None
    sched = build_schedule(name, net, plat, minibatches=minibatches, batch=32, parallelism=parallelism,
                           **({"plan": plan} if plan is not None else {}))
    return sched, simulate(sched, plat, trace=trace, record_versions=True), plan


def _versions_from_trace(sched, trace):
    """Per (unit, layer): the range [updates ended before the forward started, ... at or before]
    of the layer's update rounds, from the trace alone (free links: weights arrive when the
    round's last update ends)."""
    graph, rule = sched.graph, sched.rule
    upd = update_tasks(graph)
    round_end: dict[tuple[int, int], float] = defaultdict(float)
    kinds = {(t.kind, t.layer) for ts in upd.values() for t in ts}
    for rec in trace.tasks:
        if (rec.kind, rec.layer) in kinds:
            for l in task_layers(graph, (TaskKind(rec.kind), rec.layer)):
                key = (l, rule.round_of(l, rec.unit))
                round_end[key] = max(round_end[key], rec.end)
    ends = defaultdict(list)
    for (l, _), end in round_end.items():
        ends[l].append(end)
    fwd = weight_readers(graph)
    out = {}
    for rec in trace.tasks:
        for l in fwd.get((TaskKind(rec.kind), rec.layer), ()):
            out[(rec.unit, l)] = (sum(e < rec.start for e in ends[l]), sum(e <= rec.start for e in ends[l]))
    return out


@pytest.mark.parametrize("name,net,P,parallelism", [
    ("pipedream", "mlp", 3, "pipeline"), ("pipedream", "lenet5", 9, "hybrid"), ("layerpipe", "alexnet", 6, "pipeline"),
    ("layerpipe", "lenet5", 4, "hybrid"), ("layerpipe2", "mlp", 8, "hybrid"), ("gpipe", "lenet5", 4, "pipeline"),
])
def test_recorded_forward_versions_agree_with_the_trace(name, net, P, parallelism):
    trace = MemoryTrace()
    sched, result, _ = _run(name, get_network(net), P, parallelism=parallelism, trace=trace)
    v = result.versions
    expected = _versions_from_trace(sched, trace)
    checked = 0
    for (unit, l), (lo, hi) in expected.items():
        got = v.forward[unit][v.layers.index(l)]
        assert lo <= got <= hi, (unit, l, got, lo, hi)
        checked += 1
    assert checked == v.units * len(v.layers)


def test_a_straight_pipedream_pipeline_realises_its_nominal_staleness_and_versions():
    """Stage s of N: forwards N-1-s updates behind, backwards through the current weights, N-s versions."""
    net = get_network("alexnet")
    _, result, plan = _run("pipedream", net, 5, link="100,16", parallelism="pipeline", minibatches=40)
    N = len(plan.stages)
    stage = {l: s for s, (a, b, _) in enumerate(plan.stages) for l in range(a, b + 1)}
    for s in realised_staleness(result.versions):
        behind = N - 1 - stage[s.layer]
        # layer 1 propagates no error (no AG1): its backward is recorded at its forward's version
        assert (s.nominal, s.forward_min, s.forward_max, s.backward_max) == (behind, behind, behind,
                                                                             behind if s.layer == 1 else 0)
        assert s.round_minibatches == 1
        assert result.versions.versions_kept(s.layer) == behind + 1


def test_a_replicated_stage_updates_once_per_round_of_its_replicas():
    _, result, plan = _run("pipedream", get_network("lenet5"), 9)
    reps = {l: r for a, b, r in plan.stages for l in range(a, b + 1)}
    assert any(r > 1 for r in reps.values())
    for s in realised_staleness(result.versions):
        assert s.round_minibatches == reps[s.layer]


def test_layerpipe_realises_less_staleness_than_its_delay_rule_allows_and_keeps_fewer_versions():
    sched, result, _ = _run("layerpipe", get_network("alexnet"), 8, link="100,16", parallelism="pipeline",
                            minibatches=48)
    rows = realised_staleness(result.versions)
    assert all(s.forward_max <= s.nominal for s in rows)
    assert sum(s.forward_max for s in rows) < sum(s.nominal for s in rows)
    nominal_versions = sched.versions()
    assert all(result.versions.versions_kept(l) <= nominal_versions[l] for l in nominal_versions)


def _in_flight_from_trace(sched, trace, versions):
    """Most distinct versions per (layer, processor) in flight at once, from the trace: a forward's
    version is held from its start until the unit's last task using the layer's weights or stash
    ends (at a tie, the release comes first: a lower bound)."""
    graph = sched.graph
    fwd, bwd = weight_readers(graph), backward_weight_readers(graph)
    users = defaultdict(list)
    for rec in trace.tasks:
        node = (TaskKind(rec.kind), rec.layer)
        used = set(bwd.get(node, ())) | (set(task_layers(graph, node)) if TaskKind(rec.kind).frees_stash else set())
        for l in used:
            users[(l, rec.unit)].append(rec.end)
    events = defaultdict(list)  # (layer, proc) -> [(time, order, +1/-1, version)]
    for rec in trace.tasks:
        for l in fwd.get((TaskKind(rec.kind), rec.layer), ()):
            ver = versions.forward[rec.unit][versions.layers.index(l)]
            events[(l, rec.proc)].append((rec.start, 1, +1, ver))
            events[(l, rec.proc)].append((max(users.get((l, rec.unit), [rec.end])), 0, -1, ver))
    out = {}
    for key, evs in events.items():
        live: dict[int, int] = defaultdict(int)
        best = 1
        for _, _, sign, ver in sorted(evs):
            live[ver] += sign
            if not live[ver]:
                del live[ver]
            best = max(best, len(live))
        out[key] = best
    return out


@pytest.mark.parametrize("name,net,P,parallelism", [
    ("pipedream", "mlp", 3, "pipeline"), ("layerpipe", "alexnet", 6, "pipeline"), ("layerpipe", "lenet5", 4, "hybrid"),
])
def test_versions_kept_are_at_least_those_in_flight_in_the_trace(name, net, P, parallelism):
    trace = MemoryTrace()
    sched, result, _ = _run(name, get_network(net), P, parallelism=parallelism, trace=trace)
    v = result.versions
    lower = _in_flight_from_trace(sched, trace, v)
    nominal = sched.versions()
    for (l, p), n in lower.items():
        # the versions in flight are a lower bound (the current one may be newer), S(l) + 1 the upper
        assert n <= v.kept[(l, p)] <= nominal[l]


class LoggingTrainer(DelayedTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: dict[tuple[int, int], int] = {}

    def forward_weights(self, l, v=None, r=None):
        self.log[(self.t, l)] = v
        return super().forward_weights(l, v, r)


@pytest.mark.parametrize("name,P,parallelism", [("layerpipe", 4, "pipeline"), ("pipedream", 8, "hybrid"),
                                                ("layerpipe2", 6, "hybrid"), ("pipedream", 3, "pipeline")])
def test_the_trainer_uses_the_engines_versions_minibatch_by_minibatch(name, P, parallelism):
    plat = PlatformSpec(P).build()
    trial, pattern = schedule_staleness(name, DIGITS_MLP, plat, batch=32, parallelism=parallelism)
    # a run three times as long, on the same plan: the truth for the minibatches past the pattern
    n = 3 * trial.schedule.steps
    plan = {"plan": trial.candidate.plan} if trial.candidate is not None else {}
    long_sched = build_schedule(name, DIGITS_MLP, plat, minibatches=n, batch=32, parallelism=parallelism, **plan)
    truth = simulate(long_sched, plat, record_versions=True).versions
    net = Net(DIGITS_MLP)
    trainer = LoggingTrainer(net, net.init_params(np.random.default_rng(0)),
                             TrainConfig(compensation="stash", staleness=pattern, optimizer=OptimizerConfig("sgd", lr=0.01)))
    x, y = DATA.x_train[:32].reshape(32, -1), DATA.y_train[:32]
    _, last = truth.window
    assert last > len(pattern.forward_lag)  # the comparison reaches into the periodic continuation
    for _ in range(last):
        trainer.step(x, y)
    m = truth.units_per_step
    for t in range(last):
        for k in range(len(truth.layers)):
            assert trainer.log[(t, k)] == truth.forward[t * m][k], (t, k)


@pytest.mark.parametrize("round_lr", ["same", "linear"])
def test_update_rounds_apply_the_mean_gradient_once_per_round(round_lr):
    """A direct re-implementation: plain SGD, round size 2 on layer 1, forward one round behind there
    (with the linear scaling rule, twice the learning rate on the mean: the sum)."""
    net = Net(mlp((6, 5, 3)))
    rng = np.random.default_rng(1)
    xs, ys = rng.normal(size=(8, 4, 6)), rng.integers(0, 3, size=(8, 4))
    pattern = StalenessPattern(nominal=(1, 0), round_size=(2, 1), forward_lag=((0, 0), (0, 0), (1, 0), (1, 0)),
                               backward_lag=((0, 0),) * 4, period=2, source="test")
    sgd = OptimizerConfig("sgd", lr=0.1, momentum=0.0)
    params = net.init_params(np.random.default_rng(0))
    start = [p.copy() for p in params]
    trainer = DelayedTrainer(net, params, TrainConfig(compensation="stash", staleness=pattern, optimizer=sgd,
                                                      round_lr=round_lr))
    for x, y in zip(xs, ys):
        trainer.step(x, y)
    # by hand: layer 0 versions W0_0, W0_0 | W0_0, W0_0 | W0_1, W0_1 | W0_2, W0_2; layer 1 current
    hist0, w1 = [start[0].copy()], start[1].copy()
    pending = []
    for t, (x, y) in enumerate(zip(xs, ys)):
        r = t // 2
        v = max(0, r - (0 if t < 2 else 1))
        w0 = hist0[v]
        _, grads = net.loss_and_grads(x, y, [w0, w1], [w0, w1])
        w1 = w1 - 0.1 * grads[1]
        pending.append(grads[0])
        if t % 2 == 1:
            scale = 2 if round_lr == "linear" else 1
            hist0.append(hist0[-1] - scale * 0.1 * (pending[0] + pending[1]) / 2)
            pending = []
    assert np.allclose(params[0], hist0[-1], rtol=0, atol=1e-12)
    assert np.allclose(params[1], w1, rtol=0, atol=1e-12)


def test_the_linear_scaling_rule_scales_the_learning_rate_not_the_gradient():
    """With Adam a summed gradient would change nothing (Adam normalises its scale): the first
    update of a round of 2 under the linear rule is 2 x lr x sign(g), Adam's first step doubled."""
    net = Net(mlp((6, 5, 3)))
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(4, 6)), rng.integers(0, 3, size=4)
    pattern = StalenessPattern(nominal=(0, 0), round_size=(2, 2), forward_lag=((0, 0), (0, 0)),
                               backward_lag=((0, 0), (0, 0)), period=2, source="test")
    adam = OptimizerConfig("adam", lr=1e-3)
    steps = {}
    for rule in ("same", "linear"):
        params = net.init_params(np.random.default_rng(0))
        start = params[1].copy()
        trainer = DelayedTrainer(net, params, TrainConfig(compensation="stash", staleness=pattern, optimizer=adam,
                                                          round_lr=rule))
        trainer.step(x, y)
        trainer.step(x, y)
        steps[rule] = np.abs(params[1] - start).max()
    assert steps["same"] == pytest.approx(1e-3, rel=1e-3) and steps["linear"] == pytest.approx(2e-3, rel=1e-3)


def test_nominal_and_replayed_staleness_agree_where_the_schedule_realises_its_nominal_delays():
    """PipeDream's straight pipeline realises S(l) exactly, so replaying it trains the same numbers."""
    plat = PlatformSpec(3).build()
    _, pattern = schedule_staleness("pipedream", DIGITS_MLP, plat, batch=32, parallelism="pipeline")
    from models.training.trainer import train

    base = dict(compensation="stash", optimizer=OptimizerConfig("sgd", lr=0.01), epochs=1, seed=0)
    replay = train(DIGITS_MLP, DATA, TrainConfig(staleness=pattern, **base))
    nominal = train(DIGITS_MLP, DATA, TrainConfig(delays=pattern.nominal, **base))
    assert replay.test_accuracy == nominal.test_accuracy and replay.final_loss == nominal.final_loss
    assert replay.staleness == "replay" and nominal.staleness == "nominal"


def test_compare_rows_report_nominal_and_realised_staleness(capsys):
    assert main(["compare", "lenet5", "-p", "4", "--schedules", "pipedream,layerpipe", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for r in rows:
        assert [s["layer"] for s in r["staleness"]] == [1, 2, 3, 4, 5]
        for s in r["staleness"]:
            assert 0 <= s["forward_min"] <= s["forward_mean"] <= s["forward_max"] <= s["nominal"]
            assert 0 <= s["backward_min"] <= s["backward_max"] <= s["forward_max"]


def test_train_replays_a_schedule(capsys):
    assert main(["train", "mlp", "-s", "pipedream", "-p", "8", "--epochs", "1", "--json"]) == 0
    replay = json.loads(capsys.readouterr().out)
    assert replay["staleness"] == "replay" and replay["round_size"] == [8, 8, 8]  # data parallel over 8
    assert main(["train", "mlp", "-s", "pipedream", "-p", "8", "--epochs", "1", "--staleness", "nominal",
                 "--json"]) == 0
    nominal = json.loads(capsys.readouterr().out)
    assert nominal["staleness"] == "nominal" and nominal["round_size"] == [1, 1, 1]
    # one update per 8 minibatches: 6 updates in an epoch against 45, so replay trains far less
    assert replay["final_loss"] > nominal["final_loss"]


def test_tta_reports_steps_cycles_and_a_target_not_reached(capsys, tmp_path):
    plot = tmp_path / "tta.png"
    assert main(["tta", "mlp", "--target", "0.9", "-p", "3", "--parallelism", "pipeline", "--seeds", "2",
                 "--epochs", "4", "--eval-every", "9", "--schedules", "pipedream,gpipe,layerpipe2:stash",
                 "--plot", str(plot), "--json"]) == 0
    rows = {r["schedule"]: r for r in json.loads(capsys.readouterr().out)}
    assert plot.stat().st_size > 0
    for r in rows.values():
        assert r["seeds"] == 2 and r["budget_steps"] == 4 * 45
        if r["reached"] == 2:
            assert r["steps_to_target"] % 9 == 0 or r["steps_to_target_std"] > 0
            assert r["cycles_to_target"] == pytest.approx(r["steps_to_target"] * r["cycles_per_minibatch"])
        for run in r["runs"]:
            first = next((s for s, a in run["curve"] if a >= 0.9), None)
            assert run["steps_to_target"] == first
    assert rows["layerpipe2:stash"]["compensation"] == "stash"
    # a target this budget cannot reach: rows say so, and with no schedule reaching it, one line and exit 2
    assert main(["tta", "mlp", "--target", "0.99", "-p", "2", "--seeds", "1", "--epochs", "1",
                 "--schedules", "pipedream"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no schedule reached 99.0%" in err


def test_tta_rows_say_not_reached_as_text():
    from simulator.studies.tta import time_to_accuracy

    rows = time_to_accuracy(DIGITS_MLP, ["pipedream", "gpipe"], PlatformSpec(2).build(), DATA, target=0.8, seeds=1,
                            epochs=1, eval_every=5, optimizer=OptimizerConfig("sgd", lr=1e-4, momentum=0.0))
    assert all(r.reached == 0 and r.steps_to_target is None and r.cycles_to_target is None for r in rows)
    assert rows[0].to_dict()["steps_to_target"] is None
