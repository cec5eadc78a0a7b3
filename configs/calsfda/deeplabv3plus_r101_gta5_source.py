# Cal-SFDA stage 1 with DeepLabV3+ (ResNetV1c-101, output stride 8) on GTA5:
# the recipe of ../_base_/calsfda/source_gta5.py on MMSeg's DeepLabV3+
# network. DiffECE goes on the ASPP head; the auxiliary FCN head keeps its CE.
_base_ = [
    '../_base_/models/deeplabv3plus_r101-d8.py',
    '../_base_/calsfda/source_gta5.py'
]

model = _base_.calsfda_model
