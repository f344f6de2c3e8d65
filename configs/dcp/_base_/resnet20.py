# DCP on the CIFAR ResNet-20 (9 basic blocks).
# Stage 1: auxiliary losses after blocks 3, 6 and 9 (the public code's
# pivots: 9 // (P + 1) + 1 = 3 blocks apart, the last one at the output),
# each scaled as in the code by max(0.01, ((2b + 1) / (2 * 9 + 1))^2), b the
# blocks before the point.
dcp_model = dict(
    type='DCPClassifier',
    aux_points=['backbone.layer1.2', 'backbone.layer2.2', 'backbone.layer3.2'],
    aux_weights=[0.1357, 0.4681, 1.0])
# Stage 2: the internal channels of every block (conv1's outputs, conv2's
# inputs); the residual stream is never pruned.
dcp_layers = [
    f'backbone.layer{s}.{b}.conv2' for s in (1, 2, 3) for b in range(3)
]
