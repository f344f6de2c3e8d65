"""Prune every installed OpenMMLab CNN config at generated settings.

    nice -n 19 python tools/analysis/fuzz_models.py [--examples 3]
        [--minutes 40] [--match resnet] [--all-configs] [--out FILE]

The property of ``tests/test_openmmlab_random.py`` (its :func:`check`: a hard
prune equals the masked model at every step, mirrored attributes agree, the
checkpoint record rebuilds the model, a training step runs, the FLOPs meet
the target) over mmpretrain's and mmdet's own configs, more examples than
the suite affords. One config per config folder (``--all-configs``: every
one); models that do not build or run at a small input without pruning (not
CNN classifiers or detectors: self-supervised, multimodal, trackers) are
counted as not applicable. Settings come from ``hypothesis`` (seeded with
``--seed``, no shrinking), so a failure prints a setting to replay with
``check``. The counts and every failure go to stdout and ``--out`` (JSON).
"""
import argparse
import copy
import glob
import json
import random
import os.path as osp
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path[:0] = [ROOT, osp.join(ROOT, 'tests')]  # the property lives there

PACKAGES = ('mmpretrain', 'mmdet')
# chosen once per model, before the settings: inputs it runs at
SIZES = {'mmpretrain': (32, 64, 96, 128, 224), 'mmdet': (64, 128, 256)}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--examples', type=int, default=3,
                        help='generated settings per model')
    parser.add_argument('--minutes', type=float, default=40.,
                        help='stop starting models after this long')
    parser.add_argument('--match', default='',
                        help='only configs whose path contains this')
    parser.add_argument('--all-configs', action='store_true',
                        help='every config, not one per folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--shuffle', action='store_true',
                        help='configs in an order drawn from the seed (more '
                        'kinds of model when time is short)')
    parser.add_argument('--out', help='write the report as JSON here')
    return parser.parse_args()


def installed_configs(all_configs: bool):
    """``package::folder/file.py`` for the packages' own configs."""
    import importlib
    found = []
    for package in PACKAGES:
        root = osp.join(osp.dirname(importlib.import_module(package).__file__),
                        '.mim', 'configs')
        for folder in sorted(glob.glob(osp.join(root, '*'))):
            if osp.basename(folder).startswith('_') or \
                    not osp.isdir(folder):
                continue
            files = sorted(glob.glob(osp.join(folder, '*.py')),
                           key=lambda f: (len(f), f))  # the plain one first
            for f in files if all_configs else files[:1]:
                found.append(f'{package}::{osp.relpath(f, root)}')
    return found


def case_for(config: str):
    """A :class:`Case` for ``config`` and the model built from it, at the
    smallest input it runs a loss and a prediction at; or why not."""
    import torch
    from mmengine.config import Config
    from test_openmmlab_models import CASES, Case, build, samples, train_step

    scope = config.split('::')[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / 'config.py'
        path.write_text(f'_base_ = {config!r}\n')
        cfg = Config.fromfile(str(path))
        model_cfg = cfg.get('model', {})
        options = {}
        if model_cfg.get('test_cfg', {}).get('rpn') is not None:
            options['model.test_cfg.rpn.max_per_img'] = 50  # CPU time
        prunable = ['backbone'] if scope == 'mmpretrain' else \
            ['backbone', 'neck']
        case = Case(config, prunable, 0, options=options)
        for known in CASES.values():  # the matrix's prunable and options
            if known.config == config:
                case = Case(config, known.prunable, 0,
                            options=known.options, batch=known.batch)
                prunable = known.prunable
        model = build(case, Path(tmp))
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    if convs < 3:  # a transformer's patch embedding is one
        raise RuntimeError(f'{convs} Conv2d layers: not a CNN')
    if not all(hasattr(model, p) for p in prunable):
        raise RuntimeError(f'no {prunable}')
    errors = []
    for size in SIZES[scope]:
        case.size = size
        x = torch.randn(case.batch, 3, size, size)
        try:
            trial = copy.deepcopy(model)
            optimizer = torch.optim.SGD(trial.parameters(), lr=1e-4)
            train_step(trial, x, samples(case, trial, x), optimizer)
            return case, model
        except Exception as error:  # noqa: BLE001  (not applicable)
            errors.append(f'{size}: {type(error).__name__}: '
                          f'{str(error).splitlines()[0][:120]}')
    raise RuntimeError('; '.join(errors))


def fuzz(case, model, examples: int, seed: int, report: dict) -> None:
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings
    from hypothesis import strategies as st

    from test_openmmlab_random import check, settings_for

    sizes = st.sampled_from(sorted({case.size, case.size * 2}))

    @hypothesis_seed(seed + zlib.crc32(case.config.encode()))  # per model
    @settings(max_examples=examples, deadline=None, database=None,
              phases=(Phase.generate, ),
              suppress_health_check=list(HealthCheck))
    @given(setting=settings_for(case, sizes))
    def run(setting):
        start = time.time()
        try:
            result = check(case, setting, model)
        except Exception as error:  # noqa: BLE001  (a failure found)
            report['failed'].append(dict(
                config=case.config, setting=repr(setting),
                error=f'{type(error).__name__}: '
                f'{str(error).splitlines()[0] if str(error) else ""}',
                where=traceback.format_exc().splitlines()[-3].strip()))
            print('  FAILED', setting, report['failed'][-1]['error'],
                  flush=True)
            return
        report['tried'] += 1
        if 'refused' in result:
            report['refused' if result['groups'] else 'unprunable'] += 1
        print(f'  {setting} -> {result} ({time.time() - start:.0f} s)',
              flush=True)

    run()


def main():
    args = parse_args()
    import torch
    torch.set_num_threads(1)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine', log_level='WARNING')
    import prunedet.models.detectors  # noqa: F401  (two-stage tracing)

    start = time.time()
    report = dict(models=0, not_applicable={}, tried=0, refused=0,
                  unprunable=0, failed=[])
    configs = [c for c in installed_configs(args.all_configs)
               if args.match in c]
    if args.shuffle:
        random.Random(args.seed).shuffle(configs)
    for config in configs:
        if time.time() - start > args.minutes * 60:
            print('time is up', flush=True)
            break
        print(config, flush=True)
        try:
            case, model = case_for(config)
        except Exception as error:  # noqa: BLE001  (not a CNN we can run)
            report['not_applicable'][config] = \
                f'{type(error).__name__}: {str(error)[:200]}'
            print('  not applicable:', report['not_applicable'][config],
                  flush=True)
            continue
        report['models'] += 1
        fuzz(case, model, args.examples, args.seed, report)
        report['seconds'] = round(time.time() - start)
        if args.out:  # as it goes: a run cut short still reports
            with open(args.out, 'w') as f:
                json.dump(report, f, indent=1)
    report['seconds'] = round(time.time() - start)
    summary = (
        f"{report['models']} models x settings: "
        f"{report['tried'] + len(report['failed'])} tried, "
        f"{len(report['failed'])} failed, {report['refused']} targets "
        f"refused before any cut, {report['unprunable']} with no group the "
        f"graph can cut (all kept, logged); {len(report['not_applicable'])} "
        f"configs not applicable; {report['seconds']} s")
    print(summary)
    for failure in report['failed']:
        print(' ', failure)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()
