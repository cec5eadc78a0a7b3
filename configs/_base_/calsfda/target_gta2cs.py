# Cal-SFDA stage 3 recipe -- source-free adaptation GTA5 -> Cityscapes, for
# ANY network trained by source_gta5.py and value_gta5.py.
#   starts from the stage-2 checkpoint (segmentor + value head); no source data
#   rounds of self-training (SelfTrainingHook): at each round start
#     BN warm-up of backbone + value head on target -> per-image ECE
#     estimates -> ECE-scaled class-balanced thresholds -> pseudo-label PNGs
#   loss on pseudo-labels (the final head's losses replaced): SCE (class
#     weights softmax(1/tau)) + eta * entropy + negative learning;
#     auxiliary heads off (auxiliary_losses: a list of losses trains them on
#     the pseudo-labels instead)
#   first epoch of a round: backbone norm-layer affine only; then decode and
#     auxiliary heads (and neck) only
#   checkpoint selection WITHOUT target labels: lowest estimated ECE over a
#     fixed target subset (best_estECE_epoch_N.pth); Cityscapes val mIoU is
#     recorded beside it for reporting only
#     (selection.json: selected / oracle / last)
_base_ = ['../datasets/cityscapes_target.py', '../calsfda_runtime.py']

calsfda_model = dict(
    type='CalSFDASegmentor',
    stage='target',
    # every weight comes from load_from: no ImageNet download
    pretrained=None,
    backbone=dict(init_cfg=None),
    # padding gets a label of its own (PADDING_LABEL): the target losses
    # leave it out (255 would make it count as unselected image pixels);
    # check_model refuses a seg_pad_val that differs from the losses'
    # padding_label
    data_preprocessor=dict(size={{_base_.crop_size}}, seg_pad_val=254),
    # as trained in stage 2 (value_gta5.py)
    value_input='probs',
    value_head=dict(type='ECEValueNetHead', pool='avg'),
    decode_losses=[
        dict(type='SymmetricCELoss', alpha=0.1, beta=1.0),
        # eta: the reference never sets it; the normalised term lies in
        # [0, 1] like the CE of confident pixels, so equal weight
        dict(type='NormalizedEntropyLoss', loss_weight=1.0),
        dict(type='NegativeLearningLoss', k_range=3, loss_weight=1.0)
    ],
    # the network's auxiliary losses (CE) cannot read pseudo-labels with
    # padding; e.g. [dict(type='SymmetricCELoss', loss_weight=0.4)] trains
    # the auxiliary heads on them
    auxiliary_losses='off')

# label-free criteria on the fixed target subset: the value head's estimate
# selects (ECECheckpointHook); entropy and max_prob are recorded beside it
# in selection.json, to compare selection criteria
val_evaluator = [
    dict(type='EstimatedECEMetric'),
    dict(type='ConfidenceMetric')
]

rounds = 1
epochs_per_round = 20
# the official stage-3 optimizer (config/adaptive_target_config.yml)
optimizer = dict(
    type='SGD', lr=5e-5, momentum=0.9, nesterov=True, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = []  # lr is set per round by SelfTrainingHook (/sqrt(2))
train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=rounds * epochs_per_round,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

custom_hooks = [
    dict(
        type='SelfTrainingHook',
        dataloader={{_base_.pseudo_label_dataloader}},
        pseudo_labeler=dict(
            type='CalibratedPseudoLabeler',
            cb_prop=0.15,
            cb_prop_step=0.05,
            local_prop=0.1,
            local_prop_step=0.05,
            growth='linear',  # 'reference': 0.15, 0.20, 0.30, 0.45, ...
            selection='calibrated'),  # 'reference': unscaled p, any class
        epochs_per_round=epochs_per_round,
        bn_warmup_batches=50,
        # target BN statistics for the backbone too (AdaBN): the round's
        # pseudo-labels are made by the model it trains, with the target's
        # statistics, as the reference labels in train mode (target batch
        # statistics); ('value_head',) keeps the segmentor's source ones
        bn_warmup_modules=('backbone', 'value_head')),
    # label-free selection: BN warm-up before estimating ECE on the subset
    dict(
        type='BNWarmupHook',
        dataloader={{_base_.estimation_dataloader}},
        num_batches=50,
        before='val')
]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=True),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='ECECheckpointHook',
        by_epoch=True,
        interval=1,
        max_keep_ckpts=1,
        save_best='estECE',
        rule='less',
        report_key='mIoU',
        report_dataloader={{_base_.report_dataloader}},
        report_evaluator={{_base_.report_evaluator}}),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=True)
# parameters switch between trainable and frozen within a round
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)
