# Runtime of the detection configs: the shared one, in mmdet's scope.
_base_ = ['./default_runtime.py']
default_scope = 'mmdet'
default_hooks = dict(
    visualization=dict(_delete_=True, type='DetVisualizationHook'))
visualizer = dict(
    _delete_=True,
    type='DetLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')
