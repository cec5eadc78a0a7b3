# Cal-SFDA from MMSeg's model zoo: stage 1 is MMSeg's own Cityscapes
# DeepLabV3+ (R101-D8, 80k iterations, 512 x 1024 crops; 80.97 mIoU on
# Cityscapes val), trained with CE only. Its network is
# ../_base_/models/deeplabv3plus_r101-d8.py, as
# mmseg::deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py
# has it; the checkpoint downloads on first use (MMEngine's cache). Stage 2
# trains the value head on Cityscapes beside the frozen network; the log
# names the value head's keys, which the checkpoint does not have. Next:
# deeplabv3plus_r101_mmseg-zoo_cs2acdc-fog.py (docs/adverse_conditions.md).
_base_ = ['./deeplabv3plus_r101_cityscapes_value.py']

load_from = ('https://download.openmmlab.com/mmsegmentation/v0.5/'
             'deeplabv3plus/deeplabv3plus_r101-d8_512x1024_80k_cityscapes/'
             'deeplabv3plus_r101-d8_512x1024_80k_cityscapes_'
             '20200606_114143-068fcfe9.pth')
