from typing import List, Optional

import numpy as np

SUBSET_KEYS = ('size', 'seed')


def check_subset(subset: Optional[dict], owner: str) -> Optional[dict]:
    """``subset`` with its seed defaulted to 0, or None.

    Raises:
        ValueError: Unknown keys, or a size that is not a positive int,
            named with ``owner``.
    """
    if subset is None:
        return None
    if not isinstance(subset, dict):
        raise ValueError(f'{owner}: subset must be dict(size=..., seed=...) '
                         f'or None, got {subset!r}')
    unknown = sorted(set(subset) - set(SUBSET_KEYS))
    if unknown:
        raise ValueError(f'{owner}: subset takes {list(SUBSET_KEYS)}, got '
                         f'{unknown}')
    size, seed = subset.get('size'), subset.get('seed', 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f'{owner}: subset.size must be an int >= 1, got '
                         f'{size!r}')
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f'{owner}: subset.seed must be an int, got '
                         f'{seed!r}')
    return dict(size=size, seed=seed)


def random_subset(data_list: List[dict], size: int, seed: int) -> List[dict]:
    """``min(size, len(data_list))`` items drawn without replacement by a
    generator seeded with ``seed``, in the order drawn (so any first N of
    them are a random sample too)."""
    order = np.random.default_rng(seed).permutation(len(data_list))
    return [data_list[i] for i in order[:size]]


class RandomSubsetMixin:
    """Adds ``subset=dict(size=..., seed=...)`` to an MMEngine dataset: a
    seeded random sample of its images instead of all of them.

    MMEngine's ``indices=N`` keeps the *first* N images in sorted order;
    for the frames of a video that is a few seconds of one clip. The
    sample here is drawn from all of them, in the order drawn, so a
    BatchNorm warm-up that reads the first batches of it sees a random
    sample as well. It is the same for every run with the same images and
    seed. Mixed in front of the dataset class; draws from what its
    ``load_data_list`` (and ``filter_data``) keep.

    Args:
        subset (dict, optional): ``size`` (images kept; all of them, in a
            random order, when there are fewer) and ``seed`` (default 0).
            None keeps every image in the dataset's order. Defaults to None.
        **kwargs: Arguments of the dataset class; ``indices`` cannot go
            with ``subset``.
    """

    def __init__(self, *args, subset: Optional[dict] = None,
                 **kwargs) -> None:
        name = self.__class__.__name__
        self.subset = check_subset(subset, name)
        if self.subset is not None and kwargs.get('indices') is not None:
            raise ValueError(f'{name}: give subset (a random sample) or '
                             'indices (the first N), not both')
        super().__init__(*args, **kwargs)

    def filter_data(self) -> List[dict]:
        data_list = super().filter_data()
        if self.subset is None:
            return data_list
        return random_subset(data_list, **self.subset)
