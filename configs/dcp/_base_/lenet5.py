# DCP on LeNet-5 (conv 6 -> conv 16 -> conv 120 -> fc 84 -> fc 10).
# Stage 1: one auxiliary loss, on the 16-channel map after the second conv
# and its pooling (the network is too shallow for more), weight 1.
dcp_model = dict(type='DCPClassifier', aux_points=['backbone.features.5'])
# Stage 2: the inputs of every layer but the first, the same channel groups
# the hook-based methods prune (conv1, conv2 and conv3 outputs, fc1 outputs).
dcp_layers = [
    'backbone.features.3', 'backbone.features.6', 'backbone.classifier.0',
    'backbone.classifier.2'
]
