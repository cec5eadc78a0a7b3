# Cal-SFDA stage 1 recipe on Cityscapes (labelled source), for ANY network:
# source_gta5.py (CE + DiffECE; keeps the lowest source cECE) on the data of
# ../datasets/cityscapes_source.py. Next stage: value_cityscapes.py, then a
# target: target_cs2acdc.py, target_cs2darkzurich.py,
# target_cs2nightdriving.py or target_cs2bdd100k.py
# (docs/adverse_conditions.md).
_base_ = ['./source_gta5.py', '../datasets/cityscapes_source.py']

train_dataloader = dict(dataset={{_base_.cityscapes_train}})
val_dataloader = dict(dataset={{_base_.cityscapes_val}})
test_dataloader = val_dataloader
