# Cal-SFDA stage 2 with DeepLabV2-R101 on GTA5: the value net on the frozen
# stage-1 segmentor. What the stage does: ../_base_/calsfda/value_gta5.py.
# Next stage: deeplabv2_gta2cs.py adapts this checkpoint to Cityscapes.
_base_ = [
    '../_base_/models/deeplabv2_r101-d8.py', '../_base_/calsfda/value_gta5.py'
]

load_from = 'work_dirs/deeplabv2_r101_gta5_source/best_cECE.pth'
model = _base_.calsfda_model
