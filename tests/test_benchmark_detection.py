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


def test_the_full_width_is_warmed_up_then_timed_around_the_others(
        monkeypatch):
    tool = load_tool('analysis/benchmark_detection')
    timed = []

    def fake_step_times(build, batches, optim_cfg, repeats, interleave):
        names = [make() for make in build]
        timed.append((names, interleave))
        # the first model of a process is slow; the machine then drifts
        return [{'full': 5.}.get(n, 2.) if i == 0 else
                dict(full=2., a=1.)[n] * (1.1 if i == len(names) - 1 else 1)
                for i, n in enumerate(names)]

    monkeypatch.setattr(tool, 'step_times', fake_step_times)
    seconds, drift = tool.widths_timed(lambda k: (lambda: k), ['full', 'a'],
                                       'full', ['batch'], None, 3)
    assert timed == [(['full', 'full', 'a', 'full'], False)]
    assert seconds == pytest.approx({'full': 2.1, 'a': 1.})
    assert drift == pytest.approx(1.1)
