# Cal-SFDA stage 1 with DeepLabV2-R101 on GTA5: CE + DiffECE, keeps the
# lowest-cECE checkpoint. What the stage does: ../_base_/calsfda/source_gta5.py
# (for any network); this file picks the network.
# Next stage: deeplabv2_r101_gta5_value.py loads best_cECE.pth.
_base_ = [
    '../_base_/models/deeplabv2_r101-d8.py',
    '../_base_/calsfda/source_gta5.py'
]

model = _base_.calsfda_model
