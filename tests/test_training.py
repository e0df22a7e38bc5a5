"""Delayed-gradient trainer: compensation modes against independent truths, accuracy, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from models.errors import TrainingError
from models.network.layers import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d
from models.network.spec import chain
from models.network.zoo import mlp
from models.training.data import digits_cnn, load_digits_split, rate_code
from models.training.nn import Net, softmax_cross_entropy
from models.training.optim import SGD, Adam, OptimizerConfig
from models.training.trainer import (
    COMPENSATIONS,
    DelayedTrainer,
    TrainConfig,
    UpdateEMA,
    check_delays,
    ema_beta,
    predict_weights,
    stage_delays,
    train,
    weight_copies,
)
from simulator.cli import main

#: The accuracy tests' network: an MLP with 4 weight layers (64-128-128-64-10).
MLP4 = (64, 128, 128, 64, 10)
#: Delays, in updates, of a 4-processor LayerPipe schedule of MLP4 with one weight layer per
#: stage: S(l) = stages after layer l's stage = (3, 2, 1, 0) (Delay(l) = 2*S(l) = 6, 4, 2, 0 slots).
#: ``test_layerpipe_schedule_gives_these_delays`` checks it against the schedules package.
LAYERPIPE_4P = (3, 2, 1, 0)
#: SGD settings of the accuracy tests (a learning rate at which 3-update staleness is stable).
SGD_TEST = OptimizerConfig("sgd", lr=0.01, momentum=0.9)
EPS = 1e-6


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def batches(data, size, count, seed=0):
    rng = np.random.default_rng(seed)
    idx = [rng.choice(len(data.y_train), size, replace=False) for _ in range(count)]
    return [data.x_train[i] for i in idx], [data.y_train[i] for i in idx]


def loss_at(net, x, y, params) -> float:
    logits, _ = net.forward(x, params)
    return softmax_cross_entropy(logits, y)[0]


def numeric_grad(f, x):
    grad = np.zeros_like(x)
    for i in range(x.size):
        old = x[i]
        x[i] = old + EPS
        plus = f()
        x[i] = old - EPS
        minus = f()
        x[i] = old
        grad[i] = (plus - minus) / (2 * EPS)
    return grad


def run_steps(net, config, xs, ys, seed=0, jitter=0.0):
    """Weights after every step: history[t] = W_t (list of per-layer vectors).

    ``jitter`` moves the initial weights (zero biases included) by random amounts so that no
    ReLU sits exactly at its kink on blank pixels, where finite differences are one-sided.
    """
    rng = np.random.default_rng(seed)
    params = net.init_params(rng)
    for p in params:
        p += jitter * rng.standard_normal(p.shape)
    trainer = DelayedTrainer(net, params, config)
    history = [[p.copy() for p in params]]
    for x, y in zip(xs, ys):
        trainer.step(x, y)
        history.append([p.copy() for p in params])
    return history, trainer


# --------------------------------------------------------------------------- semantics


def small_bn_cnn():
    return chain("bn-cnn", (1, 8, 8), [
        Conv2d(3, kernel=3, padding=1), BatchNorm2d(), MaxPool2d(2),
        Conv2d(4, kernel=3, padding=1, activation="relu"), MaxPool2d(2), Flatten(),
        Linear(8, activation="tanh"), Linear(10),
    ])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("spec", [mlp((64, 16, 16, 12, 10)), small_bn_cnn()], ids=["mlp", "bn-cnn"])
def test_zero_delays_every_mode_is_bit_identical_to_synchronous(digits, spec, optimizer):
    net = Net(spec)
    xs, ys = batches(digits, 16, 25)
    opt = OptimizerConfig(optimizer, weight_decay=1e-4)
    baseline, _ = run_steps(net, TrainConfig(compensation="none", optimizer=opt), xs, ys)
    for mode in COMPENSATIONS:
        history, _ = run_steps(net, TrainConfig(compensation=mode, delays=(0, 0, 0, 0), optimizer=opt), xs, ys)
        for w, w0 in zip(history[-1], baseline[-1]):
            assert np.array_equal(w, w0), mode


@pytest.mark.parametrize("spec", [mlp((64, 12, 10, 8, 10)), digits_cnn(channels=(2, 3), hidden=6)], ids=["mlp", "cnn"])
def test_stash_applies_the_exact_gradient_at_the_stale_mixed_point(digits, spec):
    """Applied gradient (from the weight change of plain SGD) = finite differences of the loss of
    minibatch t at the mixed point {W^k_(t-d_k)}; no stashing does not have this property."""
    net = Net(spec)
    lr = 0.1
    xs, ys = batches(digits, 16, 8, seed=1)
    config = TrainConfig(compensation="stash", delays=LAYERPIPE_4P, optimizer=OptimizerConfig("sgd", lr=lr, momentum=0.0))
    history, _ = run_steps(net, config, xs, ys, jitter=0.05)
    nostash, _ = run_steps(net, replace(config, compensation="nostash"), xs, ys, jitter=0.05)
    for t in (2, 7):  # while the pipeline fills, and with every layer stale
        mixed = [history[max(t - d, 0)][l].copy() for l, d in enumerate(LAYERPIPE_4P)]
        for l in range(net.num_layers):
            applied = (history[t][l] - history[t + 1][l]) / lr
            numeric = numeric_grad(lambda: loss_at(net, xs[t], ys[t], mixed), mixed[l])
            assert np.abs(applied - numeric).max() < 1e-6 * max(1.0, np.abs(numeric).max()), (t, l)
    # negative control at t = 7: without stashing, layer 1's error came back through current weights
    t = 7
    mixed = [nostash[max(t - d, 0)][l].copy() for l, d in enumerate(LAYERPIPE_4P)]
    applied = (nostash[t][0] - nostash[t + 1][0]) / lr
    numeric = numeric_grad(lambda: loss_at(net, xs[t], ys[t], mixed), mixed[0])
    assert np.abs(applied - numeric).max() > 1e-4 * np.abs(numeric).max()


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_ema_reconstruction_is_exact_for_constant_updates(beta):
    rng = np.random.default_rng(0)
    w = [rng.standard_normal(6)]
    step = 0.01 * rng.standard_normal(6)
    ema = UpdateEMA(beta)
    for _ in range(12):
        w.append(w[-1] + step)
        ema.update(w[-1] - w[-2])
    for d in range(16):  # beyond 12 updates the pipeline had only W_0
        assert np.allclose(ema.reconstruct(w[-1], d), w[max(12 - d, 0)], rtol=0, atol=1e-13), d
    # and not for changing updates (a negative control)
    ema.update(10 * step)
    assert not np.allclose(ema.reconstruct(w[-1] + 10 * step, 3), w[-3], rtol=0, atol=1e-6) or beta == 0.0


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_ema_and_prediction_exact_on_the_optimizers_linear_trajectory(name):
    """A constant gradient makes SGD (no momentum) and Adam move on a straight line with
    constant updates: EMA rebuilds the past and prediction finds the future exactly."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(5)
    grad = rng.standard_normal(5)
    opt = OptimizerConfig(name, lr=0.01, momentum=0.0).build(w)
    ema = UpdateEMA(ema_beta(3))
    traj, steps = [w.copy()], [opt.predicted_step()]
    for _ in range(10):
        opt.step(grad)
        ema.update(w - traj[-1])
        traj.append(w.copy())
        steps.append(opt.predicted_step())
    for j in range(1, 8):
        for d in (1, 2, 3):
            assert np.allclose(predict_weights(traj[j], steps[j], d), traj[j + d], rtol=0, atol=1e-13)
    assert np.allclose(ema.reconstruct(traj[-1], 3), traj[-4], rtol=0, atol=1e-13)


def test_ema_mode_rebuilds_one_update_back_exactly_and_longer_delays_approximately(digits):
    net = Net(mlp((64, 16, 16, 12, 10)))
    xs, ys = batches(digits, 16, 30)
    config = TrainConfig(compensation="ema", delays=LAYERPIPE_4P, optimizer=SGD_TEST)
    history, trainer = run_steps(net, config, xs, ys)
    t = trainer.t
    assert trainer.ema[3] is None  # the undelayed layer keeps no average
    rebuilt_1 = trainer.backward_weights(2, None)  # d = 1: beta = 0 keeps exactly the last update
    assert np.allclose(rebuilt_1, history[t - 1][2], rtol=0, atol=1e-14)
    rebuilt_2 = trainer.backward_weights(1, None)  # d = 2: an estimate, much closer than W_t itself
    err_ema = np.abs(rebuilt_2 - history[t - 2][1]).max()
    err_now = np.abs(history[t][1] - history[t - 2][1]).max()
    assert 0 < err_ema < err_now


def test_prediction_forward_uses_the_momentum_extrapolation(digits):
    net = Net(mlp((64, 16, 16, 12, 10)))
    xs, ys = batches(digits, 16, 10)
    config = TrainConfig(compensation="predict", delays=LAYERPIPE_4P, optimizer=SGD_TEST)
    params = net.init_params(np.random.default_rng(0))
    trainer = DelayedTrainer(net, params, config)
    states = []
    for x, y in zip(xs, ys):
        states.append((params[0].copy(), -SGD_TEST.learning_rate * trainer.optimizers[0].velocity.copy()))
        trainer.step(x, y)
    w_then, step_then = states[-3]  # layer 1 (d = 3) is about to run minibatch t = 10 with W_7
    assert np.array_equal(trainer.forward_weights(0), w_then + 3 * step_then)
    assert trainer.backward_weights(0, None) is params[0]


def test_pipemare_warmup_scales_the_learning_rate_of_delayed_layers():
    net = Net(mlp((4, 3, 3, 2)))
    trainer = DelayedTrainer(net, net.init_params(np.random.default_rng(0)),
                             TrainConfig(compensation="nostash", delays=(4, 1, 0), warmup_steps=10))
    assert trainer.lr_scale(0) == pytest.approx(0.25) and trainer.lr_scale(1) == 1.0
    trainer.t = 5
    assert trainer.lr_scale(0) == pytest.approx(0.5)
    trainer.t = 10
    assert trainer.lr_scale(0) == 1.0


def test_optimizers_follow_the_published_formulas():
    w = np.array([1.0, -1.0])
    sgd = SGD(w, lr=0.1, momentum=0.9, weight_decay=0.01)
    sgd.step(np.array([0.5, 0.5]))
    sgd.step(np.array([0.5, 0.5]))
    g1 = np.array([0.5, 0.5]) + 0.01 * np.array([1.0, -1.0])
    w1 = np.array([1.0, -1.0]) - 0.1 * g1
    v2 = 0.9 * g1 + np.array([0.5, 0.5]) + 0.01 * w1
    assert np.allclose(w, w1 - 0.1 * v2)
    w = np.array([1.0])
    adam = Adam(w, lr=0.1)
    adam.step(np.array([2.0]))
    adam.step(np.array([-1.0]))
    m, v = 0.1 * 2.0, 0.001 * 4.0
    m, v = 0.9 * m + 0.1 * -1.0, 0.999 * v + 0.001 * 1.0
    expect = 1.0 - 0.1 * 2.0 / (2.0 + 1e-8) - 0.1 * (m / 0.19) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)
    assert w[0] == pytest.approx(expect, rel=1e-12)


# --------------------------------------------------------------------------- accounting and checks


def test_weight_copies_per_mode():
    d = [3, 2, 1, 0]
    assert weight_copies("stash", d) == [4, 3, 2, 1]
    assert weight_copies("ema", d) == [2, 2, 2, 1]
    assert weight_copies("ema", [9, 5]) == [2, 2]  # does not grow with the delay
    for mode in ("none", "nostash", "predict"):
        assert weight_copies(mode, d) == [1, 1, 1, 1]


def test_delays_helpers():
    assert stage_delays([0, 1, 2, 3]) == list(LAYERPIPE_4P)
    assert stage_delays([0, 0, 1]) == [1, 1, 0]
    for bad in ([1, 0], [1, -1, 0], [1.5, 0, 0], [True, 0, 0]):
        with pytest.raises(TrainingError):
            check_delays(bad, 3)


def test_layerpipe_schedule_gives_these_delays():
    """The hard-coded LAYERPIPE_4P is what the schedules package derives for MLP4 on 4 processors."""
    try:
        from schedules.registry import build_schedule
        from simulator.costs import MacArray
        from simulator.platform import Platform
    except ImportError as exc:  # pragma: no cover - schedules are built by another team
        pytest.skip(f"schedules not available: {exc}")
    net = mlp(MLP4)
    schedule = build_schedule("layerpipe", net, Platform.homogeneous(4, MacArray(256)), minibatches=8,
                              parallelism="pipeline")
    assert schedule.layer_staleness() == list(LAYERPIPE_4P)


def test_bad_configurations_raise_training_errors(digits):
    with pytest.raises(TrainingError):
        TrainConfig(compensation="magic")
    with pytest.raises(TrainingError):
        OptimizerConfig("rmsprop")
    with pytest.raises(TrainingError):
        train(mlp(MLP4), digits, TrainConfig(delays=(1, 0), epochs=1))
    with pytest.raises(TrainingError):
        train(mlp((64, 5)), digits, TrainConfig(epochs=1))  # 5 outputs for 10 classes


def test_training_is_deterministic_and_reports_memory(digits):
    config = TrainConfig(compensation="stash", delays=LAYERPIPE_4P, optimizer=SGD_TEST, epochs=2, seed=3)
    a = train(mlp(MLP4), digits, config).to_dict()
    b = train(mlp(MLP4), digits, config).to_dict()
    assert a == b
    c = train(mlp(MLP4), digits, replace(config, seed=4)).to_dict()
    assert c["final_loss"] != a["final_loss"]
    assert a["weight_copies"] == [4, 3, 2, 1] and a["delays"] == [3, 2, 1, 0]
    assert a["weight_memory"] == sum(n * k for n, k in zip(a["params_per_layer"], [4, 3, 2, 1]))
    assert len(a["curve"]) == 2 and a["steps"] == 2 * 45


def test_an_exploding_finite_loss_is_divergence(digits):
    """Adam at lr 1e10 keeps its loss finite (about 5.8e9 on this MLP) but is no result: diverged."""
    result = train(mlp(MLP4), digits, TrainConfig(epochs=1, optimizer=OptimizerConfig("adam", lr=1e10)))
    assert result.diverged and result.steps < 45


def test_divergence_is_reported_not_raised(digits):
    result = train(mlp(MLP4), digits, TrainConfig(compensation="nostash", delays=(8, 6, 4, 0), epochs=3,
                                                  optimizer=OptimizerConfig("sgd", lr=3.0)))
    assert result.diverged and result.steps < 3 * 45
    assert 0 <= result.test_accuracy <= 1


# --------------------------------------------------------------------------- accuracy on digits


@pytest.fixture(scope="module")
def mlp_runs(digits):
    """MLP4, 20 epochs, seeds 0-2: synchronous, and stash / ema with the LayerPipe 4-processor delays."""
    runs = {}
    for mode in ("none", "stash", "ema"):
        delays = None if mode == "none" else LAYERPIPE_4P
        runs[mode] = [
            train(mlp(MLP4), digits, TrainConfig(compensation=mode, delays=delays, optimizer=SGD_TEST, epochs=20, seed=s))
            for s in range(3)
        ]
    return runs


def test_mlp_reaches_95_percent_without_delay(mlp_runs, digits):
    assert len(digits.y_test) == 360
    for result in mlp_runs["none"]:
        assert result.test_accuracy >= 0.95, result.test_accuracy


def test_small_cnn_reaches_95_percent_without_delay(digits):
    result = train(digits_cnn(), digits, TrainConfig(optimizer=OptimizerConfig("sgd", lr=0.05), epochs=12, seed=0))
    assert result.test_accuracy >= 0.95, result.test_accuracy


def test_stash_and_ema_stay_within_two_points_of_synchronous(mlp_runs):
    mean = {mode: np.mean([r.test_accuracy for r in runs]) for mode, runs in mlp_runs.items()}
    for mode in ("stash", "ema"):
        assert mean[mode] >= mean["none"] - 0.02, mean
    assert mlp_runs["stash"][0].weight_copies == [4, 3, 2, 1]
    assert mlp_runs["ema"][0].weight_copies == [2, 2, 2, 1]


# --------------------------------------------------------------------------- data


def test_digits_split_is_fixed_and_stratified(digits):
    again = load_digits_split()
    assert np.array_equal(digits.y_test, again.y_test) and np.array_equal(digits.x_test, again.x_test)
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_test.shape == (360, 1, 8, 8)
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    counts = np.bincount(digits.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_rate_code_is_bernoulli_with_pixel_probability():
    images = np.array([[0.0, 0.25, 1.0], [0.5, 0.75, 0.1]])
    spikes = rate_code(images, 4000, np.random.default_rng(0))
    assert spikes.shape == (4000, 2, 3) and set(np.unique(spikes)) <= {0.0, 1.0}
    assert np.allclose(spikes.mean(axis=0), images, atol=0.03)
    assert np.array_equal(spikes, rate_code(images, 4000, np.random.default_rng(0)))
    with pytest.raises(TrainingError):
        rate_code(images * 2, 5, np.random.default_rng(0))
    with pytest.raises(TrainingError):
        rate_code(images, 0, np.random.default_rng(0))


# --------------------------------------------------------------------------- command line


def test_cli_train_json(capsys):
    code = main(["train", "mlp:64-32-32-16-10", "--dataset", "digits", "--delays", "3,2,1,0",
                 "--compensation", "ema", "--epochs", "2", "--seed", "1", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["delays"] == [3, 2, 1, 0] and out["weight_copies"] == [2, 2, 2, 1]
    assert 0 <= out["test_accuracy"] <= 1 and out["final_loss"] > 0
    assert [p["epoch"] for p in out["curve"]] == [1, 2]


def test_cli_train_table_and_errors(capsys):
    assert main(["train", "digits-cnn", "--compensation", "none", "--delays", "3,2,1,0", "--epochs", "1",
                 "--optimizer", "adam"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "final loss" in out and "weight copies" in out
    assert "delays          0,0,0,0" in out and "ignores --delays" in out
    assert main(["train", "digits-cnn", "--delays", "2,1,0", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 delays" in err
    with pytest.raises(SystemExit) as exc:
        main(["train", "mlp", "--delays", "2,a"])
    assert exc.value.code == 2
