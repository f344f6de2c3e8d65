# RPGP with a latency target: remove target_ratio of the batch-1 latency in
# onnxruntime (1 thread), i.e. the latency a FLOPs-target (0.5) run measured;
# the two are compared at equal latency in the README (Latency or FLOPs).
_base_ = ['./resnet20_fashion_mnist_rpgp.py']
custom_hooks = [
    dict(_base_.custom_hooks[0], target='latency', runtime='onnxruntime',
         target_ratio=0.44, round_to=8, latency_threads=1,
         input_shape=(1, 28, 28))
]
