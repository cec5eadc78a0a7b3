# Cal-SFDA stage 1 with SegFormer (MiT-B2) on GTA5: the recipe of
# ../_base_/calsfda/source_gta5.py on MMSeg's SegFormer network, with
# SegFormer's usual optimizer.
_base_ = [
    '../_base_/models/segformer_mit-b2.py',
    '../_base_/calsfda/source_gta5.py'
]

model = _base_.calsfda_model
# as mmseg::segformer/segformer_mit-b0_8xb1-160k_cityscapes-1024x1024.py
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            pos_block=dict(decay_mult=0.),
            norm=dict(decay_mult=0.),
            head=dict(lr_mult=10.))))
