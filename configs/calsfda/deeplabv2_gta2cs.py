# Cal-SFDA stage 3 with DeepLabV2-R101: source-free adaptation GTA5 ->
# Cityscapes, label-free checkpoint selection. What the stage does:
# ../_base_/calsfda/target_gta2cs.py (for any network).
_base_ = [
    '../_base_/models/deeplabv2_r101-d8.py',
    '../_base_/calsfda/target_gta2cs.py'
]

load_from = 'work_dirs/deeplabv2_r101_gta5_value/best_ece_mse.pth'
model = _base_.calsfda_model
