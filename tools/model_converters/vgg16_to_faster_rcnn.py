"""Turn an ImageNet VGG16 state dict (torchvision key names) into a Faster
R-CNN VGG16 checkpoint: conv1_1..conv5_3 into the backbone, fc6/fc7 into the
bbox head's shared FCs (25088 -> 4096 -> 4096, the 7x7 RoI features flatten
exactly like VGG16's pool5 output). Use the result as ``load_from``.

    python tools/model_converters/vgg16_to_faster_rcnn.py vgg16.pth out.pth

For the backbone alone, no conversion is needed: ``backbone=dict(
init_cfg=dict(type='Pretrained', checkpoint='vgg16.pth'))``.
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

FC_KEYS = {
    'classifier.0': 'roi_head.bbox_head.shared_fcs.0',  # fc6
    'classifier.3': 'roi_head.bbox_head.shared_fcs.1',  # fc7
}


def convert(state: dict) -> OrderedDict:
    if 'state_dict' in state:
        state = state['state_dict']
    out = OrderedDict()
    for key, value in state.items():
        if key.startswith('features.'):
            out[f'backbone.{key}'] = value
        else:
            layer, _, param = key.rpartition('.')
            if layer in FC_KEYS:
                out[f'{FC_KEYS[layer]}.{param}'] = value
    if not any(k.startswith('backbone.') for k in out):
        raise KeyError('no torchvision VGG16 keys (features.N.*) found')
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='torchvision VGG16 state dict')
    parser.add_argument('dst', help='output checkpoint')
    args = parser.parse_args(argv)
    state = torch.load(args.src, map_location='cpu', weights_only=True)
    converted = convert(state)
    torch.save({'state_dict': converted, 'meta': {'source': args.src}},
               args.dst)
    print(f'{len(converted)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
