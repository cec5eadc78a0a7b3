# Cal-SFDA stage 2 recipe on Cityscapes (labelled source), for ANY network:
# value_gta5.py (the value head learns each image's class-level ECE; the
# segmentor frozen; whole images under strong photometric change) on the
# data of ../datasets/cityscapes_source.py. Loads a stage-1 checkpoint of
# source_cityscapes.py, or any Cityscapes checkpoint of the same network
# (MMSeg's model zoo: docs/adverse_conditions.md).
_base_ = ['./value_gta5.py', '../datasets/cityscapes_source.py']

train_dataloader = dict(dataset={{_base_.cityscapes_train}})
val_dataloader = dict(dataset={{_base_.cityscapes_val}})
test_dataloader = val_dataloader
