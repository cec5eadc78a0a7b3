# Cal-SFDA stage 1 with DeepLabV3+ on ImageNet-pretrained EfficientNet-Lite0
# (output stride 16) on GTA5: the recipe of ../_base_/calsfda/source_gta5.py.
# DiffECE goes on the ASPP head; the auxiliary FCN head keeps its CE.
_base_ = [
    '../_base_/models/deeplabv3plus_efficientnet-lite0.py',
    '../_base_/calsfda/source_gta5.py'
]

model = _base_.calsfda_model
# The heads start from scratch on an ImageNet-trained backbone: they learn
# at 10x the backbone's rate (as MMSeg's SegFormer configs set it).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys=dict(
    decode_head=dict(lr_mult=10.), auxiliary_head=dict(lr_mult=10.))))
