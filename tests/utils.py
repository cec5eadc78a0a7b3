"""Helpers shared by the tests."""
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tiny_source_cfg(synthetic_root, work_dir, max_iters=4, interval=2):
    """The demo stage-1 config shrunk to a few iterations on tiny data."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/calsfda/demo/deeplabv2_r18_toy_source.py'))
    data_root = osp.join(synthetic_root, 'gta')
    crop = (64, 64)
    cfg.model.data_preprocessor.size = crop
    cfg.model.backbone.base_channels = 16
    cfg.model.decode_head.in_channels = 128
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.train_dataloader.batch_size = 2
    cfg.train_dataloader.dataset.pipeline[2].scale = (128, 64)
    cfg.train_dataloader.dataset.pipeline[3].crop_size = crop
    cfg.val_dataloader.dataset.pipeline[1].scale = (128, 64)
    cfg.test_dataloader = cfg.val_dataloader
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = interval
    cfg.param_scheduler[0].end = max_iters
    cfg.default_hooks.checkpoint.interval = interval
    cfg.default_hooks.logger.interval = 1
    cfg.work_dir = str(work_dir)
    cfg.launcher = 'none'
    os.makedirs(cfg.work_dir, exist_ok=True)
    return cfg
