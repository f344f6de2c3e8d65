"""Imported by the distributed test's workers (custom_imports): gives each
rank different image sizes and random draws, and records what each rank
holds after every pruning step."""
import hashlib
import json
import os.path as osp

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, TRANSFORMS


@TRANSFORMS.register_module()
class RankSizedResize(BaseTransform):
    """Images of 28 + 8 * rank pixels: no two ranks see the same shapes.
    Then random flips with numpy, ``rank + 1`` draws an image: the ranks'
    generators part ways, so a resume must restore each rank's own."""

    def transform(self, results):
        size = 28 + 8 * dist.get_rank()
        img = mmcv.imresize(np.asarray(results['img']), (size, size))
        for _ in range(dist.get_rank() + 1):
            if np.random.rand() < 0.5:
                img = img[:, ::-1]
        results['img'] = np.ascontiguousarray(img)
        results['img_shape'] = (size, size)
        return results


def _digest(tensors) -> str:
    h = hashlib.sha1()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@HOOKS.register_module()
class RankDigestHook(Hook):
    """After every pruning step: architecture, parameters and optimizer
    state of this rank, one JSON line per step."""
    priority = 'LOWEST'

    def __init__(self):
        self.seen = -1

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        hook = next(h for h in runner.hooks
                    if type(h).__name__ == 'ProgressivePruningHook')
        if hook.steps_done == self.seen:
            return
        self.seen = hook.steps_done
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        named = list(model.named_parameters())
        opt = runner.optim_wrapper.optimizer
        state = [v for _, p in named for v in opt.state[p].values()
                 if hasattr(v, 'dim') and v.dim()]
        record = dict(
            iter=runner.iter + 1,
            steps=hook.steps_done,
            arch={n: list(p.shape) for n, p in named},
            params=_digest(p for _, p in named),
            optimizer=_digest(state))
        path = osp.join(runner.work_dir, f'digest_rank{dist.get_rank()}.jsonl')
        with open(path, 'a') as f:
            f.write(json.dumps(record) + '\n')
