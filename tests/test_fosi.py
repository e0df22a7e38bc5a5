"""FOSI's update, its refresh schedule and staleness, the K-FAC baseline, and steps-to-target runs."""

import numpy as np
import pytest

from models.errors import TrainingError
from models.network.zoo import mlp
from models.training.data import load_digits_split
from models.training.fosi import (
    DeltaOptimizer,
    FirstOrder,
    Fosi,
    FosiConfig,
    FosiUpdate,
    RunConfig,
    Target,
    fosi_factory,
    run_to_target,
)
from models.training.hvp import Objective
from models.training.kfac import Kfac, KfacConfig
from models.training.lanczos import Eigenpairs, extreme_eigenpairs
from models.training.nn import Net
from models.training.optim import OptimizerConfig


class Quadratic:
    """f(w) = 1/2 (w - w*)^T H (w - w*): the Objective interface FOSI needs (loss_grad, hvp, n)."""

    def __init__(self, H, w_star):
        self.H, self.w_star, self.n = H, w_star, len(w_star)

    def loss_grad(self, w, x, y):
        d = w - self.w_star
        return 0.5 * float(d @ self.H @ d), self.H @ d

    def hvp(self, w, v, x, y):
        return self.H @ v


def _spd(n, seed=0, cond=1e3):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return Q @ np.diag(np.geomspace(1.0, cond, n)) @ Q.T


@pytest.mark.parametrize("base", ["sgd", "heavyball", "adam"])
def test_k_equals_n_alpha_one_no_momentum_lands_on_the_minimiser(base):
    n = 12
    H = _spd(n)
    w_star = np.random.default_rng(1).standard_normal(n)
    obj = Quadratic(H, w_star)
    w = np.zeros(n)
    cfg = FosiConfig(base=base, k=n, alpha=1.0, newton_momentum=False, warmup=1, refresh=10)  # before update 1
    fosi = Fosi(obj, w, cfg, None, None)  # Lanczos runs on the HVPs of the quadratic
    fosi.step(None, None)
    assert fosi.hvps == n  # m = 4n capped at n
    assert np.allclose(w, w_star, atol=1e-8)


def test_no_eigenvectors_is_bitwise_the_base_optimizer():
    data = load_digits_split()
    obj = Objective(Net(mlp((64, 10))))
    rng = np.random.default_rng(0)
    w0 = obj.init(rng)
    x, y = obj.inputs(data.x_train[:64]), data.y_train[:64]
    for base, opt in [("heavyball", OptimizerConfig("sgd", lr=0.1, momentum=0.9)),
                      ("sgd", OptimizerConfig("sgd", lr=0.1, momentum=0.0)),
                      ("adam", OptimizerConfig("adam", lr=0.01))]:
        lr = opt.learning_rate
        w_base, w_k0, w_warm = w0.copy(), w0.copy(), w0.copy()
        rules = [FirstOrder(obj, w_base, opt),
                 Fosi(obj, w_k0, FosiConfig(base=base, lr=lr, k=0), x, y),
                 Fosi(obj, w_warm, FosiConfig(base=base, lr=lr, k=3, warmup=50), x, y)]  # before its first refresh
        for step in range(20):
            xb, yb = x[(step * 8) % 64:(step * 8) % 64 + 8], y[(step * 8) % 64:(step * 8) % 64 + 8]
            for r in rules:
                r.step(xb, yb)
        assert np.array_equal(w_base, w_k0) and np.array_equal(w_base, w_warm), base
        assert rules[2].refreshes == 0


def test_update_splits_the_gradient_and_keeps_the_base_step_off_the_subspace():
    n = 6
    H = np.diag([50.0, 20.0, 3.0, 2.0, 1.0, 0.5])
    eig = extreme_eigenpairs(lambda v: H @ v, n, k=2, seed=0)
    u = FosiUpdate(n, FosiConfig(base="adam", lr=0.1, k=2, alpha=0.5, newton_momentum=False))
    u.set_curvature(eig)
    g = np.arange(1.0, 7.0)
    step = u.delta(g)
    V = eig.vectors
    # Newton part: -alpha * lambda^-1 g in the top-2 eigen-directions; base part orthogonal to them
    assert np.allclose(V @ step, -0.5 * (V @ g) / eig.values, atol=1e-10)
    assert u.scale == 1.0  # Adam: clip_max 1
    hb = FosiUpdate(n, FosiConfig(base="heavyball", k=2))
    hb.set_curvature(eig)
    assert hb.scale == pytest.approx(min(50.0 / 20.0, 3.0))


def test_fosi_beats_its_base_on_an_ill_conditioned_quadratic():
    # four large eigenvalues limit plain GD's rate to < 2/100; FOSI takes them out with a Newton
    # step and may raise the base rate by lambda_1 / lambda_k (clipped at 3)
    n = 40
    H = np.diag(np.r_[np.geomspace(100.0, 20.0, 4), np.linspace(1.0, 0.5, n - 4)])
    w_star = np.ones(n)

    def run(base, k, lr, alpha):
        obj = Quadratic(H, w_star)
        w = np.zeros(n)
        rule = Fosi(obj, w, FosiConfig(base=base, lr=lr, k=k, alpha=alpha, warmup=1, refresh=1000), None, None)
        for _ in range(60):
            rule.step(None, None)
        return obj.loss_grad(w, None, None)[0]

    assert run("sgd", 4, 0.019, 1.0) < 0.1 * run("sgd", 0, 0.019, 1.0)
    assert run("heavyball", 4, 0.009, 0.02) < 0.3 * run("heavyball", 0, 0.009, 0.02)


def test_trajectory_worked_by_hand_with_the_library_refresh_timing():
    """hsivan/fosi's rule, by hand, on f(w) = w^T H w / 2 with H = [[3, 1], [1, 3]] (eigenvalues 4
    along (1, 1)/sqrt 2 and 2 along (1, -1)/sqrt 2), w0 = (1, 0); fosi_sgd (g1 unsmoothed), lr 0.1,
    alpha 0.5, k = 1 (so c = 1), T = 3, W = 2: the refresh runs before update t when t + 1 >= W and
    (t + 1 - W) mod T = 0, i.e. before updates 1, 4, 7.

    t = 0, no eigenvectors: g = (3, 1), w1 = w0 - 0.1 g = (0.7, -0.1).
    t = 1, refreshed: g = (2.0, 0.4), g1 = (1.2, 1.2), g2 = (0.8, -0.8); Newton part g1 / 4 =
    (0.3, 0.3); w2 = w1 - 0.1 g2 - 0.5 (0.3, 0.3) = (0.47, -0.17).
    t = 2: g = (1.24, -0.04), g1 = (0.6, 0.6), g2 = (0.64, -0.64); w3 = (0.331, -0.181).
    (Refreshing one step later, as this module once did, makes t = 1 a plain SGD step: (0.5, -0.14).)
    """
    obj = Quadratic(np.array([[3.0, 1.0], [1.0, 3.0]]), np.zeros(2))
    w = np.array([1.0, 0.0])
    rule = Fosi(obj, w, FosiConfig(base="sgd", lr=0.1, alpha=0.5, k=1, refresh=3, warmup=2), None, None)
    path = []
    for _ in range(3):
        rule.step(None, None)
        path.append(w.copy())
    assert np.allclose(path, [[0.7, -0.1], [0.47, -0.17], [0.331, -0.181]], atol=1e-12, rtol=0)
    for _ in range(5):
        rule.step(None, None)
    assert [t for t, _ in rule.eigenvalue_log] == [1, 4, 7]
    assert np.allclose(rule.eigenvalue_log[0][1], [4.0])


def test_staleness_delays_installation_and_stretches_the_period():
    n = 8
    obj = Quadratic(_spd(n, cond=10.0), np.zeros(n))
    w = np.ones(n)
    rule = Fosi(obj, w, FosiConfig(base="sgd", lr=0.01, k=2, warmup=2, refresh=3, curvature_delay=5), None, None)
    for _ in range(20):
        rule.step(None, None)
    # refreshes start before the 2nd update (step 1), then every max(T, s) = 5 steps: 1, 6, 11, 16;
    # each is used from 5 steps later
    assert [t for t, _ in rule.eigenvalue_log] == [1, 6, 11, 16]
    assert rule.staleness[0] == 5 and max(rule.staleness) == 9 and min(rule.staleness) == 5
    st = rule.stats()
    assert st["max_staleness"] == 9 and st["refreshes"] == 4 and st["hvps"] == 4 * 8


def test_delta_optimizer_and_config_validation():
    d = DeltaOptimizer(OptimizerConfig("adam", lr=0.1), 3)
    assert np.allclose(d.delta(np.array([1.0, -2.0, 0.0])), [-0.1, 0.1, 0.0], atol=1e-6)
    with pytest.raises(TrainingError):
        DeltaOptimizer(OptimizerConfig("sgd", weight_decay=0.1), 3)
    for bad in (dict(base="lbfgs"), dict(k=-1), dict(refresh=0), dict(k=4, m=3), dict(alpha=-1.0)):
        with pytest.raises(TrainingError):
            FosiConfig(**bad)
    with pytest.raises(TrainingError):
        FosiUpdate(3, FosiConfig(k=1)).set_curvature(Eigenpairs(np.ones(1), np.ones((1, 4)), k=1))


def test_kfac_preconditioner_is_the_inverse_kronecker_factor():
    obj = Objective(Net(mlp((3, 2))))
    rng = np.random.default_rng(0)
    w = obj.init(rng)
    x, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    k = Kfac(obj, w, KfacConfig(damping=1e-2, kl_clip=None))
    k.step(x, y)
    A_inv, G_inv = k.A_inv[0], k.G_inv[0]
    g = np.random.default_rng(1).standard_normal(obj.n)
    # vec(G^-1 M A^-1) = (G^-1 (x) A^-1) vec(M) for the row-major [W | b] matrix
    M = np.hstack([g[:6].reshape(2, 3), g[6:][:, None]])
    P = np.kron(G_inv, A_inv.T) @ M.ravel()
    out = k.precondition(g)
    assert np.allclose(out[:6], P.reshape(2, 4)[:, :3].ravel()) and np.allclose(out[6:], P.reshape(2, 4)[:, 3])
    assert k.factor_words() == [16, 4] and k.refreshes == 1


def test_steps_to_target_on_digits_are_deterministic_and_second_order_helps_logistic_regression():
    data = load_digits_split()
    obj = Objective(Net(mlp((64, 10))))
    target = Target("train_loss", 0.3)
    cfg = RunConfig(batch=128, max_steps=400, eval_every=5, seed=0)
    sgd = lambda o, w: FirstOrder(o, w, OptimizerConfig("sgd", lr=0.1))
    a = run_to_target(obj, data, sgd, target, cfg, "sgd")
    b = run_to_target(obj, data, sgd, target, cfg, "sgd")
    assert a.steps_to_target == b.steps_to_target is not None and a.curve == b.curve
    kfac = run_to_target(obj, data, lambda o, w: Kfac(o, w, KfacConfig(lr=0.1)), target, cfg, "kfac")
    fosi = run_to_target(obj, data, fosi_factory(FosiConfig(lr=0.1, k=5, refresh=50, warmup=5), data, 64),
                         target, cfg, "fosi")
    assert kfac.steps_to_target < a.steps_to_target and fosi.steps_to_target < a.steps_to_target
    assert fosi.stats["refreshes"] >= 1 and fosi.stats["hvps"] == 20 * fosi.stats["refreshes"]


def test_target_validation():
    with pytest.raises(TrainingError):
        Target("accuracy", 0.9)
    # targets no run can reach are refused, not run to the step budget
    for metric, value in (("train_loss", 0.0), ("train_loss", -1.0), ("train_loss", float("nan")),
                          ("test_accuracy", 0.0), ("test_accuracy", 1.01), ("test_accuracy", float("inf"))):
        with pytest.raises(TrainingError):
            Target(metric, value)
    assert Target("test_accuracy", 1.0).reached(9.9, 1.0)
    with pytest.raises(TrainingError):
        RunConfig(batch=0)


def test_released_dho2_update_follows_its_equations_step_for_step():
    """The released DHO2 rule (ShunxianGu/DHO2, DHO2_ADMM_v2.py) written out by hand on a least-squares
    problem, whose Hessian X~^T X~ / N is known in closed form (eigenpairs by numpy.linalg.eigh, not
    Lanczos): G = g + pi; g1 = V^T V G; velocity = 0.1 g1 + 0.9 velocity; d1 = V^T (|1/(lambda + s)| V velocity);
    u2 = Adam(G - g1), projected off V; w += u2 - alpha d1 (c = 1 for Adam); at each period's end
    pi += sigma (w - cache), w += pi / sigma; a refresh (and cache = w) every T steps from step 0."""
    rng = np.random.default_rng(7)
    obj = Objective(Net(mlp((4, 1)), loss="mse"))
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    w0 = rng.standard_normal(obj.n)
    sigma, alpha, lr, T, k, steps = 0.3, 0.05, 0.01, 3, 2, 10
    cfg = FosiConfig(base="adam", lr=lr, alpha=alpha, k=k, m=obj.n, refresh=T, warmup=1, dual=sigma,
                     eig_shift=sigma)
    rule = Fosi(obj, w0.copy(), cfg, x, y)
    for _ in range(steps):
        rule.step(x, y)

    xt = np.hstack([x, np.ones((16, 1))])
    lam, vec = np.linalg.eigh(xt.T @ xt / 16)
    V, lam = vec[:, -k:].T, lam[-k:]  # the k largest
    w, pi, vel, m1, m2, cache = w0.copy(), np.zeros(obj.n), np.zeros(obj.n), np.zeros(obj.n), np.zeros(obj.n), None
    for t in range(steps):
        if t % T == 0:
            if cache is not None:
                pi += sigma * (w - cache)
                w = w + pi / sigma
            cache = w.copy()
        G = obj.loss_grad(w, x, y)[1] + pi
        g1 = V.T @ (V @ G)
        vel = 0.1 * g1 + 0.9 * vel
        d1 = V.T @ (np.abs(1.0 / (lam + sigma)) * (V @ vel))
        g2 = G - g1
        m1, m2 = 0.9 * m1 + 0.1 * g2, 0.999 * m2 + 0.001 * g2 * g2
        u2 = -lr * (m1 / (1 - 0.9 ** (t + 1))) / (np.sqrt(m2 / (1 - 0.999 ** (t + 1))) + 1e-8)
        u2 -= V.T @ (V @ u2)
        w = w + u2 - alpha * d1
    assert np.allclose(rule.w, w, rtol=0, atol=1e-10)
    assert rule.refreshes == 4  # steps 0, 3, 6, 9


def test_released_dho2_settings_are_checked():
    with pytest.raises(TrainingError, match="dual penalty"):
        FosiConfig(dual=0.0)
    with pytest.raises(TrainingError, match="no curvature delay"):
        FosiConfig(dual=5e-9, curvature_delay=8)
