# Cal-SFDA stage 2 recipe -- the value net, for ANY network: learns to
# predict an image's class-level ECE from the segmentor's class-probability
# map, on the labelled source (GTA5).
#   loads the stage-1 checkpoint with the lowest source cECE (the stage
#   config sets load_from)
#   segmentor frozen (backbone, neck, decode and auxiliary heads: no
#   gradients, BN in eval mode); only ECEValueNetHead trains: MSE to the
#   DETACHED per-image class-level ECE of the final semantic logits
#   whole images (not crops) under strong photometric augmentation: source
#     images whose ECE varies the way it will on the target (see
#     docs/differences.md)
#   validation on source val: estimate vs truth (MSE, Pearson, Spearman)
# Next stage: target_gta2cs.py adapts this checkpoint to Cityscapes.
_base_ = ['./source_gta5.py']

calsfda_model = dict(
    # every weight comes from load_from: no ImageNet download
    pretrained=None,
    backbone=dict(init_cfg=None),
    # whole images (see value_train_pipeline): pad a batch to its largest
    data_preprocessor=dict(size=None, size_divisor=8),
    stage='value',
    freeze_segmentor=True,  # False: the MSE also trains the backbone
    # the value head reads the final class probabilities (num_classes
    # channels at the head's resolution, whatever the network); 'backbone' +
    # in_channels=2048, in_index=3 is the reference's last ResNet feature
    # map (docs/differences.md)
    value_input='probs',
    value_head=dict(
        type='ECEValueNetHead', channels=128, pool_size=4,
        pool='avg'),  # the stage-3 recipe must say the same
    ece_n_bins=10,
    ece_temperature=1e-5,
    ece_class_average='all')

# The value net can only learn to tell a badly calibrated image from a good
# one if its training images differ in calibration: a segmentor that fits
# the source barely does. Whole source images at the evaluation scale (what
# the head sees in stage 3), under strong PhotoMetricDistortion (colour,
# contrast, brightness, hue), look shifted to different degrees.
train_dataloader = dict(dataset=dict(pipeline={{_base_.value_train_pipeline}}))

# Only the value head has trainable parameters.
optimizer = dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), weight_decay=0)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=0.01),  # reference: gradient clipping 0.01
    _delete_=True)
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=20000,
         by_epoch=False)
]
train_cfg = dict(max_iters=20000, val_interval=2000)

val_evaluator = [dict(type='EstimatedECEMetric', with_labels=True)]
test_evaluator = val_evaluator
custom_hooks = []
default_hooks = dict(
    checkpoint=dict(
        type='ECECheckpointHook',
        interval=2000,
        save_best='ece_mse',
        rule='less',
        report_key='ece_spearman'))
