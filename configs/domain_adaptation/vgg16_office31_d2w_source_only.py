_base_ = ['./_base_/source_only.py', '../_base_/datasets/office31_d2w.py']
