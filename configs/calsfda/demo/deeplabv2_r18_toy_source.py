# Stage 1 on the built-in procedural benchmark (tools/make_synthetic_data.py),
# small enough for a CPU: ResNetV1c-18 (d8) + DLV2Head on 128x128 crops.
# Same recipe as deeplabv2_r101_gta5_source.py, only smaller.
_base_ = ['../deeplabv2_r101_gta5_source.py']

data_root = 'data/synthetic/gta/'
crop_size = (128, 128)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, base_channels=64),
    decode_head=dict(in_channels=512, dilations=(2, 4, 6, 8)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(256, 128),
        ratio_range=(0.75, 1.25),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=200, by_epoch=False)
]
train_cfg = dict(max_iters=200, val_interval=100)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=100),
    visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
