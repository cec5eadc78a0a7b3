# DeepLabV3+ with ResNetV1c-101 (output stride 8): MMSeg's own network, the
# R50 model file at depth 101, as mmseg::deeplabv3plus/
# deeplabv3plus_r101-d8_4xb2-40k_cityscapes-512x1024.py sets it.
_base_ = 'mmseg::_base_/models/deeplabv3plus_r50-d8.py'

model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
