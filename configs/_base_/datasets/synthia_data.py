# Where SYNTHIA-RAND-CITYSCAPES lives (16 classes; train.txt/val.txt and the
# *_labelTrainIds.png maps come from tools/dataset_converters/synthia.py).
# Merged into a GTA5-based config's dataloaders:
#   train_dataloader = dict(dataset={{_base_.synthia_data}})
synthia_data = dict(
    type='SynthiaDataset',
    data_root='data/synthia/',
    data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'))
