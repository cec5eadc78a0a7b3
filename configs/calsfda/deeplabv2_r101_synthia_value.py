# Cal-SFDA stage 2 on SYNTHIA (16 classes): the value net, trained on the
# labelled SYNTHIA source; same recipe as deeplabv2_r101_gta5_value.py.
_base_ = ['./deeplabv2_r101_gta5_value.py']

load_from = 'work_dirs/deeplabv2_r101_synthia_source/best_cECE.pth'

dataset_type = 'SynthiaDataset'
data_root = 'data/synthia/'
data_prefix = dict(img_path='RGB', seg_map_path='GT/LABELS')
train_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, data_prefix=data_prefix))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type, data_root=data_root, data_prefix=data_prefix))
test_dataloader = val_dataloader

model = dict(decode_head=dict(num_classes=16))
