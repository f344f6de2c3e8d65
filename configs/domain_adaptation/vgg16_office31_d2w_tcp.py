_base_ = [
    './_base_/mmd.py', './_base_/tcp.py', '../_base_/datasets/office31_d2w.py'
]
