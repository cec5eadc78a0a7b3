# Stage-1 schedule: SGD (momentum 0.9, Nesterov, weight decay 5e-4) with
# MMSeg's PolyLR on all parameters (the reference's poly schedule silently
# skipped most of them), validation every 4k iterations.
optimizer = dict(
    type='SGD', lr=5e-5, momentum=0.9, nesterov=True, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
