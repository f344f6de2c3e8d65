# DCP on the CIFAR ResNet-56 (27 basic blocks).
# Stage 1: auxiliary losses after blocks 7, 14 and 21 (the public code's
# pivots for ResNet-56), each scaled as in the code by
# max(0.01, ((2b + 1) / (2 * 21 + 1))^2), b the blocks before the point.
dcp_model = dict(
    type='DCPClassifier',
    aux_points=['backbone.layer1.6', 'backbone.layer2.4', 'backbone.layer3.2'],
    aux_weights=[0.1217, 0.4548, 1.0])
# Stage 2: the internal channels of every block (conv1's outputs, conv2's
# inputs); the residual stream is never pruned.
dcp_layers = [
    f'backbone.layer{s}.{b}.conv2' for s in (1, 2, 3) for b in range(9)
]
