"""The two ways the engine moves time, over one :class:`~simulator.engine.state.EngineState`.

* :func:`run_processes`: when some transfer costs link cycles, every processor and every
  transfer is a SimPy process and every directed link channel a ``simpy.Resource``;
* :func:`run_callbacks`: when no transfer can cost a cycle (a free link, or nothing but
  zero-byte tensors), nothing ever competes for a link, so a processor is driven by a
  callback on the timeout of its running task and a transfer is delivered at once. The
  times are the same as with processes (no decision depends on the order of events at one
  instant), at a fraction of the cost.

Both walk each processor's orders the same way: take the inputs of the next action
(:meth:`EngineState.acquire`), wait for the first missing one, run the task for its cycles,
and hand its end to :meth:`EngineState.finish`. Only the public SimPy API is used.
"""

from __future__ import annotations

from collections import deque

import simpy

from simulator.engine.state import LOCAL, EngineState, Send


def run_callbacks(state: EngineState, env: simpy.Environment) -> list[int]:
    """Run every processor to the end of its orders or to a wait that never ends; returns
    each processor's position in its orders (its length when it finished)."""
    P, period = state.P, state.period
    orders, plans, make_plan = state.orders, state.plans, state.plan
    waiters, acquire, finish, start_task = state.waiters, state.acquire, state.finish, state.start
    idx = [0] * P
    needpos = [0] * P
    current: list = [None] * P
    ready: deque[int] = deque()
    state.wake = ready.append

    def advance(p: int) -> None:
        acts = orders[p]
        n = len(acts)
        i = idx[p]
        while i < n:
            kind, layer, unit = acts[i]
            pl = plans.get((kind, layer, unit % period)) or make_plan(kind, layer, unit % period)
            if pl.needs:
                j = acquire(p, pl, unit, needpos[p])
                if j >= 0:
                    idx[p], needpos[p] = i, j
                    waiters[state.waiting_on[p]] = p
                    return
                needpos[p] = 0
            now = env.now
            if pl.starts:
                start_task(pl, unit, p, now)
            if pl.cost:
                idx[p] = i
                current[p] = (pl, unit, now)
                env.timeout(pl.cost).callbacks.append(done[p])
                return
            finish(pl, unit, p, now, now)
            i += 1
        idx[p] = n

    def on_done(p: int):
        def done_p(_event) -> None:
            pl, unit, start = current[p]
            finish(pl, unit, p, start, env.now)
            idx[p] += 1
            advance(p)
            while ready:
                advance(ready.popleft())
        return done_p

    done = [on_done(p) for p in range(P)]
    for p in range(P):
        advance(p)
    while ready:
        advance(ready.popleft())
    env.run()
    return idx


def run_processes(state: EngineState, env: simpy.Environment) -> list[int]:
    """Run with one SimPy process per processor and per transfer; returns each processor's
    position in its orders (its length when it finished)."""
    P, period = state.P, state.period
    plans, make_plan = state.plans, state.plan
    overlap = state.platform.overlap_comm
    links: dict[tuple[int, int], simpy.Resource] = {}
    position = [0] * P

    def wake(event: simpy.Event) -> None:
        event.succeed()

    state.wake = wake

    def processor(p: int):
        for i, (kind, layer, unit) in enumerate(state.orders[p]):
            position[p] = i
            pl = plans.get((kind, layer, unit % period)) or make_plan(kind, layer, unit % period)
            j = state.acquire(p, pl, unit, 0) if pl.needs else -1
            while j >= 0:
                key = state.waiting_on[p]
                ev = state.waiters.get(key)
                if ev is None:
                    ev = state.waiters[key] = env.event()
                if pl.needs[j][0] != LOCAL and key in state.in_flight:
                    state.transit_start(p, env.now)
                yield ev
                if state.transit_since[p] is not None:
                    state.transit_end(p, env.now)
                j = state.acquire(p, pl, unit, j)
            start = env.now
            if pl.starts:
                state.start(pl, unit, p, start)
            if pl.cost:
                yield env.timeout(pl.cost)
            sends = state.finish(pl, unit, p, start, env.now)
            if sends and not overlap:
                # the processor sends them one after another and waits for the last
                chain = sends[0].last_ev
                for s in sends:
                    s.last_ev = chain
                    yield from transfer(s)
                    chain = s.last_ev
                if state.elog is not None:
                    state.prev_ev[p] = chain
            elif sends:
                for s in sends:
                    env.process(transfer(s))
        position[p] = len(state.orders[p])

    def transfer(s: Send):
        key = s.key
        state.in_flight.add(key)
        if state.waiting_on[s.dst] == key and state.transit_since[s.dst] is None:
            state.transit_start(s.dst, env.now)
        if s.cycles:
            for h, hop in enumerate(state.platform.route(s.src, s.dst)):
                res = links.get(hop)
                if res is None:
                    res = links[hop] = simpy.Resource(env, capacity=1)
                with res.request() as req:
                    yield req
                    t0 = env.now
                    yield env.timeout(s.cycles)
                    state.stats.link_busy[hop] = state.stats.link_busy.get(hop, 0) + s.cycles
                    state.hop_done(s, hop, h, t0, env.now)
                    if state.sink is not None:
                        state.sink.transfer(state.sink_key(s), hop, s.nbytes, t0, env.now, s.unit)
        state.in_flight.discard(key)
        state.deliver(s)

    for p in range(P):
        env.process(processor(p))
    env.run()
    return position


__all__ = ["run_callbacks", "run_processes"]
