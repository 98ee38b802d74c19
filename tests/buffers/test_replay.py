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
