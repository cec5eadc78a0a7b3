# SYNTHIA-RAND-CITYSCAPES (labelled source), 16 classes: train on
# data/synthia/train.txt, validate on data/synthia/val.txt (file stems;
# written by tools/dataset_converters/synthia.py).
_base_ = ['./gta5.py']
dataset_type = 'SynthiaDataset'
data_root = 'data/synthia/'
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS')))
test_dataloader = val_dataloader
