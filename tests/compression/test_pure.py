"""Criteria, selection, similarity, grouping, merge plans and profiles on hand-built data with known answers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evalsuite.compression import criteria, grouping, merging, profile, selection, similarity
from evalsuite.errors import InvalidRecipeError


def _stats(**fields: list[list[float]]) -> SimpleNamespace:
    return SimpleNamespace(**{k: torch.tensor(v, dtype=torch.float64) for k, v in fields.items()})


# One layer, 4 experts. Expert 0: busy but weak (small gate x norm); expert 3: rare but strong.
STATS = _stats(
    counts=[[100, 50, 40, 10]],
    top1_counts=[[60, 20, 15, 5]],
    gate_sum=[[20.0, 20.0, 16.0, 8.0]],
    prob_sum=[[30.0, 35.0, 25.0, 10.0]],
    ean_sum=[[100.0, 150.0, 80.0, 50.0]],
    reap_sum=[[10.0, 30.0, 24.0, 40.0]],
    top1_conf_sum=[[30.0, 18.0, 6.0, 4.5]],
)


def _rank(scores: torch.Tensor) -> list[int]:
    """Experts from least to most important."""
    return [int(i) for i in torch.argsort(scores[0], stable=True)]


def test_frequency_soft_count_gate_sum_ean() -> None:
    assert _rank(criteria.frequency(STATS)) == [3, 2, 1, 0]
    assert _rank(criteria.soft_count(STATS)) == [3, 2, 0, 1]
    assert criteria.gate_sum(STATS)[0].tolist() == [20.0, 20.0, 16.0, 8.0]
    assert _rank(criteria.ean(STATS)) == [3, 2, 0, 1]


def test_reap_is_a_conditional_mean() -> None:
    scores = criteria.reap(STATS)[0].tolist()
    assert scores == pytest.approx([0.1, 0.6, 0.6, 4.0])
    # The rare, strong expert is the most important under REAP and the least under frequency.
    assert _rank(criteria.reap(STATS))[-1] == 3 and _rank(criteria.frequency(STATS))[0] == 3
    # An expert never routed to scores 0, not NaN.
    dead = _stats(counts=[[0.0, 2.0]], reap_sum=[[0.0, 1.0]])
    assert criteria.reap(dead)[0].tolist() == [0.0, 0.5]
    # reap-sum weighs the same saliency by usage: experts 1 and 2 tie under REAP, the busier 1 wins here.
    assert _rank(criteria.score("reap-sum", STATS)) == [0, 2, 1, 3]
    assert criteria.score("reap-sum", STATS)[0].tolist() == [10.0, 30.0, 24.0, 40.0]


def test_importance_product() -> None:
    scores = criteria.importance(STATS)[0].tolist()
    expected = [60 * math.exp(0.5), 20 * math.exp(0.9), 15 * math.exp(0.4), 5 * math.exp(0.9)]
    assert scores == pytest.approx(expected)


def test_random_is_seeded() -> None:
    a, b, c = (criteria.score("random", STATS, seed=s) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(InvalidRecipeError, match="valid: frequency"):
        criteria.score("nope", STATS)


def test_layerwise_selection_same_count_per_layer() -> None:
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    assert selection.select_layerwise(scores, 2, min_keep=[2, 2]) == {0: [1, 3], 1: [0, 1]}
    # Already-dropped experts stay dropped and are not re-counted.
    assert selection.select_layerwise(scores, 1, min_keep=[2, 2], already={0: [1]}) == {0: [1, 3], 1: [0]}
    with pytest.raises(InvalidRecipeError, match="fewer than top_k=2"):
        selection.select_layerwise(scores, 3, min_keep=[2, 2])


def test_global_selection_uses_layer_shares_and_respects_top_k() -> None:
    # Layer 1 has 100x larger raw scores; shares make layers comparable. Layer 0 is very uneven.
    scores = torch.tensor([[97.0, 1.0, 1.0, 1.0], [2500.0, 2500.0, 2500.0, 2500.0]])
    drop = selection.select_global(scores, 3, min_keep=[1, 1])
    assert drop == {0: [1, 2, 3], 1: []}
    # With top_k=2, layer 0 can lose only 2; the third goes to layer 1 (lowest index on ties).
    drop = selection.select_global(scores, 3, min_keep=[2, 2])
    assert drop == {0: [1, 2], 1: [0]}
    with pytest.raises(InvalidRecipeError, match="only 4 can go"):
        selection.select_global(scores, 5, min_keep=[2, 2])


def test_round_schedule() -> None:
    assert selection.round_schedule(5, 2) == [3, 2]
    assert selection.round_schedule(2, 4) == [1, 1]
    assert sum(selection.round_schedule(7, 3)) == 7


def _block_similarity(blocks: list[list[int]], n: int, within: float = 0.9, between: float = 0.1) -> np.ndarray:
    sim = np.full((n, n), between)
    for block in blocks:
        for i in block:
            for j in block:
                sim[i, j] = within
    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.03, 0.03, (n, n))
    sim = sim + (noise + noise.T) / 2
    np.fill_diagonal(sim, 1.0)
    return sim


@pytest.mark.parametrize("algorithm", ["greedy", "hc", "spectral"])
def test_grouping_recovers_planted_groups(algorithm: str) -> None:
    planted = [[0, 1, 2], [3, 4], [5], [6, 7]]
    sim = _block_similarity(planted, 8)
    assert grouping.group_experts(sim, 4, algorithm=algorithm) == planted
    assert grouping.group_experts(torch.tensor(sim), 4, algorithm=algorithm) == planted


@pytest.mark.parametrize("algorithm", ["greedy", "hc", "spectral"])
@pytest.mark.parametrize("n_groups", [1, 3, 6, 8])
def test_grouping_gives_exactly_n_groups(algorithm: str, n_groups: int) -> None:
    rng = np.random.default_rng(n_groups)
    x = rng.normal(size=(8, 5))
    sim = np.corrcoef(x)
    groups = grouping.group_experts(sim, n_groups, algorithm=algorithm, seed=3)
    assert len(groups) == n_groups
    assert sorted(e for g in groups for e in g) == list(range(8))


def test_greedy_and_hc_differ_on_a_chain() -> None:
    # A chain 0-1-2-3 of strong neighbours: single linkage (greedy) chains, average linkage does not.
    sim = np.array(
        [
            [1, 0.9, 0.1, 0.0, 0.0],
            [0.9, 1, 0.88, 0.1, 0.0],
            [0.1, 0.88, 1, 0.87, 0.0],
            [0.0, 0.1, 0.87, 1, 0.8],
            [0.0, 0.0, 0.0, 0.8, 1],
        ]
    )
    assert grouping.greedy_groups(sim, 2) == [[0, 1, 2, 3], [4]]
    assert grouping.hierarchical_groups(sim, 2) == [[0, 1], [2, 3, 4]]
    planted = [[0, 1, 2], [3, 4], [5], [6, 7]]
    block = _block_similarity(planted, 8)
    shuffled = [[0, 3, 5], [1, 6], [2], [4, 7]]
    assert grouping.partition_objective(block, planted) > grouping.partition_objective(block, shuffled)


def test_grouping_rejects_impossible_counts() -> None:
    with pytest.raises(InvalidRecipeError):
        grouping.group_experts(np.eye(3), 4)


def test_cka_and_cosine_on_known_outputs() -> None:
    torch.manual_seed(0)
    base = torch.randn(64, 6)
    q, _ = torch.linalg.qr(torch.randn(6, 6))
    outputs = torch.stack([base, 3.0 * base, base @ q, torch.randn(64, 6)])
    cka = similarity.linear_cka(outputs)
    cos = similarity.output_cosine(outputs)
    assert cka[0, 1] == pytest.approx(1.0) and cos[0, 1] == pytest.approx(1.0)
    assert cka[0, 2] == pytest.approx(1.0)  # CKA is rotation invariant ...
    assert cos[0, 2] < 0.9  # ... per-token cosine is not
    assert cka[0, 3] < 0.5
    assert torch.allclose(cka, cka.T) and torch.allclose(cka.diagonal(), torch.ones(4, dtype=torch.float64))


def test_surrogate_and_vectorised_weights() -> None:
    torch.manual_seed(0)
    experts, hidden, inter = 4, 5, 3
    gate, up = torch.randn(experts, inter, hidden), torch.randn(experts, inter, hidden)
    down = torch.randn(experts, hidden, inter)
    gate[1], up[1], down[1] = gate[0], up[0], 2 * down[0]  # expert 1 = 2 x expert 0 (surrogate cosine 1)
    sim = similarity.surrogate_similarity(gate, up, down)
    explicit = torch.stack([(down[e] @ (gate[e] * up[e])).flatten() for e in range(experts)]).double()
    explicit = torch.nn.functional.normalize(explicit, dim=1)
    assert torch.allclose(sim, (explicit @ explicit.T).clamp(-1, 1), atol=1e-9)
    assert sim[0, 1] == pytest.approx(1.0)
    assert torch.allclose(similarity.surrogate_similarity(gate, up, down, max_direct=0), sim, atol=1e-9)

    module = torch.nn.Module()
    module.gate_up_proj = torch.nn.Parameter(torch.cat([gate, up], dim=1))
    module.down_proj = torch.nn.Parameter(down)
    g2, u2, d2 = similarity.swiglu_parts(module, experts)
    assert torch.equal(g2.float(), gate) and torch.equal(u2.float(), up) and torch.equal(d2.float(), down)
    flat = torch.cat([module.down_proj.reshape(experts, -1), module.gate_up_proj.reshape(experts, -1)], 1).double()
    direct = similarity.vector_cosine(flat)  # the one-matrix definition
    assert torch.allclose(similarity.weight_cosine(module, experts, chunk=7), direct, atol=1e-12)  # many chunks
    assert torch.allclose(similarity.weight_cosine(module, experts), direct, atol=1e-12)


def test_merge_plans() -> None:
    counts = [5.0, 30.0, 10.0, 0.0]
    groups, weights = merging.plan_merge([[0, 1], [2, 3]], counts, "freq")
    assert groups == [[1, 0], [2, 3]]  # survivor = most visited
    assert weights[0] == pytest.approx([30 / 35, 5 / 35]) and weights[1] == pytest.approx([1.0, 0.0])
    assert merging.plan_merge([[0, 1]], counts, "uniform")[1] == [[0.5, 0.5]]
    assert merging.plan_merge([[0, 1, 2]], counts, "max") == ([[1, 2, 0]], [[1.0, 0.0, 0.0]])
    # All-zero counts fall back to uniform instead of dividing by zero.
    assert merging.plan_merge([[3]], counts, "freq")[1] == [[1.0]]


def test_in_place_merge_restores_exactly() -> None:
    torch.manual_seed(0)
    experts = torch.nn.Module()
    experts.gate_up_proj = torch.nn.Parameter(torch.randn(4, 6, 3))
    router = torch.nn.Linear(3, 4, bias=True)
    before = [t.detach().clone() for t in (experts.gate_up_proj, router.weight, router.bias)]
    m = merging.InPlaceMerge()
    block = SimpleNamespace(experts=experts, router=router, num_experts=4)
    targets = merging.merge_targets(block, merge_router=True)
    assert len(targets) == 3
    m.apply(targets, [[1, 0], [2], [3]], [[0.75, 0.25], [1.0], [1.0]])
    assert torch.allclose(experts.gate_up_proj[1], 0.75 * before[0][1] + 0.25 * before[0][0])
    assert torch.allclose(router.weight[1], 0.75 * before[1][1] + 0.25 * before[1][0])
    assert torch.equal(experts.gate_up_proj[0], before[0][0])  # non-survivors untouched (masked later)
    assert m.nbytes == (6 * 3 + 3 + 1) * 4
    m.restore()
    for t, b in zip((experts.gate_up_proj, router.weight, router.bias), before, strict=True):
        assert torch.equal(t, b)


def test_profile_statistics_known_values() -> None:
    assert profile.gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert profile.gini([0, 0, 0, 4]) == pytest.approx(0.75)
    assert profile.entropy_ratio([1, 1, 1, 1]) == pytest.approx(1.0)
    assert profile.entropy_ratio([0, 0, 0, 5]) == pytest.approx(0.0)
    assert profile.top_share([5, 3, 1, 1], n=2) == pytest.approx(0.8)
    counts = torch.tensor([[100.0, 100.0, 0.0, 0.5], [50.0, 50.0, 50.0, 50.0]])
    prof = profile.routing_profile(counts, dead_threshold=0.01)
    assert [lp.dead for lp in prof.layers] == [[2, 3], []]
    assert profile.routing_profile(counts, dead_threshold=0.0).dead_count == 1
    summary = prof.summary()
    assert summary["dead"] == 2 and summary["dead_fraction"] == pytest.approx(0.25)
    assert prof.layers[1].gini == pytest.approx(0.0) and prof.layers[1].top10_share == 1.0
    assert "threshold" in prof.format() and prof.to_dict()["summary"]["dead"] == 2


def test_dead_expert_curve_shrinks_with_more_prompts() -> None:
    per_prompt = torch.zeros(20, 1, 10)
    for p in range(20):
        per_prompt[p, 0, p % 10] = 1.0  # each prompt uses one expert
    curve = profile.dead_expert_curve(lambda n: per_prompt[:n].sum(0), [5, 10, 20], dead_threshold=0.0)
    assert [row["dead"] for row in curve] == [5, 0, 0]
