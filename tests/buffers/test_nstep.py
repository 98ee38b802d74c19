"""n-step returns: known answers across episode ends, truncations and the window."""

import pytest
import torch

from classic_rl.agents import Transition
from classic_rl.buffers import NStepWindow, nstep_return

T, F = True, False


def test_nstep_return_known_answers():
    g = 0.5
    reward = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [4.0, 4.0, 4.0]])  # [n=3, N=3]
    terminated = torch.tensor([[F, F, F], [F, T, F], [F, F, F]])
    truncated = torch.tensor([[F, F, T], [F, F, F], [F, F, F]])
    ret, steps = nstep_return(reward, terminated, truncated, g)
    # env 0: no end -> 1 + .5*2 + .25*4 = 3; env 1: ends at step 1 -> 1 + .5*2 = 2; env 2: truncated at 0 -> 1
    assert ret.tolist() == [3.0, 2.0, 1.0]
    assert steps.tolist() == [3, 2, 1]


def make_step(t, reward, terminated=False, truncated=False):
    """Scalar env, obs = step index t, next_obs = t + 1 (or 100 + t for a true final observation)."""
    final = terminated or truncated
    return Transition(
        obs=torch.tensor([[float(t)]]), action=torch.tensor([t]), reward=torch.tensor([reward]),
        next_obs=torch.tensor([[100.0 + t if final else t + 1.0]]),
        terminated=torch.tensor([terminated]), truncated=torch.tensor([truncated]),
    )


def run_window(n, gamma, steps):
    window, out = NStepWindow(n, gamma), []
    for s in steps:
        ready = window.push(s)
        if ready is not None:
            out.append(ready)
    return out


def test_window_stops_at_termination_and_bootstraps_through_truncation():
    # episode A: t0, t1, t2 terminated; episode B: t3, t4 truncated; episode C: t5, t6, t7
    steps = [make_step(0, 1), make_step(1, 2), make_step(2, 4, terminated=True),
             make_step(3, 1), make_step(4, 1, truncated=True), make_step(5, 1), make_step(6, 1), make_step(7, 1)]
    out = run_window(3, 0.5, steps)
    assert [int(o.obs) for o in out] == [0, 1, 2, 3, 4, 5]  # each step once, n-1 = 2 steps late
    expected = [  # (return, next_obs, terminated, discount)
        (1 + 1 + 1, 102.0, 1.0, 0.125),  # t0: 1 + .5*2 + .25*4, ends at the terminal state of t2
        (2 + 2, 102.0, 1.0, 0.25),  # t1: stops at t2's termination: no bootstrap
        (4, 102.0, 1.0, 0.5),  # t2: the terminal step itself
        (1 + 0.5, 104.0, 0.0, 0.25),  # t3: truncated at t4 -> bootstrap from the final obs with γ^2
        (1, 104.0, 0.0, 0.5),  # t4: the truncated step bootstraps with γ
        (1 + 0.5 + 0.25, 8.0, 0.0, 0.125),  # t5: full window inside episode C
    ]
    for o, (ret, nxt, term, disc) in zip(out, expected):
        assert float(o.reward) == pytest.approx(ret)
        assert float(o.next_obs) == nxt
        assert float(o.terminated) == term
        assert float(o.discount) == pytest.approx(disc)


def test_one_step_window_is_the_transition_itself():
    out = run_window(1, 0.9, [make_step(0, 3.0), make_step(1, 2.0, terminated=True)])
    assert [(float(o.reward), float(o.next_obs), float(o.terminated), float(o.discount)) for o in out] == [
        (3.0, 1.0, 0.0, pytest.approx(0.9)), (2.0, 101.0, 1.0, pytest.approx(0.9))]


def test_vector_envs_are_windowed_independently():
    # two envs: env 0 terminates at step 0, env 1 never ends
    a = Transition(torch.tensor([[0.0], [0.0]]), torch.tensor([0, 0]), torch.tensor([1.0, 1.0]),
                   torch.tensor([[50.0], [1.0]]), torch.tensor([T, F]), torch.tensor([F, F]))
    b = Transition(torch.tensor([[0.0], [1.0]]), torch.tensor([0, 0]), torch.tensor([3.0, 3.0]),
                   torch.tensor([[1.0], [2.0]]), torch.tensor([F, F]), torch.tensor([F, F]))
    (o,) = run_window(2, 0.5, [a, b])
    assert o.reward.tolist() == [1.0, 2.5]
    assert o.next_obs.squeeze(1).tolist() == [50.0, 2.0]
    assert o.terminated.tolist() == [1.0, 0.0]
    assert o.discount.tolist() == [0.5, 0.25]
