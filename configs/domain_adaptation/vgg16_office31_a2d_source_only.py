_base_ = ['./_base_/source_only.py', '../_base_/datasets/office31_a2d.py']
