_base_ = [
    './_base_/mmd.py', './_base_/tcp.py', '../_base_/datasets/office31_a2d.py'
]
