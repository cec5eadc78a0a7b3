# Cal-SFDA stage 1 with DeepLabV3+ (ResNetV1c-101, output stride 8) on
# Cityscapes as the labelled source (../_base_/calsfda/source_cityscapes.py):
# DiffECE on the ASPP head, the auxiliary FCN head keeps its CE. The stage
# before an adverse-condition target (docs/adverse_conditions.md).
_base_ = [
    '../_base_/models/deeplabv3plus_r101-d8.py',
    '../_base_/calsfda/source_cityscapes.py'
]

model = _base_.calsfda_model
