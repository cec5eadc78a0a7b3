# Cal-SFDA stage 3 with DeepLabV2-R101 on your own unlabelled images: a
# GTA5 stage-2 model adapted to a plain folder of images (data_root), the
# checkpoint selected by the estimated ECE. What the stage does:
# ../_base_/calsfda/target_gta2folder.py; walkthrough: docs/your_data.md
#   python tools/train.py configs/calsfda/deeplabv2_gta2folder.py \
#       --cfg-options data_root=data/dashcam/
_base_ = [
    '../_base_/models/deeplabv2_r101-d8.py',
    '../_base_/calsfda/target_gta2folder.py'
]

load_from = 'work_dirs/deeplabv2_r101_gta5_value/best_ece_mse.pth'
model = _base_.calsfda_model
