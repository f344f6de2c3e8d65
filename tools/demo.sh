#!/usr/bin/env bash
# The main demo, on a machine with no PascalVOC: install what is missing,
# write a small VOC-format dataset of drawn shapes, train Faster R-CNN VGG16
# from scratch while RPGP prunes its backbone (about 2-3 minutes on 2 CPU
# cores), evaluate the VOC 11-point mAP, evaluate the pruned checkpoint again
# with tools/test.py, and write the pruning report.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup_env.sh"
cd "$root"
py=.venv/bin/python
data=data/shapes_voc
work=work_dirs/demo_faster_rcnn_vgg16_shapes_rpgp
config=configs/demo/faster_rcnn_vgg16_shapes_rpgp.py

[[ -f $data/VOC2007/ImageSets/Main/test.txt ]] || $py tools/data/make_shapes_voc.py $data
$py tools/train.py $config --work-dir $work
$py tools/test.py $config $work/iter_300.pth --work-dir $work/test
$py tools/analysis/pruning_report.py $work
