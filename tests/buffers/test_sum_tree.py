"""Sum tree against a naive prefix-sum reference under random updates (property-based)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from classic_rl.buffers import SumTree


def naive_find(priorities: np.ndarray, mass: float) -> int:
    """The leaf whose interval [S_{i-1}, S_i) of the running sum holds `mass`."""
    return int(np.searchsorted(np.cumsum(priorities), mass, side="right"))


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 300),
    branching=st.sampled_from([2, 3, 32]),
    data=st.data(),
)
def test_sum_tree_matches_prefix_sums_under_random_updates(capacity, branching, data):
    tree = SumTree(capacity, branching=branching)
    reference = np.zeros(capacity)
    for _ in range(data.draw(st.integers(1, 5))):
        n = data.draw(st.integers(1, capacity))
        idx = np.array(data.draw(st.lists(st.integers(0, capacity - 1), min_size=n, max_size=n, unique=True)))
        values = np.array(data.draw(st.lists(st.floats(0.01, 100.0), min_size=n, max_size=n)))
        tree.update(torch.as_tensor(idx), torch.as_tensor(values))
        reference[idx] = values
        assert np.isclose(float(tree.total), reference.sum())
        assert np.allclose(tree.get(torch.arange(capacity)).numpy(), reference)
        # masses at random points and just inside every leaf's interval
        filled = reference > 0
        cums = np.cumsum(reference)
        masses = np.concatenate([
            np.array(data.draw(st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=20))) * cums[-1],
            (cums - reference * 0.5)[filled],
        ])
        found = tree.find(torch.as_tensor(masses)).numpy()
        expected = [naive_find(reference, m) for m in masses]
        assert found.tolist() == expected


def test_mass_past_the_total_lands_on_the_last_filled_leaf():
    tree = SumTree(100, branching=4)
    tree.update(torch.arange(10), torch.ones(10))
    assert tree.find(torch.tensor([10.0, 10.0 + 1e-9, 50.0])).tolist() == [9, 9, 9]


def test_state_dict_round_trip_rebuilds_every_level():
    tree = SumTree(1000, branching=8)
    tree.update(torch.arange(1000), torch.rand(1000, dtype=torch.float64))
    other = SumTree(1000, branching=8)
    other.load_state_dict(tree.state_dict())
    for a, b in zip(tree.levels, other.levels):
        assert torch.allclose(a, b)
