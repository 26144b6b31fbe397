"""Partition the experts of one layer into exactly `n_groups` groups of similar experts.

Three algorithms from the seeds, all on a similarity matrix [E, E]:
- greedy: repeatedly join the two most similar experts that are still in different groups (seed 004's
  efficient approximation of its graph-partition objective; single linkage).
- hc: agglomerative clustering with average linkage on distance 1 - similarity (HC-SMoE), via scipy.
- spectral: normalised spectral clustering (Ng, Jordan & Weiss) with seeded k-means, via numpy/scipy.
Every function returns exactly `n_groups` non-empty groups, each sorted, groups ordered by first member.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.cluster.hierarchy import cut_tree, linkage
from scipy.cluster.vq import kmeans2
from scipy.spatial.distance import squareform

from evalsuite.errors import InvalidRecipeError

Groups = list[list[int]]


def _as_numpy(sim: torch.Tensor | np.ndarray) -> np.ndarray:
    s = sim.detach().cpu().numpy() if isinstance(sim, torch.Tensor) else np.asarray(sim)
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1]:
        raise ValueError(f"similarity must be square [E, E], got shape {s.shape}")
    return (s + s.T) / 2


def _check(n_experts: int, n_groups: int) -> None:
    if not 1 <= n_groups <= n_experts:
        raise InvalidRecipeError(f"cannot form {n_groups} groups from {n_experts} experts (need 1..{n_experts})")


def _trivial_groups(n_experts: int, n_groups: int) -> Groups | None:
    """Validate the request; the answer when no clustering is needed (all singletons or one group)."""
    _check(n_experts, n_groups)
    if n_groups == n_experts:
        return [[e] for e in range(n_experts)]
    if n_groups == 1:
        return [list(range(n_experts))]
    return None


def _canonical(labels: Sequence[int]) -> Groups:
    groups: dict[int, list[int]] = {}
    for expert, label in enumerate(labels):
        groups.setdefault(int(label), []).append(expert)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def _exactly(groups: Groups, n_groups: int, sim: np.ndarray) -> Groups:
    """Split off the least-fitting member of the largest group until there are `n_groups` groups."""
    groups = [list(g) for g in groups if g]
    while len(groups) < n_groups:
        largest = max(groups, key=len)
        fit = [np.mean([sim[e, o] for o in largest if o != e]) for e in largest]
        outcast = largest[int(np.argmin(fit))]
        largest.remove(outcast)
        groups.append([outcast])
    while len(groups) > n_groups:  # join the two most similar groups (average linkage)
        best, pair = -np.inf, (0, 1)
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                value = sim[np.ix_(groups[i], groups[j])].mean()
                if value > best:
                    best, pair = value, (i, j)
        groups[pair[0]] += groups.pop(pair[1])
    return sorted((sorted(g) for g in groups), key=lambda g: g[0])


def greedy_groups(sim: torch.Tensor | np.ndarray, n_groups: int) -> Groups:
    """Join the most similar pair of experts in different groups until `n_groups` remain."""
    s = _as_numpy(sim)
    n = s.shape[0]
    _check(n, n_groups)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = sorted((-s[i, j], i, j) for i in range(n) for j in range(i + 1, n))
    remaining = n
    for _, i, j in pairs:
        if remaining == n_groups:
            break
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
            remaining -= 1
    return _canonical([find(e) for e in range(n)])


def hierarchical_groups(sim: torch.Tensor | np.ndarray, n_groups: int, *, method: str = "average") -> Groups:
    """Agglomerative clustering (scipy) on distance 1 - similarity, cut at exactly `n_groups`."""
    s = _as_numpy(sim)
    n = s.shape[0]
    trivial = _trivial_groups(n, n_groups)
    if trivial is not None:
        return trivial
    distance = np.clip(1.0 - s, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method=method)
    labels = cut_tree(tree, n_clusters=n_groups).ravel()
    return _exactly(_canonical(labels), n_groups, s)


def spectral_groups(sim: torch.Tensor | np.ndarray, n_groups: int, *, seed: int = 0, restarts: int = 8) -> Groups:
    """Normalised spectral clustering: top eigenvectors of D^-1/2 A D^-1/2, rows normalised, k-means.

    The affinity A is the similarity clipped at 0 with a zero diagonal; k-means is restarted `restarts`
    times from seeded k-means++ starts and the lowest-distortion labelling is kept."""
    s = _as_numpy(sim)
    n = s.shape[0]
    trivial = _trivial_groups(n, n_groups)
    if trivial is not None:
        return trivial
    affinity = np.clip(s, 0.0, None)
    np.fill_diagonal(affinity, 0.0)
    degree = affinity.sum(axis=1) + 1e-12
    inv_sqrt = 1.0 / np.sqrt(degree)
    normalised = affinity * inv_sqrt[:, None] * inv_sqrt[None, :]
    _, vectors = np.linalg.eigh(normalised)
    embedding = vectors[:, -n_groups:]
    embedding = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    best_labels, best_cost = None, np.inf
    for _ in range(restarts):
        centroids, labels = kmeans2(embedding, n_groups, minit="++", seed=rng)
        cost = float(((embedding - centroids[labels]) ** 2).sum())
        if len(set(labels.tolist())) == n_groups and cost < best_cost - 1e-12:
            best_labels, best_cost = labels, cost
        elif best_labels is None:
            best_labels = labels
    return _exactly(_canonical(best_labels), n_groups, s)  # type: ignore[arg-type]


GROUPERS = {"greedy": greedy_groups, "hc": hierarchical_groups, "spectral": spectral_groups}


def group_experts(sim: torch.Tensor | np.ndarray, n_groups: int, *, algorithm: str = "greedy", seed: int = 0) -> Groups:
    """Dispatch on the recipe's `grouping` option."""
    if algorithm == "spectral":
        return spectral_groups(sim, n_groups, seed=seed)
    if algorithm not in GROUPERS:
        raise InvalidRecipeError(f"unknown grouping {algorithm!r}; valid: {', '.join(GROUPERS)}")
    return GROUPERS[algorithm](sim, n_groups)


def partition_objective(sim: torch.Tensor | np.ndarray, groups: Groups) -> float:
    """Seed 004's eq. (4): within-group similarity minus between-group similarity (higher = better)."""
    s = _as_numpy(sim)
    label = np.empty(s.shape[0], dtype=int)
    for g, members in enumerate(groups):
        label[members] = g
    same = label[:, None] == label[None, :]
    off_diag = ~np.eye(s.shape[0], dtype=bool)
    return float(s[same & off_diag].sum() - s[~same].sum())
