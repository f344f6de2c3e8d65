# DCP on VGG-19 with BN (16 convs; mmpretrain's VGG numbers its ConvModules
# and max-pools together in backbone.features).
# Stage 1: two auxiliary losses, after conv 6 and conv 12 (16 // 3 + 1 convs
# apart: the code's rule for blocks, applied to convs), scaled as in the
# code by max(0.01, (6 / 12)^2) and 1.
dcp_model = dict(
    type='DCPClassifier',
    aux_points=['backbone.features.7', 'backbone.features.14'],
    aux_weights=[0.25, 1.0])
# Stage 2: the input channels of every conv but the first (the image).
dcp_layers = [
    f'backbone.features.{i}.conv'
    for i in (1, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 16, 17, 18, 19)
]
