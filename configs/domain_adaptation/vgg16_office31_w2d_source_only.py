_base_ = ['./_base_/source_only.py', '../_base_/datasets/office31_w2d.py']
