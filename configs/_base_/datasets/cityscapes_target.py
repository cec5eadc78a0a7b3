# Cityscapes as the unlabelled target. Only training IMAGES are used for
# adaptation; Cityscapes val labels are read for reporting only
# (report_dataloader), never for training or checkpoint selection.
data_root = 'data/cityscapes/'
# training crops as the official code: images 720 px on the shorter side,
# random scale 0.5-1.5, 600 x 600 crops (it resizes a crop cut short by a
# small image up to 600 x 600; here the batch is padded and the target
# losses leave the padding out)
crop_size = (600, 600)
train_scale = (1440, 720)
img_scale = (1024, 512)  # evaluation resolution; logits upsampled to 2048x1024

# training on the current round's pseudo-labels
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # the pseudo-label PNG
    dict(
        type='RandomResize', scale=train_scale, ratio_range=(0.5, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
# target images without labels: pseudo-labelling, ECE estimation
unlabelled_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackSegInputs')
]
# labelled Cityscapes val, reporting only
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# test-time augmentation of the report (tools/test.py --tta): MMSeg's
# scale ratios and flips, the ratios taken of the evaluation resolution
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
    persistent_workers=False,  # workers must see each round's labels
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='PseudoLabelDataset',
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train'),
        pipeline=train_pipeline))
# every target training image, once, in order: the pseudo-labelling pass
pseudo_label_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,  # read twice per round, every round
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CheckedCityscapesDataset',
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train'),
        pipeline=unlabelled_pipeline))
# a fixed subset of target training images: label-free model selection
estimation_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CheckedCityscapesDataset',
        data_root=data_root,
        data_prefix=dict(img_path='leftImg8bit/train'),
        indices=500,
        pipeline=unlabelled_pipeline))
report_dataloader = dict(
    batch_size=1,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CheckedCityscapesDataset',
        data_root=data_root,
        data_prefix=dict(
            img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
report_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='ECEMetric', n_bins=10)
]

# validation = label-free estimated ECE; test = the labelled report
val_dataloader = estimation_dataloader
val_evaluator = dict(type='EstimatedECEMetric')
test_dataloader = report_dataloader
test_evaluator = report_evaluator
