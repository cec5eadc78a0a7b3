# Cal-SFDA stage 1 with DeepLabV3+ on ImageNet-pretrained EfficientNet-Lite0
# (output stride 16) on GTA5: the recipe of ../_base_/calsfda/source_gta5.py.
# DiffECE goes on the ASPP head; the auxiliary FCN head keeps its CE.
_base_ = [
    '../_base_/models/deeplabv3plus_efficientnet-lite0.py',
    '../_base_/calsfda/source_gta5.py'
]

model = _base_.calsfda_model
