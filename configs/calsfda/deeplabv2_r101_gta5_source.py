# Cal-SFDA stage 1 -- source pre-training on GTA5 with the differentiable ECE.
#   loss = CE + 1.0 * DiffECE (class-level ECE, LogSumExp confidence, t=1e-5)
#   validation on a labelled GTA5 split: mIoU + ECE/cECE
#   keeps the checkpoint with the LOWEST class-level ECE (best_cECE_iter_N.pth,
#   linked as best_cECE.pth) and writes selection.json (selected/oracle/last)
# Next stage: deeplabv2_r101_gta5_value.py loads best_cECE.pth.
_base_ = [
    '../_base_/models/deeplabv2_r101-d8.py', '../_base_/datasets/gta5.py',
    '../_base_/calsfda_runtime.py', '../_base_/schedules/source_40k.py'
]

model = dict(
    type='CalSFDASegmentor',
    stage='source',
    data_preprocessor=dict(size={{_base_.crop_size}}),
    decode_head=dict(loss_decode=[
        dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
        dict(
            type='DiffECELoss',
            n_bins=10,
            temperature=1e-5,
            class_average='all',
            loss_weight=1.0)
    ]))

# The ECE term is used from this iteration on (reference: 0).
custom_hooks = [dict(type='ECELossWarmupHook', start_iter=0)]

# ECE-based source checkpoint selection; lower is better.
default_hooks = dict(
    checkpoint=dict(
        type='ECECheckpointHook',
        by_epoch=False,
        interval=4000,
        max_keep_ckpts=1,
        save_best='cECE',
        rule='less',
        report_key='mIoU'))
