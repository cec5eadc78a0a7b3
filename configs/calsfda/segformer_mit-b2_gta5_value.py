# Cal-SFDA stage 2 with SegFormer (MiT-B2): the value head on SegformerHead's
# class probabilities (../_base_/calsfda/value_gta5.py).
_base_ = [
    '../_base_/models/segformer_mit-b2.py', '../_base_/calsfda/value_gta5.py'
]

load_from = 'work_dirs/segformer_mit-b2_gta5_source/best_cECE.pth'
model = _base_.calsfda_model
