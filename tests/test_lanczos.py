"""Lanczos with full reorthogonalisation against numpy.linalg.eigh on explicit Hessians."""

import numpy as np
import pytest

from models.errors import TrainingError
from models.network.zoo import mlp
from models.training.hvp import Objective, hessian, logistic_hessian
from models.training.lanczos import (
    Eigenpairs,
    extreme_eigenpairs,
    iteration_collectives,
    lanczos,
    lanczos_order,
    ritz_pairs,
    shard_bounds,
)
from models.training.nn import Net


def _mlp_hessian(seed=0):
    rng = np.random.default_rng(seed)
    obj = Objective(Net(mlp((5, 6, 4))))
    w = obj.init(rng)
    x, y = rng.standard_normal((30, 5)), rng.integers(0, 4, 30)
    return obj, w, x, y, hessian(obj, w, x, y)


def _aligned(a, b):
    """Eigenvectors agree up to sign."""
    return min(np.abs(a - b).max(), np.abs(a + b).max())


def test_extreme_eigenpairs_of_an_mlp_hessian_match_eigh():
    obj, w, x, y, H = _mlp_hessian()
    vals, vecs = np.linalg.eigh(H)
    k, l = 3, 2
    # the HVP, not the explicit matrix, drives Lanczos; m = 4(k + l) = 20 < n = 58
    eig = extreme_eigenpairs(lambda v: obj.hvp(w, v, x, y), obj.n, k, l, m=obj.n, seed=0)
    assert eig.values.tolist() == sorted(eig.values.tolist())
    assert np.allclose(eig.smallest, vals[:l], atol=1e-9) and np.allclose(eig.largest, vals[-k:], atol=1e-9)
    for i, j in zip(range(k + l), [*range(l), *range(len(vals) - k, len(vals))]):
        assert _aligned(eig.vectors[i], vecs[:, j]) < 1e-6
    assert np.allclose(eig.vectors @ eig.vectors.T, np.eye(k + l), atol=1e-10)


def test_fosi_order_m_4k_finds_the_top_of_a_logistic_hessian():
    rng = np.random.default_rng(1)
    x = rng.random((200, 20))
    y = rng.integers(0, 5, 200)
    w = 0.1 * rng.standard_normal(5 * 20 + 5)
    H = logistic_hessian(x, y, w, 5)
    vals = np.linalg.eigvalsh(H)
    eig = extreme_eigenpairs(lambda v: H @ v, len(H), k=3, seed=0)  # m = 12 iterations only
    assert eig.iterations == lanczos_order(3) == 12
    # the largest Ritz value converges first; the top-3 are close to eigh's
    assert abs(eig.largest[-1] - vals[-1]) < 1e-8 * vals[-1]
    assert np.allclose(eig.largest, vals[-3:], rtol=1e-2)
    # every Ritz value lies inside the spectrum (Cauchy interlacing)
    assert vals[0] - 1e-12 <= eig.values.min() and eig.values.max() <= vals[-1] + 1e-12


def test_k_equals_n_reproduces_the_whole_spectrum():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((25, 25))
    H = A + A.T
    eig = extreme_eigenpairs(lambda v: H @ v, 25, k=25, seed=3)
    assert eig.iterations == 25  # m = 100 capped at n
    assert np.allclose(eig.values, np.linalg.eigvalsh(H), atol=1e-10)
    assert np.allclose(eig.vectors.T @ np.diag(eig.values) @ eig.vectors, H, atol=1e-9)


def test_basis_is_orthonormal_and_tridiagonalises():
    obj, w, x, y, H = _mlp_hessian(4)
    r = lanczos(lambda v: H @ v, len(H), 30, seed=0)
    Q = r.basis
    assert np.abs(Q @ Q.T - np.eye(30)).max() < 1e-12  # full reorthogonalisation keeps it orthonormal
    assert np.allclose(Q @ H @ Q.T, r.tridiagonal(), atol=1e-10)


def test_breakdown_restarts_with_a_fresh_vector():
    H = np.diag([1.0] * 6 + [3.0] * 6)  # two distinct eigenvalues: the Krylov space dies after 2 steps
    r = lanczos(lambda v: H @ v, 12, 12, seed=0)
    assert r.restarts >= 1
    assert np.allclose(r.basis @ r.basis.T, np.eye(12), atol=1e-12)
    eig = ritz_pairs(r, k=12)
    assert np.allclose(eig.values, np.diag(H)[np.argsort(np.diag(H))])


def test_sharded_basis_gives_the_same_eigenpairs_and_divides_memory():
    obj, w, x, y, H = _mlp_hessian(5)
    one = extreme_eigenpairs(lambda v: H @ v, len(H), k=4, seed=7)
    r = lanczos(lambda v: H @ v, len(H), 16, seed=7, shards=4)
    four = ritz_pairs(r, k=4)
    assert np.allclose(one.values, four.values, atol=1e-12)
    assert max(_aligned(a, b) for a, b in zip(one.vectors, four.vectors)) < 1e-10
    n = len(H)
    assert sum(r.basis_words_per_shard) == 16 * n
    assert max(r.basis_words_per_shard) == 16 * -(-n // 4)  # m * ceil(n / P) per device
    # the collectives the cost model charges: 5 per iteration, coefficient all-reduces of j + 1 words
    ops = [(c.op, c.words) for c in r.collectives]
    assert len(ops) == 5 * 16 and ops[5:10] == [("allgather", n), ("reduce_scatter", n), ("allreduce", 2),
                                                ("allreduce", 2), ("allreduce", 1)]
    assert iteration_collectives(0, 7, data_parallel_hvp=False)[1].op == "allreduce"


def test_shard_bounds_and_eigenpairs_accessors():
    assert shard_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    e = Eigenpairs(np.array([-2.0, 1.0, 4.0]), np.eye(3), k=2, l=1)
    assert e.condition_ratio == 4.0 and e.words == 9 and e.smallest.tolist() == [-2.0]
    empty = extreme_eigenpairs(lambda v: v, 5, k=0)
    assert empty.vectors.shape == (0, 5)


@pytest.mark.parametrize("kwargs", [dict(k=3, m=2), dict(k=-1), dict(k=2, l=-1)])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(TrainingError):
        extreme_eigenpairs(lambda v: v, 10, **kwargs)
