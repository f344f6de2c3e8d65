_base_ = [
    './_base_/mmd.py', './_base_/rpgp.py', '../_base_/datasets/office31_a2w.py'
]
