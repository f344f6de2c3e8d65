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
