"""Checkpoints are untrusted input, written atomically, resumed safely."""
import glob
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import save_checkpoint

from conftest import config_path
from prunedet.engine.checkpoints import (UntrustedCheckpointError,
                                         find_resume_checkpoint, from_plain,
                                         load_file, to_plain, use_safe_loaders,
                                         write_atomic)
from test_tools_and_readme import load_tool

RPGP = config_path('classification', 'resnet20_mnist_rpgp.py')
QUICK = [
    'train_cfg.max_epochs=2', 'train_dataloader.batch_size=64',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0', 'custom_hooks.0.interval=2'
]


class Payload:
    """Unpickling this runs a shell command (what an attacker would ship)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.fixture(scope='module')
def trained(tmp_path_factory, mnist_root):
    """A pruned run of two epochs: (work dir, its checkpoints)."""
    work = tmp_path_factory.mktemp('trained')
    load_tool('train').main([
        RPGP, '--data-root', mnist_root, '--work-dir',
        str(work), '--cfg-options', *QUICK, f'experiment_name=io_{id(work)}'
    ])
    return work


@pytest.fixture
def evil(tmp_path, trained):
    """A real checkpoint of ours with a payload added."""
    marker = tmp_path / 'pwned'
    ckpt = torch.load(str(trained / 'epoch_2.pth'), weights_only=True)
    ckpt['meta']['note'] = Payload(str(marker))
    path = str(tmp_path / 'evil.pth')
    torch.save(ckpt, path)
    return path, marker


def test_our_checkpoints_hold_plain_data_only(trained):
    for name in ('epoch_1.pth', 'epoch_2.pth'):
        path = str(trained / name)
        assert torch.serialization.get_unsafe_globals_in_checkpoint(path) \
            == []
        ckpt = torch.load(path, weights_only=True)  # no allowlist needed
        assert 'architecture' in ckpt and 'pruning' in ckpt


def test_plain_message_hub_round_trip(tmp_path):
    path = str(tmp_path / 'a.pth')
    ckpt = {'message_hub': {'log_scalars': {
        'loss': HistoryBuffer([1., 2.], [1, 1])},
        'runtime_info': {'eta': np.float64(3.5)}},
            'meta': {'seed': np.int64(3)}}
    to_plain(ckpt)
    save_checkpoint(ckpt, path)
    loaded = torch.load(path, weights_only=True)  # torch's own default
    from_plain(loaded)
    buf = loaded['message_hub']['log_scalars']['loss']
    assert isinstance(buf, HistoryBuffer) and buf.mean() == 1.5
    assert loaded['message_hub']['runtime_info']['eta'] == 3.5


def test_a_crafted_checkpoint_is_refused_on_every_path(
        tmp_path, evil, trained, mnist_root, monkeypatch):
    path, marker = evil
    common = ['--data-root', mnist_root, '--cfg-options', *QUICK]

    def refused(run):
        with pytest.raises(UntrustedCheckpointError,
                           match=r'posix.system.*--trust-checkpoint'):
            run()
        assert not marker.exists()

    # tools/test.py
    refused(lambda: load_tool('test').main(
        [RPGP, path, '--work-dir', str(tmp_path / 't'), *common]))
    # --resume FILE, and load_from
    refused(lambda: load_tool('train').main(
        [RPGP, '--resume', path, '--work-dir', str(tmp_path / 'r'), *common]))
    refused(lambda: load_tool('train').main(
        [RPGP, '--work-dir', str(tmp_path / 'l'), *common,
         f'load_from={path}']))
    # auto-resume through last_checkpoint
    work = tmp_path / 'auto'
    work.mkdir()
    shutil.copy(path, str(work / 'epoch_1.pth'))
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    refused(lambda: load_tool('train').main(
        [RPGP, '--resume', '--work-dir', str(work), *common]))
    # init_cfg Pretrained
    refused(lambda: load_tool('train').main(
        [RPGP, '--work-dir', str(tmp_path / 'i'), *common,
         'model.backbone.init_cfg.type=Pretrained',
         f'model.backbone.init_cfg.checkpoint={path}']))
    # the report tool
    shutil.copy(str(trained / 'epoch_2.pth'), str(tmp_path / 'epoch_2.pth'))
    refused(lambda: load_tool('analysis/pruning_report').main(
        [str(tmp_path), '--checkpoint', path]))
    # URLs and mmengine's model names: downloaded (here: copied), refused
    from mmengine.runner.checkpoint import _load_checkpoint
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, **kw: shutil.copy(path, dst))
    use_safe_loaders()
    refused(lambda: _load_checkpoint('https://example.com/evil.pth'))
    shutil.rmtree(str(tmp_path / 'hub'))
    refused(lambda: _load_checkpoint('modelzoo://vgg16'))


def test_trust_checkpoint_loads_a_foreign_file_the_user_vouches_for(
        tmp_path, trained, mnist_root):
    """mmengine's own checkpoints pickle HistoryBuffer's methods through
    builtins.getattr: refused by default, loaded when trusted."""
    ckpt = torch.load(str(trained / 'epoch_2.pth'), weights_only=True)
    from_plain(ckpt)  # back to mmengine's own format
    path = str(tmp_path / 'mmengine.pth')
    torch.save(ckpt, path)
    args = [RPGP, path, '--data-root', mnist_root, '--work-dir',
            str(tmp_path / 'test'), '--cfg-options', *QUICK]
    with pytest.raises(UntrustedCheckpointError, match='builtins.getattr'):
        load_tool('test').main(args)
    metrics = load_tool('test').main(args + ['--trust-checkpoint'])
    assert metrics['accuracy/top1'] > 10.  # trained weights, not random


def test_pruned_checkpoint_in_an_unpruned_config_and_a_wrong_one(
        tmp_path, trained, mnist_root):
    ckpt = str(trained / 'epoch_2.pth')
    args = ['--data-root', mnist_root, '--cfg-options', *QUICK[1:5]]
    pruned = load_tool('test').main(
        [RPGP, ckpt, '--work-dir', str(tmp_path / 'a'), *args])
    plain_config = config_path('classification', 'resnet20_mnist.py')
    unpruned = load_tool('test').main(
        [plain_config, ckpt, '--work-dir', str(tmp_path / 'b'), *args])
    assert unpruned == pruned  # rebuilt from the checkpoint's record
    lenet = config_path('classification', 'lenet5_mnist.py')
    with pytest.raises(Exception,
                       match='does not fit|refused its architecture record'):
        load_tool('test').main(
            [lenet, ckpt, '--work-dir', str(tmp_path / 'c'), *args])


def test_resume_without_last_checkpoint_takes_the_newest_complete_one(
        tmp_path, trained):
    work = tmp_path / 'work'
    shutil.copytree(str(trained), str(work))
    os.remove(str(work / 'last_checkpoint'))
    assert find_resume_checkpoint(str(work)) == str(work / 'epoch_2.pth')
    # a truncated newest file: back to the previous one, with a warning
    data = (work / 'epoch_2.pth').read_bytes()
    (work / 'epoch_2.pth').write_bytes(data[:len(data) // 2])
    (work / '.epoch_3.pth.x1y2.tmp').write_bytes(b'half a checkpoint')
    os.utime(str(work / '.epoch_3.pth.x1y2.tmp'), (0, 0))  # long orphaned
    warnings = []

    class Log:
        warning = staticmethod(warnings.append)

    assert find_resume_checkpoint(str(work), Log) == str(work / 'epoch_1.pth')
    assert any('incomplete' in w for w in warnings)
    assert not (work / '.epoch_3.pth.x1y2.tmp').exists()
    (work / 'epoch_1.pth').write_bytes(b'')
    with pytest.raises(RuntimeError, match='every checkpoint .* incomplete'):
        find_resume_checkpoint(str(work))
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert find_resume_checkpoint(str(empty)) is None


def test_resume_tool_continues_from_the_newest_without_pointer(
        tmp_path, trained, mnist_root):
    work = tmp_path / 'work'
    shutil.copytree(str(trained), str(work))
    os.remove(str(work / 'last_checkpoint'))
    before = os.path.getmtime(str(work / 'epoch_2.pth'))
    runner = load_tool('train').main([
        RPGP, '--resume', '--data-root', mnist_root, '--work-dir',
        str(work), '--cfg-options', *QUICK[1:],
        'train_cfg.max_epochs=3', f'experiment_name=resume_{id(work)}'
    ])
    assert runner.iter == 3 * 4  # started at epoch 2, not from scratch
    assert os.path.getmtime(str(work / 'epoch_2.pth')) == before
    assert (work / 'epoch_3.pth').exists()


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / 'latest.pth')
    write_atomic(b'one', path)
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)

    def crash(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='disk full'):
        write_atomic(b'two', path)
    monkeypatch.undo()
    assert open(path, 'rb').read() == b'one'
    assert os.listdir(str(tmp_path)) == ['latest.pth']  # no temp left over


def test_old_checkpoints_are_deleted_only_after_the_new_one_is_written(
        tmp_path, mnist_root, monkeypatch):
    """mmengine's CheckpointHook deletes the oldest file first: a crash in
    the save then leaves fewer checkpoints than max_keep_ckpts."""
    import prunedet.engine.checkpoints as io
    from runner_utils import build_runner, small_cfg
    cfg = small_cfg('classification/resnet20_mnist.py', tmp_path, mnist_root,
                    **{'default_hooks.checkpoint.max_keep_ckpts': 1})
    real = io.write_atomic
    calls = []

    def crash_third_checkpoint(data, filepath):
        if filepath.endswith('.pth'):
            calls.append(filepath)
            if len(calls) == 3:
                raise OSError('killed while saving')
        real(data, filepath)

    monkeypatch.setattr(io, 'write_atomic', crash_third_checkpoint)
    with pytest.raises(OSError, match='killed'):
        build_runner(cfg).train()
    left = sorted(p.name for p in tmp_path.glob('*.pth'))
    assert left == ['epoch_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('epoch_2.pth')
    assert load_file(str(tmp_path / 'epoch_2.pth'))['meta']['epoch'] == 2


def test_the_previous_best_checkpoint_survives_a_crash_saving_the_next(
        tmp_path, mnist_root, monkeypatch):
    import prunedet.engine.checkpoints as io
    from runner_utils import build_runner, small_cfg
    cfg = small_cfg('classification/resnet20_mnist.py', tmp_path, mnist_root,
                    **{'train_cfg.max_epochs': 1,
                       'default_hooks.checkpoint.save_best': 'accuracy/top1'})
    runner = build_runner(cfg)
    runner.train()
    best, = tmp_path.glob('best_*.pth')
    hook = next(h for h in runner.hooks if type(h).__name__ ==
                'SafeCheckpointHook')

    def killed(data, filepath):
        raise OSError('killed while saving')

    monkeypatch.setattr(io, 'write_atomic', killed)
    runner.train_loop._epoch = 2  # a later, better epoch
    with pytest.raises(OSError, match='killed'):
        hook._save_best_checkpoint(runner, {'accuracy/top1': 101.})
    assert best.exists() and load_file(str(best))['meta']['epoch'] == 1


def test_trusting_one_url_never_unpickles_a_file_from_another(
        tmp_path, evil, trained, monkeypatch):
    """torch.hub caches by file name: a refused download from one URL must
    not be what a trusted URL of the same file name loads."""
    from mmengine.runner.checkpoint import _load_checkpoint
    path, marker = evil
    good = str(trained / 'epoch_2.pth')
    served = {'https://a.example/model.pth': path,
              'https://b.example/model.pth': good}
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    monkeypatch.setattr(torch.hub, 'download_url_to_file',
                        lambda url, dst, **kw: shutil.copy(served[url], dst))
    use_safe_loaders(['https://b.example/model.pth'])
    with pytest.raises(UntrustedCheckpointError,
                       match=r"https://a.example/model.pth.*deleted"):
        _load_checkpoint('https://a.example/model.pth')
    assert os.listdir(str(tmp_path / 'hub' / 'checkpoints')) == []
    checkpoint = _load_checkpoint('https://b.example/model.pth')
    assert not marker.exists() and 'state_dict' in checkpoint


def test_an_old_format_file_is_refused_naming_the_global(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'legacy.pth')
    torch.save({'x': Payload(str(marker))}, path,
               _use_new_zipfile_serialization=False)
    with pytest.raises(UntrustedCheckpointError, match='names posix.system'):
        load_file(path)
    assert not marker.exists()


def test_a_pruned_checkpoint_fine_tunes_in_a_config_without_the_hook(
        tmp_path, trained, mnist_root):
    """load_from in a stock config: the pruned model is rebuilt and its
    weights loaded, not left at random initialisation."""
    ckpt = str(trained / 'epoch_2.pth')
    plain_config = config_path('classification', 'resnet20_mnist.py')
    runner = load_tool('train').main([
        plain_config, '--data-root', mnist_root, '--work-dir',
        str(tmp_path / 'ft'), '--cfg-options', *QUICK[1:5],
        'train_cfg.max_epochs=1', 'optim_wrapper.optimizer.lr=0.',
        f'load_from={ckpt}', f'experiment_name=ft_{id(tmp_path)}'
    ])
    saved = torch.load(ckpt, weights_only=True)['state_dict']
    now = runner.model.state_dict()
    assert now.keys() == saved.keys()
    # lr 0 (and no momentum yet): the loaded weights are what training kept
    name = 'backbone.layer1.0.conv1.weight'
    assert now[name].shape == saved[name].shape
    assert torch.equal(now[name], saved[name])


def test_load_from_a_pruned_checkpoint_prunes_anew(tmp_path, trained,
                                                   mnist_root):
    ckpt = str(trained / 'epoch_2.pth')
    saved = torch.load(ckpt, weights_only=True)
    assert saved['pruning']['finished']
    runner = load_tool('train').main([
        RPGP, '--data-root', mnist_root, '--work-dir', str(tmp_path / 'again'),
        '--cfg-options', *QUICK, 'train_cfg.max_epochs=1',
        f'load_from={ckpt}', f'experiment_name=again_{id(tmp_path)}'
    ])
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ProgressivePruningHook')
    assert hook.finished and hook.steps_done >= 1
    name = 'backbone.layer1.0.conv1.weight'
    assert runner.model.state_dict()[name].shape[0] < \
        saved['state_dict'][name].shape[0]
    log, = glob.glob(str(tmp_path / 'again' / '*' / '*.log'))
    assert 'this run prunes it anew' in open(log).read()


def test_pruning_report_skips_a_truncated_newest_checkpoint(
        tmp_path, trained):
    work = tmp_path / 'work'
    shutil.copytree(str(trained), str(work))
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    data = (work / 'epoch_2.pth').read_bytes()
    (work / 'epoch_2.pth').write_bytes(data[:len(data) // 2])
    report_tool = load_tool('analysis/pruning_report')
    report, plot = report_tool.main([str(work)])
    ckpt = torch.load(str(work / 'epoch_1.pth'), weights_only=True)
    assert report == report_tool.table(ckpt['pruning'],
                                       ckpt['architecture']['channels'],
                                       ckpt['state_dict'])
    assert osp.isfile(plot)


def test_pruning_report_names_the_work_dir_and_survives_zeros(
        tmp_path, trained):
    report_tool = load_tool('analysis/pruning_report')
    with pytest.raises(FileNotFoundError, match=f'no checkpoint.*{tmp_path}'):
        report_tool.main([str(tmp_path)])
    ckpt = torch.load(str(trained / 'epoch_2.pth'), weights_only=True)
    ckpt['pruning'].update(original_params=0, original_flops=None)
    name = next(iter(ckpt['pruning']['original']))
    ckpt['pruning']['original'][name] = 0
    torch.save(ckpt, str(tmp_path / 'epoch_2.pth'))
    with pytest.raises(FileNotFoundError, match=f'no training log in '
                       f'{tmp_path}.*--no-plot'):
        report_tool.main([str(tmp_path)])
    report, _ = report_tool.main([str(tmp_path), '--no-plot'])
    params = next(row for row in report.splitlines()
                  if row.startswith('parameters'))
    assert params.split()[-1] == 'n/a'  # after / before: no before
    assert next(row for row in report.splitlines()
                if row.startswith(name + ' ')).endswith('n/a')
