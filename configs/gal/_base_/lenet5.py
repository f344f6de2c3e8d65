# GAL on LeNet-5 (conv 6 -> conv 16 -> conv 120 -> fc 84 -> fc 10, tanh):
# one mask per filter of every conv and per hidden fc neuron, after the
# activation (the paper prunes LeNet's filters and fc neurons).
gal_structures = [
    dict(
        kind='filter',
        names=[
            'backbone.features.1', 'backbone.features.4',
            'backbone.features.7', 'backbone.classifier.1'
        ])
]
