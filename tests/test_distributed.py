"""Two gloo processes through tools/dist_train.sh: every rank prunes the
same channels (rank 0 decides), through masks, hard prunes and a resume
that restores each rank's random generators."""
import json
import os
import os.path as osp
import socket
import subprocess

from conftest import ROOT, config_path

RPGP = config_path('classification', 'resnet20_mnist_rpgp.py')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


CONFIG = f"""
_base_ = [{RPGP!r}]
custom_imports = dict(imports=['prunedet', 'dist_probe'],
                      allow_failed_imports=False)
train_dataloader = dict(
    batch_size=32, num_workers=0,
    dataset=dict(pipeline=[dict(type='RankSizedResize'),
                           dict(type='PackInputs')]))
val_cfg = val_dataloader = val_evaluator = None
test_cfg = test_dataloader = test_evaluator = None
train_cfg = dict(max_epochs=2, val_interval=100)
custom_hooks = [dict(_base_.custom_hooks[0], interval=2, soft_mode='mask',
                     global_ranking=True),
                dict(type='RankDigestHook')]
"""


def dist_train(work_dir, mnist_root, *extra):
    config = osp.join(str(work_dir), 'dist_rpgp.py')
    with open(config, 'w') as f:
        f.write(CONFIG)
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1',
               PYTHONPATH=osp.join(ROOT, 'tests'))
    cmd = [
        osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2', '--data-root',
        mnist_root, '--work-dir', str(work_dir), *extra
    ]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def digests(work_dir):
    return [[json.loads(line) for line in open(
        osp.join(str(work_dir), f'digest_rank{r}.jsonl'))] for r in (0, 1)]


def test_ranks_stay_identical_through_hard_prunes_and_a_resume(
        tmp_path, mnist_root):
    dist_train(tmp_path, mnist_root)
    rank0, rank1 = digests(tmp_path)
    assert len(rank0) == len(rank1) >= 3  # start + every step
    assert rank0 == rank1  # same channels, weights, optimizer state
    first, last = rank0[0], rank0[-1]
    assert last['steps'] == 3 and last['arch'] != first['arch']  # pruned
    # resume from the first epoch's checkpoint: the same steps again
    for r in (0, 1):
        os.rename(osp.join(str(tmp_path), f'digest_rank{r}.jsonl'),
                  osp.join(str(tmp_path), f'full_rank{r}.jsonl'))
    dist_train(tmp_path, mnist_root, '--resume',
               osp.join(str(tmp_path), 'epoch_1.pth'))
    resumed0, resumed1 = digests(tmp_path)
    assert resumed0 == resumed1
    after = [d for d in rank0 if d['iter'] > resumed0[0]['iter']]
    assert resumed0[1:] == after  # bit-exact continuation on both ranks
