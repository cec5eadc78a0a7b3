# GTA5 (labelled source): train on data/gta/train.txt, validate on a held-out
# labelled source split data/gta/val.txt (both lists of file stems; written
# by tools/dataset_converters/gta5.py). 600x600 crops of images whose shorter
# side is 720, random scale 0.5-1.5 and flips, as in the reference.
dataset_type = 'GTA5Dataset'
data_root = 'data/gta/'
crop_size = (600, 600)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(1280, 720),
        ratio_range=(0.5, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
# Stage 2 (the value net) learns what it is used for in stage 3: the ECE of
# a *whole* image at the evaluation scale (crops hold fewer classes, and the
# class-level ECE averages over classes), under strong appearance change, so
# that its training images differ in calibration (see the value configs).
value_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='PhotoMetricDistortion',
        brightness_delta=64,
        contrast_range=(0.3, 1.7),
        saturation_range=(0.2, 1.8),
        hue_delta=36),
    dict(type='PackSegInputs')
]
img_scale = (1280, 720)  # evaluation resolution
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# test-time augmentation (tools/test.py --tta): MMSeg's scale ratios and
# flips, the ratios taken of the evaluation resolution
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(
                    type='Resize',
                    scale=(int(img_scale[0] * r), int(img_scale[1] * r)),
                    keep_ratio=True) for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]
        ])
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        data_prefix=dict(img_path='images', seg_map_path='labels'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val.txt',
        data_prefix=dict(img_path='images', seg_map_path='labels'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='ECEMetric', n_bins=10)
]
test_evaluator = val_evaluator
