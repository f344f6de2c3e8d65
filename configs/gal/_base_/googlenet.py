# GAL on GoogLeNet (CIFAR): one scalar mask per inception branch (9 modules
# x 4 branches), before the concat; the stem has none. A branch at 0 leaves
# its module and the next layers lose its input channels.
gal_structures = [
    dict(kind='branch', names=['backbone.inception_*.branches.*']),
]
