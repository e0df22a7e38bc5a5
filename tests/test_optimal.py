"""The optimal modulo schedule against independent truths: an exhaustive search timed by the engine,
the heuristics it must never be worse than, and the bounds it must never undercut."""

from __future__ import annotations

import itertools
import math

import pytest

pytest.importorskip("ortools")

from models.errors import DeadlockError, ScheduleError  # noqa: E402
from models.graph.synthetic import uniform_pipeline_graph  # noqa: E402
from schedules.delays import DelayRule  # noqa: E402
from schedules.planning.modulo import _Instance, best_modulo_schedule  # noqa: E402
from schedules.schedule import Action, Schedule  # noqa: E402
from simulator.cli import main  # noqa: E402
from simulator.costs import FREE_LINK, LinkModel, MacArray  # noqa: E402
from simulator.engine import simulate  # noqa: E402
from simulator.hardware import Hardware  # noqa: E402
from simulator.metrics import static_memory  # noqa: E402
from simulator.platform import Platform, PlatformSpec  # noqa: E402
from simulator.runs import converge  # noqa: E402
from simulator.studies.optimal_gap import gap_row  # noqa: E402

UNITS = 14


def rate(make, platform: Platform) -> float:
    """The engine's exact steady-state cycles per minibatch of ``make(n)`` (a schedule of n minibatches)."""
    _, res = converge(make, platform, UNITS)
    assert res.stats.exact
    return res.stats.cycles_per_step


def periodic_orders(pattern: dict[int, list[tuple]], units: int) -> dict[int, list[Action]]:
    """Orders that repeat ``pattern`` every minibatch: period k runs ``(task, offset)`` as unit k - offset."""
    depth = max((o for seq in pattern.values() for _, o in seq), default=0)
    return {p: [Action(t[0], t[1], k - o) for k in range(units + depth) for t, o in seq if 0 <= k - o < units]
            for p, seq in pattern.items()}


def exhaustive_best(graph, platform: Platform, delays: dict[int, int], depth: int, allowed=lambda place: True) -> float:
    """The smallest engine rate over every placement (the first forward on P0) that ``allowed`` accepts
    and every per-processor cyclic pattern of tasks with minibatch offsets 0..depth: one-minibatch-periodic
    orders, timed by the engine, with no solver in sight."""
    tasks = sorted(graph.nodes)
    first = min(tasks, key=lambda t: (t[0] != "F", t[1]))
    best = math.inf
    for procs in itertools.product(range(platform.size), repeat=len(tasks)):
        place = dict(zip(tasks, procs))
        if place[first] != 0 or not allowed(place):
            continue
        per = {p: [t for t in tasks if place[t] == p] for p in range(platform.size)}
        choices = []
        for p, ts in per.items():
            choices.append([list(zip(perm, offs)) for perm in itertools.permutations(ts)
                            for offs in itertools.product(range(depth + 1), repeat=len(ts))])
        for combo in itertools.product(*choices):
            pattern = dict(enumerate(combo))
            try:
                best = min(best, rate(lambda n, pat=pattern: Schedule("brute", graph, periodic_orders(pat, n),
                                                                       dict(delays)), platform))
            except DeadlockError:
                continue
    return best


@pytest.mark.parametrize("stale,link", [(0, FREE_LINK), (1, FREE_LINK), (1, LinkModel(2, 4.0))])
def test_optimum_equals_exhaustive_search(stale, link):
    graph = uniform_pipeline_graph(2, f=2, b=3, w=0, act_bytes=8, split_backward=False)  # F1 F2 B2 B1
    platform = Platform.homogeneous(2, MacArray(1), link)
    delays = {1: 2 * stale}
    sol = full = best_modulo_schedule(graph, Hardware.of(platform), DelayRule.from_delays(delays), time_limit=5)
    assert sol.status == "optimal"
    truth = exhaustive_best(graph, platform, delays, depth=2)
    # whole-cycle starts: the solver's interval is the exhaustive optimum rounded up
    assert sol.interval == math.ceil(truth)
    assert truth <= rate(lambda n: Schedule("optimal", graph, sol.orders(n, graph), delays), platform) <= sol.interval
    if link is FREE_LINK:
        return
    # room for every placement without the first-come rule, not with it: the relaxation's bound and a
    # placement timed with first-come links, against the same exhaustive truth
    inst = _Instance(graph, Hardware.of(platform), DelayRule.from_delays(delays), 1)
    lo = max(inst.bounds().values())
    room = (inst.size(lo, fifo=False) + inst.size(lo)) // 2
    assert inst.size(lo, fifo=False) < room < inst.size(lo)
    sol = best_modulo_schedule(graph, Hardware.of(platform), DelayRule.from_delays(delays), time_limit=5,
                               max_size=room)
    assert "first-come" in sol.message and sol.status in ("optimal", "gap")
    assert any("(placement fixed, first come)" in what for _, what in sol.tried)
    assert sol.lower_bound <= math.ceil(truth) <= sol.interval
    assert truth <= rate(lambda n: Schedule("optimal", graph, sol.orders(n, graph), delays), platform) <= sol.interval
    # a warm start mirrored onto the other processor (its first task not on P0) is timed as it is
    mirrored = {t: 1 - p for t, p in full.placement.items()}
    again = best_modulo_schedule(graph, Hardware.of(platform), DelayRule.from_delays(delays), time_limit=5,
                                 max_size=room, upper=full.interval, hint_placement=mirrored)
    timed = [step for step in again.tried if "placement fixed" in step[1]]
    assert timed[0] == (full.interval, "feasible (placement fixed, first come)")  # the warm start's, first


def test_memory_capacity_restricts_the_placements_as_an_exhaustive_search_does():
    # F1 F2 B2 B1 with 8-byte weights: a layer's forward holds its weights (8 B), its backward (the
    # gradient, no U here) the gradient buffer and optimizer state (16 B); 32 B per processor forbid the
    # best placement without a limit, and 16 B forbid every placement
    pb = 8
    graph = uniform_pipeline_graph(2, f=2, b=3, w=0, act_bytes=8, split_backward=False, param_bytes=pb)
    delays, link = {1: 0}, LinkModel(6, 8.0)

    def held(place) -> list[int]:
        mem = [0, 0]
        for t, p in place.items():
            mem[p] += pb if t[0] == "F" else 2 * pb
        return mem

    free = Platform.homogeneous(2, MacArray(1), link)
    limited = Platform.homogeneous(2, MacArray(1), link, memory_capacity=4 * pb)
    sol = best_modulo_schedule(graph, Hardware.of(limited), DelayRule.from_delays(delays), time_limit=5)
    truth = exhaustive_best(graph, limited, delays, depth=1, allowed=lambda place: max(held(place)) <= 4 * pb)
    assert sol.status == "optimal" and sol.interval == math.ceil(truth)
    assert max(held(sol.placement)) <= 4 * pb
    unlimited = best_modulo_schedule(graph, Hardware.of(free), DelayRule.from_delays(delays), time_limit=5)
    assert unlimited.interval < sol.interval and max(held(unlimited.placement)) > 4 * pb  # the limit binds
    sched = Schedule("optimal", graph, sol.orders(6, graph), delays)
    assert max(m.total for m in static_memory(sched)) <= 4 * pb  # the metrics' own count agrees
    with pytest.raises(ScheduleError, match="no placement fits 16 bytes per processor"):
        best_modulo_schedule(graph, Hardware.of(Platform.homogeneous(2, MacArray(1), link, memory_capacity=2 * pb)),
                             DelayRule.from_delays(delays), time_limit=5)


def test_bound_is_proven_and_met_on_a_closed_form():
    # three one-cycle tasks per stage and stage 1's loop of 5 cycles over 2 minibatches: interval 3
    g = uniform_pipeline_graph(2, f=1, b=1, w=1)
    sol = best_modulo_schedule(g, Hardware.of(Platform.homogeneous(2, MacArray(1))), DelayRule(stale={1: 1}))
    assert (sol.interval, sol.lower_bound, sol.status) == (3, 3, "optimal")
    # no staleness: the loop F1 F2 B2 B1 W1 -> F1 of the next minibatch holds 5 cycles, whatever P
    for P in (2, 3):
        sol = best_modulo_schedule(g, Hardware.of(Platform.homogeneous(P, MacArray(1))), DelayRule())
        assert (sol.interval, sol.lower_bound) == (5, 5)
        assert ("4", "infeasible") in [(str(lam), what) for lam, what in sol.tried]


@pytest.mark.parametrize("network,method,P,link", [
    ("mlp", "pipedream", 3, "100,16"), ("mlp", "layerpipe", 2, "100,16"), ("mlp", "layerpipe2", 4, "none")])
def test_heuristics_never_beat_the_proven_bound_and_the_optimum_never_loses(network, method, P, link):
    row = gap_row(network, method, PlatformSpec(P, link=link), batch=32, time_limit=3)
    assert row.method_exact and row.engine_exact
    # no schedule runs faster than the proof allows: the solver's, as the engine runs it, nor the method's
    # (its orders repeat every minibatch here, so it is in the solver's class)
    assert row.engine_cycles > row.proven_bound - 1 and row.method_cycles > row.proven_bound - 1
    # warm-started from the method, which is in the class: the solver's schedule is never slower than it
    assert row.analytic_bound <= row.engine_cycles <= row.method_cycles
    # first-come links in the model as in the engine: the engine keeps the solver's interval or beats it
    assert row.engine_cycles <= row.solver_interval


def test_too_large_says_so_and_still_returns_a_valid_schedule():
    g = uniform_pipeline_graph(3, f=1, b=1, w=1)
    platform = Platform.homogeneous(3, MacArray(1))
    sol = best_modulo_schedule(g, Hardware.of(platform), DelayRule(), max_size=5)
    assert sol.status == "too large" and "too large to prove" in sol.message
    sched = Schedule("optimal", g, sol.orders(6, g), {})
    assert simulate(sched, platform).stats.cycles_per_step == sol.interval  # the sequential schedule: exact


def test_a_model_too_large_keeps_the_warm_start():
    from models.network.zoo import get_network
    from schedules.methods.layerpipe import layerpipe
    from schedules.methods.optimal import plan_optimal

    net, hw = get_network("mlp"), Hardware.of(PlatformSpec(3).build())
    build = lambda n: layerpipe(net, hw, minibatches=n, batch=8, parallelism="pipeline")  # noqa: E731
    plan = plan_optimal(build(8), net, hw, batch=8, fallback=build, max_size=10)
    sched = plan.schedule(6)
    assert plan.solution.status == "too large" and sched.orders == build(6).orders and sched.name == "optimal"
    assert "layerpipe's own" in sched.info["solver_message"]


def test_refusals_name_the_reason():
    g = uniform_pipeline_graph(2, f=1, b=1, w=1, act_bytes=4)
    hw = Hardware.of(Platform.homogeneous(2, MacArray(1), LinkModel(1, 1.0), overlap_comm=False))
    with pytest.raises(ScheduleError, match="no-overlap"):
        best_modulo_schedule(g, hw, DelayRule())
    hw = Hardware.of(Platform.homogeneous(2, MacArray(1)))
    with pytest.raises(ScheduleError, match="one update per unit"):
        best_modulo_schedule(g, hw, DelayRule(groups={1: 2}))
    with pytest.raises(ScheduleError, match="time limit"):
        best_modulo_schedule(g, hw, DelayRule(), time_limit=float("nan"))
    with pytest.raises(ScheduleError, match="unroll"):
        best_modulo_schedule(g, hw, DelayRule(), unroll=0)


def test_missing_solver_is_a_one_line_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ortools.sat.python", None)
    g = uniform_pipeline_graph(2, f=1, b=1, w=1)
    with pytest.raises(ScheduleError, match=r"pip install -e \"\.\[optimal\]\""):
        best_modulo_schedule(g, Hardware.of(Platform.homogeneous(2, MacArray(1))), DelayRule())


def test_a_coarser_granularity_never_beats_a_finer_one():
    # merging tasks (B = AG1 + AG2 + WG; zero-bubble's B = AG1 + AG2, W = WG) only restricts a schedule:
    # under the same delays the fine graph's optimum is at most zero-bubble's, which is at most PipeDream's
    from models.network.zoo import get_network
    from schedules.registry import plan_optimal_reference

    hw = Hardware.of(PlatformSpec(2, link="none").build())
    got = {}
    for granularity in ("layerpipe", "zerobubble", "pipedream"):
        plan = plan_optimal_reference(get_network("mlp"), hw, batch=8, of="layerpipe2", granularity=granularity,
                                      time_limit=3)
        assert plan.solution.status == "optimal"
        got[granularity] = plan.solution.interval
        kinds = {t.kind.value for t in plan.graph}
        assert kinds == {"layerpipe": {"F", "WG", "AG1", "AG2", "U"}, "zerobubble": {"F", "B", "W", "U"},
                         "pipedream": {"F", "B", "U"}}[granularity]
    assert got["layerpipe"] <= got["zerobubble"] <= got["pipedream"]
    with pytest.raises(ScheduleError, match="--granularity must be one of"):
        plan_optimal_reference(get_network("mlp"), hw, batch=8, granularity="stages")


@pytest.mark.parametrize("argv,message", [
    (["--time-limit", "-1"], "--time-limit must be a positive number"),
    (["--time-limit", "inf"], "--time-limit must be a positive number"),
    (["--unroll", "9"], "--unroll must be at most 8"),
    (["--of", "gpipe"], "--of must name an asynchronous method"),
    (["--no-overlap"], "no-overlap"),
    (["--granularity", "stages"], "invalid choice: 'stages'"),
])
def test_bad_solver_options_exit_2_with_one_line(argv, message, capsys):
    try:
        code = main(["simulate", "mlp", "-s", "optimal", "-p", "2", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def test_the_cli_runs_the_optimal_schedule_and_reports_the_proof(capsys):
    assert main(["simulate", "mlp", "-s", "optimal", "--of", "layerpipe", "-p", "2", "--time-limit", "1",
                 "--link", "none", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    row = out[0] if isinstance(out, list) else out
    info = row["info"]
    assert info["optimal_of"] == "layerpipe" and info["solver_status"] in ("optimal", "gap")
    assert int(info["proven_lower_bound"]) - 1 < row["cycles_per_minibatch"] <= info["interval"]


def test_explain_reports_what_lies_beyond_the_ladder(capsys):
    from models.network.zoo import get_network
    from simulator.explain import explain

    plat = PlatformSpec(2, link="none").build()
    ladder = explain(get_network("mlp"), "layerpipe2", plat, minibatches=None, batch=32, optimal=True,
                     parallelism="pipeline", time_limit="2")
    top = ladder.rungs[-1].cycles_per_minibatch
    b = ladder.optimal
    assert b.proven_bound - 1 < b.cycles_per_minibatch <= min(top, b.interval)
    assert b.planner_factor == top / b.cycles_per_minibatch >= 1
    assert ladder.to_dict()["optimal"]["status"] == b.status
    assert main(["explain", "mlp", "-p", "2", "-s", "layerpipe2", "--link", "none", "--parallelism", "pipeline",
                 "--optimal", "--time-limit", "2"]) == 0
    assert "beyond the ladder: the optimal schedule of layerpipe2's task graph and delays" in capsys.readouterr().out
