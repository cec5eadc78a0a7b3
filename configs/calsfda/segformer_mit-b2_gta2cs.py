# Cal-SFDA stage 3 with SegFormer (MiT-B2): GTA5 -> Cityscapes
# (../_base_/calsfda/target_gta2cs.py). The first epoch of a round trains
# MiT's LayerNorm affine parameters.
_base_ = [
    '../_base_/models/segformer_mit-b2.py',
    '../_base_/calsfda/target_gta2cs.py'
]

load_from = 'work_dirs/segformer_mit-b2_gta5_value/best_ece_mse.pth'
model = _base_.calsfda_model
