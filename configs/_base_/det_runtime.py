# Runtime of the detection configs: the shared one, in mmdet's scope.
_base_ = ['./default_runtime.py']
default_scope = 'mmdet'
default_hooks = dict(
    visualization=dict(_delete_=True, type='DetVisualizationHook'))
visualizer = dict(
    _delete_=True,
    type='DetLocalVisualizer',
    # no fixed name: mmengine names it after the experiment, so a second
    # Runner in the same process (compare_methods.py, tests) gets its own
    # instance and logs into its own work dir
    vis_backends=[dict(type='LocalVisBackend')])
