"""Independent slow re-expressions of the calibration measures: plain loops
over images, classes and bins, in float64, written from their definitions
(docs/method.md). The tests and the ECE-loss benchmark compare the
vectorised library code against them."""
import torch


def loop_bin_ece(conf, correct, n_bins):
    """ECE of one group with bins (lo, hi] (bin 0 also takes conf <= 0)."""
    total = len(conf)
    if total == 0:
        return conf.new_zeros(())
    ece = conf.new_zeros(())
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        everything = torch.ones_like(conf, dtype=torch.bool)
        upper = conf <= hi if b < n_bins - 1 else everything
        lower = conf > lo if b > 0 else everything
        in_bin = lower & upper
        n = int(in_bin.sum())
        if n == 0:
            continue
        gap = (conf[in_bin].mean() - correct[in_bin].double().mean()).abs()
        ece = ece + n / total * gap
    return ece


def loop_classwise_ece(logits, label, n_bins=10, temperature=None,
                       ignore_index=255, class_average='all'):
    """Per-image class-level ECE, one image and one class at a time."""
    num_imgs, num_classes = logits.shape[:2]
    probs = torch.softmax(logits.double(), dim=1)
    out = []
    for n in range(num_imgs):
        eces, present = [], 0
        for c in range(num_classes):
            mask = label[n] == c
            if int(mask.sum()) == 0:
                eces.append(probs.new_zeros(()))
                continue
            present += 1
            p = probs[n][:, mask]
            if temperature is None:
                conf = p.max(dim=0).values
            else:
                conf = (temperature * torch.logsumexp(p / temperature, dim=0)
                        ).clamp(max=1.0)
            correct = p.argmax(dim=0) == c
            eces.append(loop_bin_ece(conf, correct, n_bins))
        total = torch.stack(eces).sum()
        if class_average == 'all':
            out.append(total / num_classes)
        else:
            out.append(total / max(present, 1))
    return torch.stack(out)


def loop_dataset_classwise_ece(logits_list, label_list, n_bins=10,
                               ignore_index=255):
    """Dataset-level class-level ECE (mean over classes present), max-prob
    confidence, as ECEMetric's cECE."""
    num_classes = logits_list[0].shape[0]
    confs, corrects, labels = [], [], []
    for logits, label in zip(logits_list, label_list):
        probs = torch.softmax(logits.double(), dim=0)
        conf, pred = probs.max(dim=0)
        valid = label != ignore_index
        confs.append(conf[valid])
        corrects.append(pred[valid] == label[valid])
        labels.append(label[valid])
    conf, correct, label = (torch.cat(x) for x in (confs, corrects, labels))
    eces = []
    for c in range(num_classes):
        mask = label == c
        if int(mask.sum()) > 0:
            eces.append(loop_bin_ece(conf[mask], correct[mask], n_bins))
    return torch.stack(eces).mean()
