_base_ = [
    './_base_/mmd.py', './_base_/tcp.py', '../_base_/datasets/office31_a2d.py'
]
# TCP prunes the trained MMD model of the same transfer
load_from = 'work_dirs/vgg16_office31_a2d_mmd/iter_10000.pth'
