"""The demo's (and the lab comparison's) ``--network`` choice: which shipped
stage configs run, and whether they are shrunk."""
import argparse

import pytest

from mmseg_calsfda.testing.demo_stages import (
    NETWORKS,
    SIZES,
    add_network_argument,
    stage_config,
    target_stage_config,
)


def _args(tmp_path, network: str) -> argparse.Namespace:
    return argparse.Namespace(work_dir=str(tmp_path), seed=0, device='cpu',
                              network=network)


def test_network_argument_lists_the_networks():
    parser = argparse.ArgumentParser()
    add_network_argument(parser)
    assert parser.parse_args([]).network == 'resnet18'
    demo_parser = argparse.ArgumentParser()
    add_network_argument(demo_parser, default='efficientnet_lite0')
    assert demo_parser.parse_args([]).network == 'efficientnet_lite0'
    assert parser.parse_args(
        ['--network', 'efficientnet_lite0']).network == 'efficientnet_lite0'
    with pytest.raises(SystemExit):
        parser.parse_args(['--network', 'resnet50'])


@pytest.mark.parametrize('stage', ['source', 'value', 'target'])
def test_pretrained_network_runs_as_shipped(tmp_path, stage):
    cfg = stage_config(_args(tmp_path, 'efficientnet_lite0'), SIZES['tiny'],
                       str(tmp_path / 'data'), stage, stage, iters=2,
                       lr=0.01, max_epochs=1 if stage == 'target' else None)
    backbone = cfg.model.backbone
    assert backbone.type == 'EfficientNetLite' and backbone.arch == 'lite0'
    assert cfg.model.data_preprocessor.mean == [127.5] * 3
    if stage == 'source':  # ImageNet weights, heads at 10x
        assert backbone.init_cfg.checkpoint == 'efficientnet-lite://lite0'
        keys = cfg.optim_wrapper.paramwise_cfg.custom_keys
        assert keys.decode_head.lr_mult == keys.auxiliary_head.lr_mult == 10
    assert cfg.model.decode_head.in_channels == 320  # not shrunk


def test_from_scratch_network_is_shrunk(tmp_path):
    cfg = stage_config(_args(tmp_path, 'resnet18'), SIZES['tiny'],
                       str(tmp_path / 'data'), 'source', 'source', iters=2,
                       lr=0.01)
    assert cfg.model.backbone.type == 'ResNetV1c'
    assert cfg.model.backbone.depth == 18
    assert set(NETWORKS) == {'resnet18', 'efficientnet_lite0'}


@pytest.mark.parametrize('network', sorted(NETWORKS))
def test_stage3_learning_rate_is_the_networks_unless_given(tmp_path, network):
    args = _args(tmp_path, network)
    cfg = target_stage_config(args, SIZES['tiny'], str(tmp_path / 'data'),
                              'stage2.pth', 'target', 1, 1)
    assert cfg.optim_wrapper.optimizer.lr == NETWORKS[network]['target_lr']
    args.target_lr = 1e-3
    cfg = target_stage_config(args, SIZES['tiny'], str(tmp_path / 'data'),
                              'stage2.pth', 'target', 1, 1)
    assert cfg.optim_wrapper.optimizer.lr == 1e-3


@pytest.mark.parametrize('network', sorted(NETWORKS))
def test_stage3_entropy_weight_is_the_networks(tmp_path, network):
    """eta as NETWORKS sets it: 0 leaves the entropy term out, anything
    else weighs it; the other losses stay as shipped."""
    cfg = target_stage_config(_args(tmp_path, network), SIZES['tiny'],
                              str(tmp_path / 'data'), 'stage2.pth',
                              'target', 1, 1)
    losses = {loss['type']: loss for loss in cfg.model.decode_losses}
    weight = NETWORKS[network]['entropy_weight']
    assert {'SymmetricCELoss', 'NegativeLearningLoss'} <= set(losses)
    if weight == 0:
        assert 'NormalizedEntropyLoss' not in losses
    else:
        assert losses['NormalizedEntropyLoss']['loss_weight'] == weight


def test_entropy_weight_sets_or_drops_the_term():
    from mmengine import Config

    from mmseg_calsfda.testing.demo_stages import set_entropy_weight

    def losses():
        return Config(dict(model=dict(decode_losses=[
            dict(type='SymmetricCELoss'),
            dict(type='NormalizedEntropyLoss', loss_weight=1.0)])))

    cfg = losses()
    set_entropy_weight(cfg, 0.25)
    assert cfg.model.decode_losses[1].loss_weight == 0.25
    cfg = losses()
    set_entropy_weight(cfg, 0)
    assert [loss.type for loss in cfg.model.decode_losses] == [
        'SymmetricCELoss']


@pytest.mark.parametrize('loop,last,done', [
    (dict(max_iters=400), 'iter_400.pth', True),
    (dict(max_iters=400), 'iter_200.pth', False),  # interrupted
    (dict(max_epochs=8), 'epoch_8.pth', True),
    (dict(max_epochs=8), 'iter_8.pth', False),
    (dict(max_epochs=8), None, False),  # never started
])
def test_train_stage_reuses_only_a_finished_training(tmp_path, monkeypatch,
                                                     loop, last, done):
    """A rerun in the same work dir skips a stage whose ``last_checkpoint``
    is its schedule's final checkpoint and trains every other one."""
    from mmengine.config import Config

    from mmseg_calsfda.testing import demo_stages
    if last is not None:
        (tmp_path / last).write_bytes(b'')
        (tmp_path / 'last_checkpoint').write_text(str(tmp_path / last))
    cfg = Config(dict(work_dir=str(tmp_path), train_cfg=loop))
    built = []

    class Runner:

        def train(self):
            built.append(True)

    monkeypatch.setattr(demo_stages.RUNNERS, 'build', lambda c: Runner())
    assert demo_stages.finished(cfg) is done
    demo_stages.train_stage(cfg)
    assert built == ([] if done else [True])
