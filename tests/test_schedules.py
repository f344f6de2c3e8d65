import pytest

from prunedet.pruning.schedules import PruningSchedule, ramp


@pytest.mark.parametrize('kind', ['linear', 'geometric', 'exponential'])
def test_ramps_start_at_zero_end_at_target_and_rise(kind):
    values = [ramp(kind, p / 20, 0.6) for p in range(21)]
    assert values[0] == 0
    assert values[-1] == pytest.approx(0.6)
    assert all(a < b for a, b in zip(values, values[1:]))


def test_geometric_ramp_is_pgp_exponential_decay_of_kept_channels():
    # keep(e) = C * exp(-decay * (e + 1)), decay = (ln C - ln(C(1-r))) / E
    import math
    C, r, E = 512, 0.4, 8
    decay = (math.log(C) - math.log(C * (1 - r))) / E
    for e in range(E):
        keep = C * math.exp(-decay * (e + 1))
        assert C * (1 - ramp('geometric', (e + 1) / E, r)) == \
            pytest.approx(keep)


def test_exponential_ramp_reaches_three_quarters_at_one_quarter():
    assert ramp('exponential', 0.25, 0.8) == pytest.approx(0.6)


def test_schedule_steps_fractions_and_prune_once():
    s = PruningSchedule(0.5, begin=0, end=0.5, interval=3)
    s.bind(20)
    assert s.end == 10
    assert [d for d in range(25) if s.is_step(d)] == [3, 6, 9, 10]
    assert s.num_steps == 4 and s.ratio(10) == pytest.approx(0.5)
    once = PruningSchedule(0.3, end=0.5, interval=None)
    once.bind(20)
    assert [d for d in range(25) if once.is_step(d)] == [10]
    assert once.ratio(10) == 0.3


@pytest.mark.parametrize('ratio', [-0.1, 1.0, 1.5])
def test_ratio_outside_unit_interval_is_rejected(ratio):
    with pytest.raises(ValueError, match='target ratio must be in'):
        PruningSchedule(ratio)


def test_window_longer_than_training_is_rejected():
    s = PruningSchedule(0.5, begin=2, end=30)
    with pytest.raises(ValueError, match='pruning window'):
        s.bind(20)
