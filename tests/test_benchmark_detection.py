"""benchmark_detection.py's prediction of whole-training time: the widths a
schedule passes through, integrated over its iterations (no timing)."""

import pytest

from test_tools_and_readme import load_tool


def test_schedule_segments_group_equal_widths_and_sum_to_iters():
    tool = load_tool('analysis/benchmark_detection')
    full, a, b = 'full', 'a', 'b'
    # after iteration 20 -> a, 40 -> a again (postponed or soft), 60 -> b
    events = [(40, a), (20, a), (60, b)]
    counts = tool.schedule_segments(events, 100, full)
    assert counts == {full: 20, a: 40, b: 40}
    # an event at the last iteration trains nothing at its width
    assert tool.schedule_segments([(10, a), (30, b)], 30, full) == {
        full: 10, a: 20}
    assert tool.schedule_segments([], 7, full) == {full: 7}


def test_integrate_weights_step_times_by_iterations():
    tool = load_tool('analysis/benchmark_detection')
    counts = {'full': 20, 'a': 40, 'b': 40}
    seconds = {'full': 2., 'a': 1., 'b': 0.5}
    # (20 * 2 + 40 * 1 + 40 * 0.5) / (100 * 2)
    assert tool.integrate(counts, seconds, 'full') == pytest.approx(0.5)
    assert tool.integrate({'full': 5}, seconds, 'full') == 1.


def test_in_run_seconds_are_the_median_iteration_at_each_width():
    tool = load_tool('analysis/benchmark_detection')
    # iterations 0-1 full width, 2-4 at a, 5- at b (an event's own time
    # lands in the first iteration at the new width: the 3. of iteration
    # 2); the event after iteration 6 left the widths as they were
    times = [1., 3., 3., .5, .6, .2, .3, .25]
    events = [(2, 'a'), (5, 'b'), (6, 'b')]
    seconds = tool.in_run_seconds(events, times, 'full')
    assert seconds == {'full': 2., 'a': .6, 'b': .25}
    assert tool.in_run_seconds([], times[:3], 'full') == {'full': 3.}


def test_widths_are_timed_in_rounds_each_in_a_new_order(monkeypatch):
    tool = load_tool('analysis/benchmark_detection')
    timed = []
    clock = iter(range(1, 100))

    def fake_step_times(build, batches, optim_cfg, repeats, interleave):
        names = [make() for make in build]
        timed.append(names)
        assert not interleave  # one model at a time, as training runs it
        # the machine slows down by 10% with each model timed
        return [dict(full=2., a=1., b=.5)[n] * 1.1**next(clock)
                for n in names]

    monkeypatch.setattr(tool, 'step_times', fake_step_times)
    keys = ['full', 'a', 'b']
    per_round = tool.widths_timed(lambda k: (lambda: k), keys, 'full',
                                  ['batch'], None, 3, rounds=4)
    assert timed[0] == ['full']  # untimed: the first model is slow
    rounds = timed[1:]
    assert len(rounds) == 4 and all(sorted(r) == sorted(keys) for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # the order changes
    assert all(len(t) == 4 for t in per_round.values())
    counts = {'full': 10, 'a': 10, 'b': 20}
    predicted, each, medians = tool.predictions(counts, per_round, 'full')
    # without drift: (10 * 2 + 10 * 1 + 20 * .5) / (40 * 2) = 0.5
    assert len(each) == 4 and min(each) < 0.5 < max(each)
    assert medians == {k: pytest.approx(sorted(t)[1] / 2 + sorted(t)[2] / 2)
                       for k, t in per_round.items()}
    assert predicted == tool.integrate(counts, medians, 'full')
    assert abs(predicted - 0.5) < 0.1


def test_a_prediction_is_reliable_when_every_round_agrees():
    tool = load_tool('analysis/benchmark_detection')
    assert tool.reliable([0.69, 0.71, 0.72], 0.70)
    assert not tool.reliable([0.69, 0.71, 0.74], 0.70)
    assert 'not reliable' in tool.said_by_rounds([0.6, 0.7], 0.7)
    assert 'not reliable' not in tool.said_by_rounds([0.69, 0.7], 0.7)


def test_runs_timed_twice_show_both_times():
    tool = load_tool('analysis/benchmark_detection')
    assert tool.each([101.8]) == ''
    assert tool.each([137.7, 140.31]) == ' (137.7, 140.3)'
