"""BN warm-up (warmup_bn_stats): running statistics re-estimated on given
batches, for the value head, the backbone and across processes."""
import pytest
import torch

from mmseg_calsfda.engine import warmup_bn_stats
from tests.utils import batch, probs_segmentor, tiny_segmentor


def test_warmup_sets_running_stats_to_feature_moments():
    model = tiny_segmentor().eval()
    batches = [batch(n=2, seed=i) for i in range(3)] + [batch(n=1, seed=9)]
    feats = []
    with torch.no_grad():
        for b in batches:
            inputs = model.data_preprocessor(b, False)['inputs']
            feats.append(model.extract_feat(inputs)[3])
    x = torch.cat(feats).double().transpose(0, 1).flatten(1)
    summary = warmup_bn_stats(model, batches, num_batches=10)
    assert summary == dict(layers=1, batches=4, images=7)
    bn = model.value_head.bn
    torch.testing.assert_close(bn.running_mean.double(), x.mean(1),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var.double(), x.var(1),
                               rtol=1e-4, atol=1e-6)
    assert not model.training and not bn.training  # modes restored
    # deterministic and limited to num_batches
    mean = bn.running_mean.clone()
    warmup_bn_stats(model, batches, num_batches=10)
    torch.testing.assert_close(bn.running_mean, mean)
    assert warmup_bn_stats(model, batches, 1)['images'] == 2


def test_warmup_backbone_layers_and_bad_modules():
    model = tiny_segmentor().eval()
    before = model.backbone.layer4[0].bn1.running_mean.clone()
    summary = warmup_bn_stats(model, [batch()], 1,
                              modules=('backbone', 'value_head'))
    assert summary['layers'] > 10
    assert not torch.equal(before, model.backbone.layer4[0].bn1.running_mean)
    with pytest.raises(ValueError, match='no BatchNorm layer'):
        warmup_bn_stats(model, [batch()], 1, modules=('nothing', ))


def test_probs_input_warmup_sees_the_probabilities():
    model = probs_segmentor().eval()
    batches = [batch(n=2, seed=i) for i in range(2)]
    with torch.no_grad():
        probs = torch.cat([
            model.decode_head.forward(model.extract_feat(
                model.data_preprocessor(b, False)['inputs'])).softmax(1)
            for b in batches
        ])
    warmup_bn_stats(model, batches, num_batches=2)
    torch.testing.assert_close(
        model.value_head.bn.running_mean,
        probs.transpose(0, 1).flatten(1).mean(1), rtol=1e-5, atol=1e-6)


def _warmup_worker(rank, world_size, port, out_file):
    import torch.distributed as dist
    from mmseg.utils import register_all_modules
    register_all_modules()  # a spawned process starts without the scope
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=world_size)
    torch.manual_seed(0)
    model = tiny_segmentor().eval()
    batches = [batch(n=2, seed=i) for i in range(4)]
    warmup_bn_stats(model, batches[rank::world_size], num_batches=10)
    if rank == 0:
        bn = model.value_head.bn
        torch.save((bn.running_mean, bn.running_var), out_file)
    dist.destroy_process_group()


def test_warmup_two_processes_equal_one(tmp_path, free_port):
    import torch.multiprocessing as mp
    out_file = str(tmp_path / 'stats.pt')
    mp.spawn(_warmup_worker, args=(2, free_port, out_file), nprocs=2)
    torch.manual_seed(0)
    model = tiny_segmentor().eval()
    warmup_bn_stats(model, [batch(n=2, seed=i) for i in range(4)], 10)
    mean, var = torch.load(out_file)
    torch.testing.assert_close(mean, model.value_head.bn.running_mean)
    torch.testing.assert_close(var, model.value_head.bn.running_var)
