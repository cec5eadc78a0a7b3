# Cityscapes as the labelled source of stages 1 and 2 (19 classes): train on
# leftImg8bit/train with gtFine/train, keep the checkpoint by the ECE on
# leftImg8bit/val with gtFine/val (*_labelTrainIds.png from MMSeg's
# Cityscapes converter). Merged into the GTA5 recipes' dataloaders
# (../calsfda/source_cityscapes.py, value_cityscapes.py), whose pipelines
# stay: images within 1280 x 720 (Cityscapes' 2048 x 1024 -> 1280 x 640),
# 600 x 600 crops at scale 0.5-1.5 in stage 1, whole images in stage 2.
cityscapes_train = dict(
    type='CheckedCityscapesDataset',
    data_root='data/cityscapes/',
    ann_file='',  # the folders are the split (GTA5's list file is not)
    data_prefix=dict(
        img_path='leftImg8bit/train', seg_map_path='gtFine/train'))
cityscapes_val = dict(
    type='CheckedCityscapesDataset',
    data_root='data/cityscapes/',
    ann_file='',
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'))
