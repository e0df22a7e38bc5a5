"""Lanczos with full reorthogonalisation: the extreme eigenpairs of a Hessian from HVPs (FOSI's ESE).

FOSI's extreme-spectrum estimation (REFERENCE "FOSI"): run ``m = 4(k + l)`` Lanczos
iterations in float64 from a random unit vector, reorthogonalising every new vector against
the whole basis, eigen-decompose the m x m tridiagonal matrix, and keep the k largest and
the l smallest Ritz pairs. Ritz values come back in FOSI's order: the l smallest (ascending),
then the k largest (ascending), so ``values[l]`` is the k-th largest and ``values[-1]`` the
largest.

Iteration j (0-based), with the basis rows q_0..q_j:

1. ``w = H q_j`` (one Hessian-vector product);
2. classical Gram-Schmidt twice ("CGS2"): ``c = Q w; w -= Q^T c`` and once more. ``alpha_j``
   is the first pass's ``c[j]`` (= q_j . H q_j); the other coefficients vanish in exact
   arithmetic and remove the rounding that makes plain Lanczos lose orthogonality;
3. ``beta_j = |w|``, ``q_{j+1} = w / beta_j``. If beta_j is tiny the Krylov space is invariant:
   the next vector is a fresh random one orthogonalised against the basis and beta_j = 0
   (the tridiagonal matrix splits into blocks, which the eigen-solve handles).

``shards = P`` runs the same algorithm with the basis split by parameter index over P
"devices" (DHO2, REFERENCE "DHO2"): every dot product is a sum of per-shard partial dot
products (an all-reduce of the coefficient vector), every update acts shard by shard, and
only the current vector is gathered whole for the HVP. :func:`iteration_collectives` lists
the collectives of one iteration; both this implementation (``LanczosResult.collectives``)
and the cost model of ``simulator.studies.dho2`` use it, so the model charges what the algorithm does.

>>> H = np.diag([5.0, 3.0, 1.0, -2.0])
>>> eig = extreme_eigenpairs(lambda v: H @ v, 4, k=2, l=1, seed=0)
>>> np.round(eig.values, 8).tolist(), np.round(eig.largest, 8).tolist()
([-2.0, 3.0, 5.0], [3.0, 5.0])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import eigh_tridiagonal

from models.errors import TrainingError

Array = np.ndarray
MatVec = Callable[[Array], Array]


def lanczos_order(k: int, l: int = 0) -> int:
    """FOSI's number of Lanczos iterations, ``m = 4 (k + l)``.

    >>> lanczos_order(10), lanczos_order(5, 5)
    (40, 40)
    """
    return 4 * (k + l)


def shard_bounds(n: int, shards: int) -> list[tuple[int, int]]:
    """Contiguous index ranges of ``shards`` near-equal shards of an n-vector (larger ones first).

    >>> shard_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    if shards < 1:
        raise TrainingError(f"need at least one shard, got {shards}")
    sizes = [n // shards + (1 if i < n % shards else 0) for i in range(shards)]
    ends = np.cumsum(sizes).tolist()
    return [(e - s, e) for s, e in zip(sizes, ends)]


@dataclass(frozen=True)
class Collective:
    """One collective operation of a sharded Lanczos iteration: ``op`` over ``words`` values.

    ``op`` is ``allgather`` (rebuild the full current vector for the HVP), ``reduce_scatter``
    (sum the per-device partial HVPs and keep each device's shard), or ``allreduce`` (sum the
    per-shard partial dot products).
    """

    op: str
    words: int
    why: str


def iteration_collectives(j: int, n: int, data_parallel_hvp: bool = True) -> list[Collective]:
    """Collectives of Lanczos iteration ``j`` (0-based) on a sharded basis of vectors of length n.

    >>> [(c.op, c.words) for c in iteration_collectives(2, 100)]
    [('allgather', 100), ('reduce_scatter', 100), ('allreduce', 3), ('allreduce', 3), ('allreduce', 1)]
    """
    out = [Collective("allgather", n, "gather q_j for the HVP")]
    if data_parallel_hvp:
        out.append(Collective("reduce_scatter", n, "sum the partial HVPs, keep the shard"))
    out += [Collective("allreduce", j + 1, "Gram-Schmidt pass 1: Q.w (gives alpha_j)"),
            Collective("allreduce", j + 1, "Gram-Schmidt pass 2: Q.w"),
            Collective("allreduce", 1, "beta_j = |w|")]
    return out


@dataclass
class LanczosResult:
    """Tridiagonal coefficients and the basis (rows, one array per shard)."""

    alphas: Array
    betas: Array  # beta_j couples q_j and q_{j+1}; length iterations - 1
    shards: list[Array]  # shard s holds basis[:, lo_s:hi_s], shape (iterations, hi_s - lo_s)
    bounds: list[tuple[int, int]]
    matvecs: int
    restarts: int = 0
    collectives: list[Collective] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.alphas)

    @property
    def basis(self) -> Array:
        """The whole basis (iterations x n), assembled from the shards."""
        return np.hstack(self.shards)

    @property
    def basis_words_per_shard(self) -> list[int]:
        """Stored basis values per device: m * n / P (the memory DHO2 divides by P)."""
        return [int(s.size) for s in self.shards]

    def tridiagonal(self) -> Array:
        T = np.diag(self.alphas)
        if len(self.betas):
            T += np.diag(self.betas, 1) + np.diag(self.betas, -1)
        return T


def _dot(shards: list[Array], w: list[Array]) -> Array:
    # every device multiplies its shard; the sum over devices is the all-reduce
    return sum(q @ x for q, x in zip(shards, w))


def lanczos(matvec: MatVec, n: int, m: int, *, seed: int | np.random.Generator = 0, v0: Array | None = None,
            shards: int = 1, breakdown_tol: float = 1e-10) -> LanczosResult:
    """``m`` Lanczos iterations (capped at n) with full reorthogonalisation; see the module docstring.

    >>> H = np.diag([4.0, 2.0, 1.0])
    >>> r = lanczos(lambda v: H @ v, 3, 3, seed=0)
    >>> bool(np.allclose(r.basis @ r.basis.T, np.eye(3))), bool(np.allclose(r.basis @ H @ r.basis.T, r.tridiagonal()))
    (True, True)
    """
    if n < 1 or m < 1:
        raise TrainingError(f"Lanczos needs n >= 1 and m >= 1, got n={n}, m={m}")
    m = min(m, n)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    bounds = shard_bounds(n, shards)
    v = rng.standard_normal(n) if v0 is None else np.asarray(v0, dtype=np.float64).copy()
    if v.shape != (n,) or not np.any(v):
        raise TrainingError("the Lanczos start vector must be a non-zero vector of length n")
    v /= np.linalg.norm(v)
    Q = [np.zeros((m, hi - lo)) for lo, hi in bounds]
    alphas, betas = np.zeros(m), np.zeros(max(m - 1, 0))
    collectives: list[Collective] = []
    restarts = 0
    scale = 0.0  # largest |alpha| or beta so far: the breakdown test is relative to it
    for s, (lo, hi) in enumerate(bounds):
        Q[s][0] = v[lo:hi]
    for j in range(m):
        collectives += iteration_collectives(j, n)
        q = np.concatenate([Qs[j] for Qs in Q])  # all-gather of q_j
        hq = np.asarray(matvec(q), dtype=np.float64)
        w = [hq[lo:hi].copy() for lo, hi in bounds]  # reduce-scatter: each device keeps its shard
        basis = [Qs[:j + 1] for Qs in Q]
        c = _dot(basis, w)
        alphas[j] = c[j]
        for s in range(len(w)):
            w[s] -= c @ basis[s]
        c = _dot(basis, w)  # second pass (full reorthogonalisation)
        for s in range(len(w)):
            w[s] -= c @ basis[s]
        beta = float(np.sqrt(sum(float(x @ x) for x in w)))
        scale = max(scale, abs(alphas[j]), beta)
        if j == m - 1:
            break
        if beta <= breakdown_tol * max(scale, 1.0):
            # invariant subspace: continue from a random vector orthogonal to the basis
            restarts += 1
            r = rng.standard_normal(n)
            w = [r[lo:hi] for lo, hi in bounds]
            for _ in range(2):
                c = _dot(basis, w)
                for s in range(len(w)):
                    w[s] -= c @ basis[s]
            norm = float(np.sqrt(sum(float(x @ x) for x in w)))
            betas[j] = 0.0
            for s in range(len(w)):
                Q[s][j + 1] = w[s] / norm
        else:
            betas[j] = beta
            for s in range(len(w)):
                Q[s][j + 1] = w[s] / beta
    return LanczosResult(alphas, betas, Q, bounds, matvecs=m, restarts=restarts, collectives=collectives)


@dataclass(frozen=True)
class Eigenpairs:
    """Ritz values and unit Ritz vectors (rows): the l smallest ascending, then the k largest ascending.

    >>> e = Eigenpairs(np.array([-1.0, 2.0, 3.0]), np.eye(3), k=2, l=1)
    >>> e.largest.tolist(), e.smallest.tolist(), e.condition_ratio
    ([2.0, 3.0], [-1.0], 1.5)
    """

    values: Array
    vectors: Array  # (k + l, n)
    k: int
    l: int = 0
    iterations: int = 0

    @property
    def largest(self) -> Array:
        return self.values[self.l:]

    @property
    def smallest(self) -> Array:
        return self.values[:self.l]

    @property
    def condition_ratio(self) -> float:
        """|lambda_1| / |lambda_k|: the largest over the k-th largest (FOSI's scaling of the base step)."""
        if self.k == 0:
            return 1.0
        top = self.largest
        return float(abs(top[-1]) / max(abs(top[0]), 1e-300))

    @property
    def words(self) -> int:
        """Stored values of the eigenvectors (k + l) * n."""
        return int(self.vectors.size)


def ritz_pairs(result: LanczosResult, k: int, l: int = 0) -> Eigenpairs:
    """Eigen-solve the tridiagonal matrix and keep the k largest and l smallest Ritz pairs.

    The Ritz vectors are ``Y^T Q`` computed shard by shard (each device forms its part).
    """
    m = result.iterations
    if k < 0 or l < 0 or k + l > m:
        raise TrainingError(f"cannot keep k={k} largest and l={l} smallest of {m} Ritz pairs")
    theta, Y = eigh_tridiagonal(result.alphas, result.betas) if m > 1 else (result.alphas.copy(), np.ones((1, 1)))
    # eigh_tridiagonal sorts ascending: the l smallest are the first, the k largest the last
    keep = list(range(l)) + list(range(m - k, m))
    coeff = Y[:, keep].T  # (k + l, m)
    vectors = np.hstack([coeff @ Qs for Qs in result.shards])
    return Eigenpairs(theta[keep].copy(), vectors, k, l, m)


def extreme_eigenpairs(matvec: MatVec, n: int, k: int, l: int = 0, m: int | None = None, *,
                       seed: int | np.random.Generator = 0, shards: int = 1) -> Eigenpairs:
    """The k largest and l smallest eigenpairs from ``m = 4(k + l)`` (capped at n) Lanczos iterations.

    >>> A = np.diag(np.r_[np.linspace(0.0, 1.0, 200), 10.0, 20.0])   # two outliers, like a Hessian
    >>> e = extreme_eigenpairs(lambda v: A @ v, 202, k=2, seed=1)
    >>> np.round(e.largest, 6).tolist()
    [10.0, 20.0]
    """
    if k < 0 or l < 0:
        raise TrainingError(f"k and l must be >= 0, got k={k}, l={l}")
    if k + l == 0:
        return Eigenpairs(np.zeros(0), np.zeros((0, n)), 0, 0, 0)
    m = lanczos_order(k, l) if m is None else m
    if m < k + l:
        raise TrainingError(f"m = {m} Lanczos iterations cannot give k + l = {k + l} eigenpairs")
    return ritz_pairs(lanczos(matvec, n, m, seed=seed, shards=shards), k, l)


__all__ = [
    "lanczos_order", "shard_bounds", "Collective", "iteration_collectives", "LanczosResult", "lanczos",
    "Eigenpairs", "ritz_pairs", "extreme_eigenpairs",
]
