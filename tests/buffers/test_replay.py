import torch

from classic_rl.buffers import ReplayBuffer


def make(capacity=5):
    return ReplayBuffer(capacity, (2,), torch.float32, (), torch.int64)


def add_range(buf, start, n):
    x = torch.arange(start, start + n, dtype=torch.float32)
    buf.add(x[:, None].repeat(1, 2), x.long(), x, x[:, None].repeat(1, 2) + 0.5, (x % 2 == 0), torch.full_like(x, 0.9))


def test_add_wraps_around_and_overwrites_oldest():
    buf = make(5)
    add_range(buf, 0, 3)
    assert len(buf) == 3 and buf.pos == 3
    add_range(buf, 3, 4)  # 3, 4 fill the end; 5, 6 overwrite positions 0, 1
    assert len(buf) == 5 and buf.pos == 2
    assert buf.storage["reward"].tolist() == [5, 6, 2, 3, 4]
    assert buf.storage["action"].tolist() == [5, 6, 2, 3, 4]
    assert buf.storage["next_obs"][:, 0].tolist() == [5.5, 6.5, 2.5, 3.5, 4.5]
    assert buf.storage["terminated"].tolist() == [0, 1, 1, 0, 1]


def test_sample_returns_consistent_rows_only_from_filled_part():
    buf = make(100)
    add_range(buf, 0, 10)
    g = torch.Generator().manual_seed(0)
    batch = buf.sample(1000, g)
    assert batch.indices.max() < 10
    assert torch.equal(batch.reward, batch.indices.float())
    assert torch.equal(batch.obs[:, 0], batch.reward)
    assert torch.equal(batch.action, batch.indices)
    assert set(batch.indices.tolist()) == set(range(10))  # uniform over the filled part


def test_state_dict_round_trip():
    buf = make(8)
    add_range(buf, 0, 6)
    add_range(buf, 6, 5)
    other = make(8)
    other.load_state_dict(buf.state_dict())
    assert (other.pos, other.size) == (buf.pos, buf.size)
    for k in ReplayBuffer.FIELDS:
        assert torch.equal(other.storage[k], buf.storage[k])


def test_sample_many_draws_count_independent_uniform_batches_at_once():
    buf = make(100)
    add_range(buf, 0, 10)
    batches = buf.sample_many(50, 16, torch.Generator().manual_seed(0))
    assert len(batches) == 50 and all(b.obs.shape == (16, 2) and b.indices.shape == (16,) for b in batches)
    for b in batches:  # every row is a stored transition, fields aligned
        assert torch.equal(b.reward, b.indices.float()) and torch.equal(b.next_obs[:, 0], b.reward + 0.5)
    # the same draw as one sample of 50 x 16 rows, cut in order
    whole = buf.sample(50 * 16, torch.Generator().manual_seed(0))
    assert torch.equal(torch.cat([b.indices for b in batches]), whole.indices)
    counts = torch.bincount(whole.indices, minlength=10).float()
    assert counts.min() > 0.6 * counts.mean()  # uniform over the filled part
    assert batches[0].weights is None


def test_prioritized_buffer_refuses_to_draw_batches_ahead():
    import pytest

    from classic_rl.buffers import PrioritizedReplayBuffer

    buf = PrioritizedReplayBuffer(10, (2,), torch.float32, (), torch.int64)
    add_range(buf, 0, 5)
    with pytest.raises(NotImplementedError):
        buf.sample_many(2, 4, torch.Generator().manual_seed(0))
