"""GAE and reward-to-go: known answers with a termination and a truncation mid-rollout, and a naive oracle."""

import torch

from classic_rl.buffers import RolloutBuffer
from classic_rl.returns import complete_episode_mask, gae, reward_to_go

# Two envs (columns), four steps (rows). Column 0 terminates at t = 1; column 1 is truncated at t = 1
# with V(true final obs) = 6 while V(reset obs) on the next row is 3.
REWARD = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
VALUE = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
NEXT_VALUE = torch.tensor([[2.0, 2.0], [99.0, 6.0], [4.0, 4.0], [8.0, 8.0]])  # 99: terminal, must be ignored
TERMINATED = torch.tensor([[False, False], [True, False], [False, False], [False, False]])
TRUNCATED = torch.tensor([[False, False], [False, True], [False, False], [False, False]])
DONE = TERMINATED | TRUNCATED


def test_gae_known_answer_with_termination_and_truncation():
    adv, ret = gae(REWARD, VALUE, NEXT_VALUE, TERMINATED, DONE, gamma=0.5, lam=0.5)
    # δ_t = r + 0.5 (1 - term) V' - V:   col 0: [1, 0, 2, 4]   col 1: [1, 2 + 3 - 2 = 3, 2, 4]
    # A_t = δ_t + 0.25 (1 - done) A_{t+1}: col 0: A3 = 4, A2 = 2 + 1 = 3, A1 = 0 (ends), A0 = 1 + 0 = 1
    #                                      col 1: A3 = 4, A2 = 3, A1 = 3 (ends), A0 = 1 + 0.75 = 1.75
    expected = torch.tensor([[1.0, 1.75], [0.0, 3.0], [3.0, 3.0], [4.0, 4.0]])
    assert torch.allclose(adv, expected)
    assert torch.allclose(ret, expected + VALUE)


def test_gae_lambda_zero_is_td_error_and_inputs_untouched():
    before = [x.clone() for x in (REWARD, VALUE, NEXT_VALUE)]
    adv, _ = gae(REWARD, VALUE, NEXT_VALUE, TERMINATED, DONE, gamma=0.5, lam=0.0)
    assert torch.allclose(adv, torch.tensor([[1.0, 1.0], [0.0, 3.0], [2.0, 2.0], [4.0, 4.0]]))
    assert all(torch.equal(a, b) for a, b in zip(before, (REWARD, VALUE, NEXT_VALUE)))


def test_reward_to_go_known_answer_and_equals_gae_lambda_one():
    g = reward_to_go(REWARD, NEXT_VALUE, TERMINATED, DONE, gamma=0.5)
    # col 0: G3 = 4 + 0.5 * 8 = 8, G2 = 3 + 4 = 7, G1 = 2 (terminal), G0 = 1 + 0.5 * 2 = 2
    # col 1: G1 = 2 + 0.5 * 6 = 5 (truncated: V(final obs)), G0 = 1 + 2.5 = 3.5
    assert torch.allclose(g, torch.tensor([[2.0, 3.5], [2.0, 5.0], [7.0, 7.0], [8.0, 8.0]]))
    _, ret = gae(REWARD, VALUE, NEXT_VALUE, TERMINATED, DONE, gamma=0.5, lam=1.0)
    assert torch.allclose(g, ret)
    # without bootstrap values: the plain discounted sums of the rewards seen
    plain = reward_to_go(REWARD, torch.zeros_like(REWARD), TERMINATED, DONE, gamma=0.5)
    assert torch.allclose(plain[:, 1], torch.tensor([2.0, 2.0, 5.0, 4.0]))


def naive_gae(reward, value, next_value, terminated, done, gamma, lam):
    """A_t = Σ_k (γλ)^k δ_{t+k}, summed until the episode's end or the rollout's end."""
    T, N = reward.shape
    adv = torch.zeros(T, N, dtype=torch.float64)
    for n in range(N):
        for t in range(T):
            total, k = 0.0, 0
            while t + k < T:
                s = t + k
                delta = reward[s, n] + gamma * (0.0 if terminated[s, n] else next_value[s, n]) - value[s, n]
                total += (gamma * lam) ** k * delta
                if done[s, n]:
                    break
                k += 1
            adv[t, n] = total
    return adv


def test_gae_matches_naive_sum_on_random_rollouts():
    g = torch.Generator().manual_seed(0)
    T, N = 12, 5
    reward, value, next_value = (torch.randn(T, N, generator=g, dtype=torch.float64) for _ in range(3))
    terminated = torch.rand(T, N, generator=g) < 0.15
    truncated = torch.rand(T, N, generator=g) < 0.15  # may coincide with terminated
    done = terminated | truncated
    adv, _ = gae(reward, value, next_value, terminated, done, gamma=0.9, lam=0.8)
    assert torch.allclose(adv, naive_gae(reward, value, next_value, terminated, done, 0.9, 0.8))


def test_complete_episode_mask():
    done = torch.tensor([[False, False, True], [True, False, False], [False, False, True], [False, False, False]])
    assert complete_episode_mask(done).tolist() == [
        [True, False, True], [True, False, True], [False, False, True], [False, False, False]]


def test_rollout_buffer_next_value_uses_final_obs_value_at_truncation():
    buf = RolloutBuffer(4, 2, (1,), torch.float32, (), torch.int64)
    for t in range(4):
        final = None
        if t == 1:  # truncated row: V(true final obs) of both columns (only column 1 is read)
            final = torch.tensor([99.0, 6.0])
        if t == 3:  # last row: V(the observation the rollout stops on)
            final = torch.tensor([8.0, 8.0])
        assert not buf.full
        buf.add(torch.zeros(2, 1), torch.zeros(2, dtype=torch.int64), REWARD[t], TERMINATED[t], TRUNCATED[t],
                torch.zeros(2), VALUE[t], final)
    assert buf.full
    r = buf.rollout()
    # next row's V(s) inside the rollout (V(reset obs) = 3 in column 0 after the termination is never used)
    assert torch.allclose(r.next_value, torch.tensor([[2.0, 2.0], [3.0, 6.0], [4.0, 4.0], [8.0, 8.0]]))
    adv, _ = gae(r.reward, r.value, r.next_value, r.terminated, r.done, 0.5, 0.5)
    assert torch.allclose(adv, torch.tensor([[1.0, 1.75], [0.0, 3.0], [3.0, 3.0], [4.0, 4.0]]))
    buf.clear()
    assert buf.pos == 0 and not buf.full
