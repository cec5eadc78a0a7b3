# BDD100K (https://bdd-data.berkeley.edu/; the 10K images of its semantic
# segmentation task, the 19 Cityscapes classes) as the unlabelled target of
# stage 3: the train images (7000) are adapted to; the val labels (1000
# images) are read for the report only. data/bdd100k/ as unpacked from
# bdd100k_images_10k.zip and bdd100k_sem_seg_labels_trainval.zip (MMSeg's
# BDD100KDataset):
#   images/10k/{train,val}/<name>.jpg
#   labels/sem_seg/masks/{train,val}/<name>.png
# ../calsfda/target_cs2bdd100k.py puts these datasets into the dataloaders
# of cityscapes_target.py (their pipelines and settings stay).
target_data = dict(
    # the train images with the current round's pseudo-labels
    train=dict(
        type='PseudoLabelDataset',
        data_root='data/bdd100k/',
        data_prefix=dict(img_path='images/10k/train'),
        img_suffix='.jpg'),
    # the train images, unlabelled: pseudo-label pass, BN warm-up and the
    # subset of label-free selection
    images=dict(
        type='BDD100KDataset',
        data_root='data/bdd100k/',
        data_prefix=dict(img_path='images/10k/train')),
    # labelled val, reporting only
    report=dict(
        type='BDD100KDataset',
        data_root='data/bdd100k/',
        data_prefix=dict(
            img_path='images/10k/val',
            seg_map_path='labels/sem_seg/masks/val')))
