"""The training ETA follows the recent pace, pauses for samples and checkpoints included."""

from __future__ import annotations

from itertools import pairwise

import pytest

from style_studio.training.eta import DEFAULT_WINDOW, StepClock, window_for


def run_steps(clock: StepClock, start_step: int, start_at: float, seconds: list[float]):
    """Tick once per step, each taking the given seconds; returns (step, time) at the end."""
    step, at = start_step, start_at
    for duration in seconds:
        step, at = step + 1, at + duration
        clock.tick(step, at)
    return step, at


def test_no_estimate_before_a_step_is_timed():
    clock = StepClock(window=10)
    assert clock.eta(100) is None
    clock.tick(0, 0.0)
    assert clock.eta(100) is None
    clock.tick(1, 2.0)
    assert clock.eta(100) == pytest.approx(200.0)
    assert clock.eta(0) == 0.0


def test_the_estimate_rises_when_steps_get_slower():
    clock = StepClock(window=20)
    clock.tick(0, 0.0)
    step, at = run_steps(clock, 0, 0.0, [1.0] * 100)
    steady = clock.eta(300)
    assert steady == pytest.approx(300.0)

    estimates = []
    for _ in range(30):  # each step now takes 3 s
        step, at = run_steps(clock, step, at, [3.0])
        estimates.append(clock.eta(400 - step))
    rising = estimates[:20]  # while slow steps replace fast ones in the 20-step window
    assert all(b > a for a, b in pairwise(rising))
    assert estimates[0] > steady and estimates[19] > 2.5 * steady
    # Once the window holds only slow steps, the estimate is the new pace exactly; an
    # average over the whole run (130 steps in 190 s) would still say about 1.5 s a step.
    assert clock.seconds_per_step() == pytest.approx(3.0)
    assert clock.eta(270) == pytest.approx(810.0)
    assert clock.eta(270) > 270 * (at / step) * 1.5


def test_pauses_for_samples_and_checkpoints_are_counted():
    clock = StepClock(window=window_for(10, 10))
    assert clock.window == DEFAULT_WINDOW
    step, at = 0, 0.0
    clock.tick(step, at)
    for _ in range(10):  # 10 blocks of 10 one-second steps, then a 20 s sample
        step, at = run_steps(clock, step, at, [1.0] * 10)
        at += 20.0
    step, at = run_steps(clock, step, at, [1.0])  # the step after the pause sees it
    # Over the last 50 steps: 50 s of steps and 5 pauses of 20 s = 3 s a step.
    assert clock.seconds_per_step() == pytest.approx(3.0)
    assert clock.eta(100) == pytest.approx(300.0)
    # Timing only the training steps (what the ETA used to do) would say 100 s.
    assert clock.eta(100) > 100 * 1.0 * 2


def test_the_window_is_long_enough_to_hold_each_periodic_pause():
    assert window_for() == DEFAULT_WINDOW
    assert window_for(0, 0) == DEFAULT_WINDOW
    assert window_for(250, 100) == 250
    with pytest.raises(ValueError):
        StepClock(window=0)


def test_a_step_count_that_goes_back_starts_afresh():
    clock = StepClock(window=10)
    run_steps(clock, 0, 0.0, [5.0] * 5)
    clock.tick(2, 1000.0)  # resumed from an earlier checkpoint
    assert clock.eta(10) is None
    clock.tick(3, 1001.0)
    assert clock.eta(10) == pytest.approx(10.0)


def test_it_reads_the_clock_it_is_given():
    now = [0.0]
    clock = StepClock(window=5, clock=lambda: now[0])
    for step in range(4):
        clock.tick(step)
        now[0] += 0.5
    assert clock.eta(10) == pytest.approx(5.0)
