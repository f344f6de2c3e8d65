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

    def fake_step_times(build, batches, optim_cfg, repeats):
        names = [make() for make in build]
        timed.append(names)
        # the machine slows down by 10% with each model timed
        return [dict(full=2., a=1., b=.5)[n] * 1.1**next(clock)
                for n in names]

    monkeypatch.setattr(tool, 'step_times', fake_step_times)
    keys = ['full', 'a', 'b']
    per_round = tool.widths_timed(lambda k: (lambda: k), keys, 'full',
                                  iter([]), None, 3, rounds=4)
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


def test_voc_widths_scale_every_demo_cut_by_one_factor():
    tool = load_tool('analysis/benchmark_detection')
    originals = [('a', 64), ('b', 512)]
    fractions = [('x', 16), ('y', 128)]  # the demo's original widths
    key = (('x', 16), ('y', 32))  # a kept whole, b lost 3/4
    # the demo's own shares at scale 1; none cut at 0
    assert tool.scaled_widths(originals, fractions, key, 1.) == dict(a=64,
                                                                     b=128)
    assert tool.scaled_widths(originals, fractions, key, 0.) == dict(a=64,
                                                                     b=512)
    # b loses 0.75 * 0.8 = 0.6: 204.8 kept, to a multiple of 8
    assert tool.scaled_widths(originals, fractions, key, .8) == dict(a=64,
                                                                     b=208)
    # never below one multiple, nor above the original
    assert tool.scaled_widths(originals, fractions, key, 2.)['b'] == 8
    # a width that is no multiple of 8 stays whole where nothing is cut
    assert tool.scaled_widths([('a', 100)], [('x', 25)], (('x', 25), ),
                              1.) == dict(a=100)
    # halves round up: 13 of 128 is 52 of 512, 6.5 multiples of 8 -> 56
    # (Python's round, to the even multiple, would give 48)
    assert tool.scaled_widths([('a', 512)], [('x', 128)], (('x', 13), ),
                              1.) == dict(a=56)


def test_fit_scale_lands_the_last_widths_on_the_flops_target():
    tool = load_tool('analysis/benchmark_detection')
    originals = [('a', 64), ('b', 256), ('c', 512)]
    fractions = [('a', 16), ('b', 64), ('c', 128)]
    final = (('a', 16), ('b', 48), ('c', 32))
    cost = dict(a=1., b=3., c=2.)  # FLOPs per kept channel, linear

    def flops_ratio_at(scale):
        widths = tool.scaled_widths(originals, fractions, final, scale)
        return sum(cost[n] * widths[n] for n, _ in originals) / sum(
            cost[n] * o for n, o in originals)

    # 64 + 3 * 192 + 2 * 128 of 64 + 3 * 256 + 2 * 512
    assert flops_ratio_at(1.) == pytest.approx(896 / 1856)
    for target in (0.70, 0.55, 0.4):  # to within a step of 8 channels
        scale = tool.fit_scale(flops_ratio_at, target)
        assert abs(flops_ratio_at(scale) - target) <= 8 * 3 / 1856 / 2
    assert tool.fit_scale(flops_ratio_at, 0.70) < 1 < tool.fit_scale(
        flops_ratio_at, 0.4)
    with pytest.raises(ValueError, match='out of reach'):
        tool.fit_scale(flops_ratio_at, 0.01)
    with pytest.raises(ValueError, match=r'in \(0, 1\)'):
        tool.fit_scale(flops_ratio_at, 1.2)


def test_voc_flops_takes_a_ratio_or_the_demo_shares():
    tool = load_tool('analysis/benchmark_detection')
    assert tool.flops_ratio_or_demo('0.7') == 0.7
    assert tool.flops_ratio_or_demo('demo') is None
    for bad in ('1.5', '0', 'seventy'):
        with pytest.raises(tool.argparse.ArgumentTypeError, match=bad):
            tool.flops_ratio_or_demo(bad)


def test_each_timed_iteration_draws_its_own_batch(monkeypatch):
    """A model's iterations are timed on the next batches of a run's
    dataloader, one model after the other, as training draws them."""
    tool = load_tool('analysis/benchmark_detection')
    monkeypatch.setattr(tool, 'build_optim_wrapper', lambda model, cfg: None)
    seen = []

    class Model:
        def __init__(self, name):
            self.name = name

        def train(self):
            return self

        def train_step(self, batch, wrapper):
            seen.append((self.name, batch))

    # a clock that a fetch moves by 1 and a step by 10 (model a) or 20 (b)
    clock = [0.]
    monkeypatch.setattr(tool.time, 'perf_counter', lambda: clock[0])

    class Loader(list):
        def __iter__(self):
            for batch in list.__iter__(self):
                clock[0] += 1
                yield batch

    class Timed(Model):
        def train_step(self, batch, wrapper):
            clock[0] += 10 if self.name == 'a' else 20
            super().train_step(batch, wrapper)

    loader = Loader(['b0', 'b1', 'b2'])
    times = tool.step_times([lambda: Timed('a'), lambda: Timed('b')],
                            tool.endless(loader), None, repeats=3)
    assert times == [11, 21]  # the fetch is in the timed iteration
    # 2 warm-up and 3 timed iterations each, the loader restarting
    assert seen == [('a', 'b0'), ('a', 'b1'), ('a', 'b2'), ('a', 'b0'),
                    ('a', 'b1'), ('b', 'b2'), ('b', 'b0'), ('b', 'b1'),
                    ('b', 'b2'), ('b', 'b0')]
