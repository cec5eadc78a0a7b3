# Cal-SFDA stage 3 -- source-free adaptation SYNTHIA -> Cityscapes (16
# classes). Same recipe as deeplabv2_gta2cs.py; Cityscapes is read in
# SYNTHIA's 16-class space (terrain, truck, train -> ignore), and the report
# also gives the 13-class mIoU (without wall, fence, pole).
_base_ = ['./deeplabv2_gta2cs.py']

load_from = 'work_dirs/deeplabv2_r101_synthia_value/best_ece_mse.pth'

synthia_classes = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                   'traffic light', 'traffic sign', 'vegetation', 'sky',
                   'person', 'rider', 'car', 'bus', 'motorcycle', 'bicycle')
synthia_13_classes = tuple(c for c in synthia_classes
                           if c not in ('wall', 'fence', 'pole'))
model = dict(decode_head=dict(num_classes=16))
train_dataloader = dict(dataset=dict(metainfo=dict(classes=synthia_classes)))
default_hooks = dict(
    checkpoint=dict(
        report_dataloader=dict(
            dataset=dict(metainfo=dict(classes=synthia_classes))),
        report_evaluator=[
            dict(type='IoUMetric', iou_metrics=['mIoU']),
            dict(
                type='SubsetIoUMetric',
                classes=synthia_13_classes,
                metric_name='mIoU13'),
            dict(type='ECEMetric', n_bins=10)
        ]))
test_dataloader = dict(dataset=dict(metainfo=dict(classes=synthia_classes)))
test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='SubsetIoUMetric', classes=synthia_13_classes,
         metric_name='mIoU13'),
    dict(type='ECEMetric', n_bins=10)
]
