"""Export a (pruned) checkpoint to a standalone model: BN folded into the
convs, ONNX and ``torch.export`` files, each checked against PyTorch.

    python tools/deployment/export.py CONFIG CHECKPOINT [--out-dir DIR]

A classifier becomes ``model.onnx`` (preprocessed image -> logits). A
two-stage detector becomes ``features.onnx`` (backbone + RPN head) and
``roi_head.onnx`` (RoIAlign + bbox head); proposals and the final boxes are
post-processed in PyTorch with mmdet (NMS does not export), as
``prunedet.deploy.runtime.OnnxTwoStageDetector`` does. ``deploy.json``
beside them says what each file takes and gives, and every check made.
"""
import argparse
import os.path as osp
import sys

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, TOOLS)
from common import add_checkpoint_args  # noqa: E402  (puts prunedet on the path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Export a pruned checkpoint to ONNX / torch.export')
    parser.add_argument('config', help='the config the checkpoint was '
                        'trained with')
    parser.add_argument('checkpoint', help='checkpoint file (pruned or not)')
    parser.add_argument(
        '--out-dir',
        help='where to write the files (default: <checkpoint dir>/deploy)')
    parser.add_argument(
        '--shape',
        nargs=3,
        type=int,
        metavar=('C', 'H', 'W'),
        help='one input image (default: the pruning hook\'s input_shape)')
    parser.add_argument(
        '--formats',
        nargs='+',
        choices=['onnx', 'pt2'],
        default=['onnx', 'pt2'],
        help='onnx: ONNX checked with onnxruntime; pt2: torch.export program')
    parser.add_argument('--atol', type=float, default=1e-5,
                        help='absolute tolerance of every check')
    parser.add_argument(
        '--rtol',
        type=float,
        default=1e-4,
        help='tolerance relative to the largest PyTorch output value')
    add_checkpoint_args(parser)
    return parser.parse_args(argv)


def input_shape(cfg, shape, config):
    """``--shape``, else the pruning hook's ``input_shape``."""
    if shape:
        return tuple(shape)
    for hook in cfg.get('custom_hooks') or []:
        if hook.get('input_shape'):
            return tuple(hook['input_shape'])
    raise ValueError(f'{config} names no input_shape (in its pruning hook): '
                     'give --shape C H W')


def preprocessor_of(cfg) -> dict:
    """The model's data preprocessor settings as plain data (mmdet's
    configs keep them in ``model``, mmpretrain's at the top level)."""
    from mmengine.config import ConfigDict
    found = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    return ConfigDict(found).to_dict()


def main(argv=None):
    args = parse_args(argv)
    for what, path in (('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist')
    import prunedet  # noqa: F401  (registers prunedet's modules)
    from prunedet.apis import init_model
    from prunedet.deploy import export_model

    try:
        model = init_model(args.config, args.checkpoint, 'cpu',
                           args.cfg_options, trusted=args.trust_checkpoint)
    except (KeyError, ValueError, RuntimeError) as e:
        raise ValueError(f'{args.checkpoint} does not fit the model of '
                         f'{args.config}: {e}') from e
    shape = input_shape(model.cfg, args.shape, args.config)
    out_dir = args.out_dir or osp.join(
        osp.dirname(osp.abspath(args.checkpoint)), 'deploy')
    info = export_model(
        model, shape, out_dir, args.formats, args.atol, args.rtol,
        info=dict(config=osp.abspath(args.config),
                  checkpoint=osp.abspath(args.checkpoint),
                  data_preprocessor=preprocessor_of(model.cfg)))
    print(f'{info["task"]} exported to {out_dir} (input {shape}; '
          f'{info["batchnorms_folded"]} BN folded, '
          f'{info["batchnorms_left"]} left)')
    print(f'checked against PyTorch: max|diff| <= {args.atol:g} + '
          f'{args.rtol:g} * max|output|; error relative to that bound:')
    for row in info['checks']:
        extra = (f' ({row["boxes"]} boxes; with the ONNX files '
                 f'{row["onnx_found"]:.1%} of them found again)'
                 if 'boxes' in row else '')
        print(f'  {row["part"]:10s} {row["what"]:42s} {row["error"]:.4f}'
              f'{extra}')
    return info


if __name__ == '__main__':
    main()
