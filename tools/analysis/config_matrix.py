"""Every shipped config through the whole tool chain, on tiny generated data.

    python tools/analysis/config_matrix.py [--work-dir DIR] [--only SUBSTR ...]

For each config under ``configs/`` (``_base_`` folders excepted), in
dependency order (a config whose ``load_from`` names another config's work
dir runs after it, from its output):

1. ``train``:  ``tools/train.py`` for two short epochs (or 4 iterations);
2. ``resume``: ``tools/train.py --resume`` from the first checkpoint, into
   a new work dir, to the end again;
3. ``test``:   ``tools/test.py`` on the resumed run's last checkpoint;
4. ``export``: ``tools/deployment/export.py`` on it;
5. ``report``: ``tools/analysis/pruning_report.py`` on the resumed run
   (``n/a`` without a pruning hook).

A GAL or DCP selection stage's result is not a training state of its own
config: it is tested and exported with the config that loads it next (the
fine-tune / stage 3), as a user does. The data is generated in the real
formats (MNIST IDX, CIFAR-10 batches, VOC devkit, domain folders), the
images and batches are small and pretrained weights are skipped
(:func:`tiny_config`); the tests use the same settings. Each finished row is
kept in ``DIR/results.json``, so an interrupted run continues where it
stopped; ``DIR/matrix.md`` is the table. Exits 1 if any step failed.
"""
import argparse
import copy
import functools
import glob
import json
import os
import os.path as osp
import re
import sys
import time
import traceback

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TOOLS)
from common import ROOT  # noqa: E402  (puts prunedet on the path)

CONFIGS = osp.join(ROOT, 'configs')
STEPS = ('train', 'resume', 'test', 'export', 'report')
DETECTION_SIZE = 128  # tiny VOC images, and the detectors' input
OFFICE_SIZE = 32  # Office-31 images, and the DA models' input
# batch sizes; else 16 (of 64 training images)
BATCH = dict(shapes=2, voc=2, office=4, digits=4)


def shipped_configs(root: str = CONFIGS) -> list:
    """Every config file under ``root`` outside ``_base_`` folders,
    relative to ``root``."""
    found = glob.glob(osp.join(root, '**', '*.py'), recursive=True)
    return sorted(osp.relpath(f, root) for f in found
                  if '_base_' not in osp.relpath(f, root).split(os.sep))


def data_kind(cfg) -> str:
    """Which generated data set replaces the config's ``data_root``."""
    name = osp.basename(osp.normpath(cfg.get('data_root') or ''))
    kinds = dict(mnist='mnist', fashion_mnist='mnist', cifar10='cifar10',
                 digits='digits', office31='office', shapes_voc='shapes',
                 VOCdevkit='voc')
    kinds.update((kind, kind) for kind in set(kinds.values()))  # generated
    if name not in kinds:
        raise ValueError(f'no generated data for data_root {name!r}')
    return kinds[name]


def write_tiny_data(root: str, kind: str) -> str:
    """Write (once) the generated data of ``kind`` under ``root``; returns
    the folder to use as ``data_root``."""
    out = osp.join(root, kind)
    done = osp.join(out, '.complete')
    if osp.isfile(done):
        return out
    if kind == 'mnist':
        from prunedet.datasets.synthetic import write_mnist
        write_mnist(out, 64, 32)
    elif kind == 'cifar10':
        from prunedet.datasets.synthetic import write_cifar10
        write_cifar10(out, 64, 32)
    elif kind == 'digits':
        from prunedet.datasets.synthetic_office import write_domains
        write_domains(out, dict(uci='amazon', mnist='webcam'),
                      [str(d) for d in range(10)], 2, 32)
    elif kind == 'office':
        from prunedet.datasets.synthetic_office import write_office31
        write_office31(out, ('amazon', 'webcam', 'dslr'), 1, OFFICE_SIZE)
    elif kind == 'shapes':
        from prunedet.datasets.synthetic_voc import write_shapes_voc
        write_shapes_voc(out, 8, 4, size=(DETECTION_SIZE, ) * 2)
    elif kind == 'voc':
        import shutil

        from prunedet.datasets.synthetic_voc import write_shapes_voc
        # shapes named as VOC classes, at twice the input size (the VOC
        # configs drop boxes under 32 pixels)
        write_shapes_voc(out, 8, 4, size=(2 * DETECTION_SIZE, ) * 2,
                         classes=('aeroplane', 'bicycle', 'bird'))
        # VOC07+12 configs read a VOC2012 too: the same images will do
        shutil.copytree(osp.join(out, 'VOC2007'), osp.join(out, 'VOC2012'),
                        dirs_exist_ok=True)
    else:
        raise ValueError(f'unknown data kind {kind!r}')
    open(done, 'w').close()
    return out


def _walk(node, visit):
    """Call ``visit`` on every dict inside ``node`` (lists included)."""
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, (list, tuple)):
        for item in node:
            _walk(item, visit)


def tiny_config(config: str, data_root: str, work_dir: str,
                load_from: str = None):
    """``configs/<config>`` on the generated data with tiny settings:
    2 epochs (or 4 iterations) of small batches, a checkpoint after each
    half, pruning steps every iteration or two, small images for the
    detectors and the Office-31 models, no pretrained weights (none can be
    downloaded), ``load_from`` replaced by ``load_from``."""
    from prunedet.utils.config import set_data_root
    cfg = copy.deepcopy(read_config(config))
    kind = data_kind(cfg)
    set_data_root(cfg, data_root)
    cfg.work_dir, cfg.launcher = work_dir, 'none'
    size = dict(shapes=DETECTION_SIZE, voc=DETECTION_SIZE,
                office=OFFICE_SIZE).get(kind)

    def shrink(node):
        kind_of = node.get('type')
        if size and kind_of == 'Resize':
            node['scale'] = (size, size)
        if size and 'crop_size' in node:
            node['crop_size'] = size
        if kind_of == 'RepeatDataset':
            node['times'] = 1

    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        _walk(cfg.get(key), shrink)
    _walk(cfg.model, _drop_pretrained)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader:
            loader.update(num_workers=0, persistent_workers=False,
                          batch_size=min(loader.batch_size,
                                         BATCH.get(kind, 16)))
    train = cfg.train_cfg
    if train.get('type') == 'DCPSelectionLoop':
        train.update(samples=16, sub_steps=1)
    elif 'max_iters' in train:
        train.update(max_iters=4, val_interval=2)
        cfg.default_hooks.checkpoint.update(interval=2, by_epoch=False)
    else:
        train.update(max_epochs=2, val_interval=1)
        cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger.interval = 1
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('type') == 'ProgressivePruningHook':
            hook.interval = 1 if hook.get('by_epoch', True) else 2
            if size and hook.get('input_shape'):
                hook.input_shape = (3, size, size)
    cfg.load_from = load_from
    cfg.resume = False
    cfg.experiment_name = f'matrix_{os.getpid()}_{time.time_ns()}'
    return cfg


def _drop_pretrained(node):
    """Pretrained weights cannot be had offline: train from scratch."""
    init = node.get('init_cfg')
    if isinstance(init, dict) and init.get('type') == 'Pretrained':
        node['init_cfg'] = None
    elif isinstance(init, list):
        node['init_cfg'] = [i for i in init if i.get('type') != 'Pretrained']


@functools.lru_cache(maxsize=None)
def read_config(config: str):
    """``configs/<config>`` as shipped (read once; do not modify)."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(CONFIGS, config))


def upstream(config: str, configs: list = None):
    """The shipped config whose output ``config``'s ``load_from`` names
    (``work_dirs/<name>/...``), or None."""
    load_from = read_config(config).get('load_from')
    match = re.match(r'(?:\./)?work_dirs/([^/]+)/', load_from or '')
    if not match:
        return None
    for other in configs or shipped_configs():
        if osp.splitext(osp.basename(other))[0] == match.group(1):
            return other
    raise ValueError(f'{config}: load_from {load_from!r} names no shipped '
                     'config')


def dependency_order(configs: list) -> list:
    """``configs`` with every config after the one it loads from."""
    every = shipped_configs()
    done, order = set(), []

    def add(config):
        if config in done:
            return
        up = upstream(config, every)
        if up is not None:
            add(up)
        done.add(config)
        order.append(config)

    for config in configs:
        add(config)
    return order


def evaluated_with(config: str, configs: list = None) -> str:
    """The config that tests and exports ``config``'s result: the next
    stage's for a GAL or DCP selection stage (their result is a plain
    pruned classifier), else ``config`` itself."""
    cfg = read_config(config)
    if cfg.model.get('type') != 'GAL' and cfg.train_cfg.get(
            'type') != 'DCPSelectionLoop':
        return config
    for other in configs or shipped_configs():
        if upstream(other, configs) == config:
            return other
    raise ValueError(f'{config}: no shipped config loads its result')


def load_tool(name: str):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        f'tool_{name.replace("/", "_")}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkpoints(work_dir: str) -> list:
    """The run's checkpoints, oldest first."""
    def number(path):
        return int(re.findall(r'\d+', osp.basename(path))[-1])
    return sorted(glob.glob(osp.join(work_dir, '*_[0-9]*.pth')), key=number)


def input_shape(cfg) -> tuple:
    """(C, H, W) of one test image, as the model's preprocessor gets it."""
    from mmengine.registry import DefaultScope
    from mmengine.registry import DATASETS
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
    return tuple(dataset[0]['inputs'].shape)


def run_chain(config: str, data: str, work_dir: str,
              load_from: str = None, configs: list = None,
              steps=STEPS, formats=('onnx', 'pt2')) -> dict:
    """Run ``steps`` of the chain (``train`` always) on
    ``configs/<config>``, exporting to ``formats``. Returns ``{step:
    dict(ok=bool|None, seconds, error, ...)}`` (``ok=None``: not run or not
    applicable; no step runs after a failure). The checkpoints are under
    ``work_dir`` (``resumed/`` for the second run); the final one is
    ``result['checkpoint']``."""
    os.makedirs(work_dir, exist_ok=True)
    train, test = load_tool('train').main, load_tool('test').main
    export = load_tool('deployment/export').main
    report = load_tool('analysis/pruning_report').main
    resumed = osp.join(work_dir, 'resumed')
    files, state = {}, {}

    def prepare():
        """Write the tiny config (and the one evaluating its result)."""
        cfg = tiny_config(config, data, work_dir, load_from)
        files['train'] = osp.join(work_dir, 'config.py')
        cfg.dump(files['train'])
        files['pruning'] = any(h.get('type') == 'ProgressivePruningHook'
                               for h in cfg.get('custom_hooks') or [])
        evaluate = evaluated_with(config, configs)
        if evaluate != config:
            cfg = tiny_config(evaluate, data, work_dir)
            cfg.dump(osp.join(work_dir, 'evaluated_with.py'))
        files['eval'] = osp.join(work_dir, 'evaluated_with.py'
                                 if evaluate != config else 'config.py')
        files['shape'] = [str(n) for n in input_shape(cfg)]

    def final():
        found = checkpoints(resumed) or checkpoints(work_dir)
        if not found:
            raise FileNotFoundError(f'no checkpoint in {resumed}')
        return found[-1]

    actions = dict(
        train=lambda: (prepare(), train([files['train'], '--work-dir',
                                         work_dir]))[1],
        resume=lambda: train([files['train'], '--work-dir', resumed,
                              '--resume', checkpoints(work_dir)[0]]),
        test=lambda: test([files['eval'], final(), '--work-dir',
                           osp.join(work_dir, 'test')]),
        export=lambda: export([files['eval'], final(), '--shape',
                               *files['shape'], '--formats', *formats,
                               '--out-dir', osp.join(work_dir, 'deploy')]),
        report=lambda: report([resumed]),
    )
    failed = False
    for step in STEPS:
        row = state[step] = dict(ok=None, seconds=0.)
        if failed or (step != 'train' and step not in steps) or (
                step == 'report' and not files.get('pruning')):
            continue
        start = time.perf_counter()
        try:
            row['value'] = actions[step]()
            row['ok'] = True
        except BaseException as error:  # noqa: B036  (SystemExit included)
            if isinstance(error, KeyboardInterrupt):
                raise
            row.update(ok=False, error=_first_line(error),
                       traceback=traceback.format_exc())
            failed = True
        row['seconds'] = round(time.perf_counter() - start, 2)
    try:
        state['checkpoint'] = final()
    except FileNotFoundError:
        state['checkpoint'] = None
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f'{type(error).__name__}: {text[0] if text else ""}'[:300]


def table(results: dict) -> str:
    """A markdown table: one row per config, each step's result and time,
    the first error line."""
    lines = ['| config | ' + ' | '.join(STEPS) + ' | error |',
             '|---' * (len(STEPS) + 2) + '|']
    for config, row in results.items():
        cells = []
        for step in STEPS:
            got = row.get(step, {})
            mark = {True: 'ok', False: 'FAIL', None: 'n/a'}[got.get('ok')]
            cells.append(f'{mark} {got.get("seconds", 0):.1f}s'
                         if got.get('ok') is not None else mark)
        error = next((row[s]['error'] for s in STEPS
                      if row.get(s, {}).get('ok') is False), '')
        lines.append(f'| {config} | ' + ' | '.join(cells) +
                     f' | {error.replace("|", "/")} |')
    return '\n'.join(lines)


def counts(results: dict) -> dict:
    """How many (config, step) cells passed, failed, did not apply."""
    out = dict(ok=0, failed=0, na=0, configs=len(results),
               configs_failed=0)
    for row in results.values():
        marks = [row.get(s, {}).get('ok') for s in STEPS]
        out['ok'] += marks.count(True)
        out['failed'] += marks.count(False)
        out['na'] += marks.count(None)
        out['configs_failed'] += False in marks
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/config_matrix')
    parser.add_argument('--only', nargs='+', metavar='SUBSTR',
                        help='only the configs whose path contains one of '
                        'these (and the configs they load from)')
    parser.add_argument('--rerun-failed', action='store_true',
                        help='run the configs that failed before again')
    args = parser.parse_args(argv)
    import prunedet  # noqa: F401  (registers prunedet's modules)
    every = shipped_configs()
    chosen = [c for c in every
              if not args.only or any(s in c for s in args.only)]
    os.makedirs(args.work_dir, exist_ok=True)
    saved = osp.join(args.work_dir, 'results.json')
    results = json.load(open(saved)) if osp.isfile(saved) else {}
    for config in dependency_order(chosen):
        old = results.get(config)
        if old and not (args.rerun_failed and
                        False in [old[s]['ok'] for s in STEPS]):
            continue
        up = upstream(config, every)
        start = results.get(up, {}) if up else {}
        load_from = start.get('checkpoint') if start.get(
            'train', {}).get('ok') else None
        if up and not load_from:  # its start is missing: not run
            results[config] = {step: dict(ok=None, seconds=0.)
                               for step in STEPS}
            results[config]['train'].update(
                ok=False, error=f'not run: {up} gave no checkpoint')
            continue
        kind = data_kind(read_config(config))
        data = write_tiny_data(osp.join(args.work_dir, 'data'), kind)
        work = osp.join(args.work_dir, 'runs', osp.splitext(config)[0])
        print(f'=== {config}', flush=True)
        row = run_chain(config, data, work, load_from, every)
        for step in STEPS:
            row[step].pop('value', None)
        results[config] = row
        with open(saved + '.tmp', 'w') as f:
            json.dump(results, f, indent=1)
        os.replace(saved + '.tmp', saved)
        print(table({config: row}).splitlines()[-1], flush=True)
    text = table(results)
    with open(osp.join(args.work_dir, 'matrix.md'), 'w') as f:
        f.write(text + '\n\n' + json.dumps(counts(results)) + '\n')
    print(text)
    print(counts(results))
    return 1 if counts(results)['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())
