# SYNTHIA-RAND-CITYSCAPES (labelled source), 16 classes: train on
# data/synthia/train.txt, validate on data/synthia/val.txt (file stems;
# written by tools/dataset_converters/synthia.py). Pipelines as GTA5's.
_base_ = ['./gta5.py', './synthia_data.py']
train_dataloader = dict(dataset={{_base_.synthia_data}})
val_dataloader = dict(dataset={{_base_.synthia_data}})
test_dataloader = val_dataloader
