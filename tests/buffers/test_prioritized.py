"""Prioritized replay: sampling ∝ priority, IS weights, max priority for new transitions."""

import numpy as np
import pytest
import torch
from scipy import stats

from classic_rl.buffers import PrioritizedReplayBuffer


def filled_buffer(n: int, capacity: int = 64, alpha: float = 1.0) -> PrioritizedReplayBuffer:
    buf = PrioritizedReplayBuffer(capacity, (1,), torch.float32, (), torch.int64, alpha=alpha, eps=0.0)
    x = torch.arange(n, dtype=torch.float32)
    buf.add(x[:, None], x.long(), x, x[:, None], torch.zeros(n), torch.full((n,), 0.99))
    return buf


def test_new_transitions_enter_at_the_max_priority():
    buf = filled_buffer(4)
    assert buf.tree.get(torch.arange(4)).tolist() == [1.0] * 4
    buf.update_priorities(torch.tensor([0, 1]), torch.tensor([-5.0, 2.0]))  # |δ| counts
    buf.add(torch.zeros(1, 1), torch.zeros(1).long(), torch.zeros(1), torch.zeros(1, 1), torch.zeros(1), torch.ones(1))
    assert buf.tree.get(torch.arange(5)).tolist() == [5.0, 2.0, 1.0, 1.0, 5.0]


def test_sampling_frequencies_are_proportional_to_priority():
    buf = filled_buffer(8, alpha=0.5)
    td = torch.tensor([1.0, 4.0, 9.0, 16.0, 0.25, 1.0, 2.25, 36.0])
    buf.update_priorities(torch.arange(8), td)
    p = td.sqrt().double().numpy()  # p^α with α = 0.5
    g = torch.Generator().manual_seed(0)
    counts = np.zeros(8)
    for _ in range(200):
        counts += np.bincount(buf.sample(256, g).indices.numpy(), minlength=8)
    expected = p / p.sum() * counts.sum()
    # stratified sampling is *less* variable than multinomial, so a chi-square test is conservative
    assert stats.chisquare(counts, expected).pvalue > 0.01
    assert np.allclose(counts / counts.sum(), p / p.sum(), atol=0.01)


def test_importance_weights_are_normalized_by_their_max():
    buf = filled_buffer(4)
    buf.update_priorities(torch.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    buf.beta = 0.5
    batch = buf.sample(64, torch.Generator().manual_seed(1))
    probs = torch.tensor([1.0, 2.0, 3.0, 4.0]) / 10
    w = (4 * probs[batch.indices]) ** -0.5
    assert torch.allclose(batch.weights, w / w.max())
    assert batch.weights.max() == pytest.approx(1.0)


def test_sample_returns_the_stored_transitions_and_state_round_trips():
    buf = filled_buffer(10)
    batch = buf.sample(32, torch.Generator().manual_seed(2))
    assert torch.equal(batch.reward, batch.indices.float())
    other = PrioritizedReplayBuffer(64, (1,), torch.float32, (), torch.int64, alpha=1.0, eps=0.0)
    buf.update_priorities(torch.tensor([3]), torch.tensor([7.0]))
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.tree.get(torch.arange(10)), buf.tree.get(torch.arange(10)))
    assert float(other.max_priority) == 7.0
