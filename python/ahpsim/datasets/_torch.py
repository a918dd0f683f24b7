"""PyTorch ``Dataset`` wrappers of the loaders (imported only when one of them is asked for)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .babi import load_babi
from .mnist import load_mnist, mnist_permutation, threshold_crossing_encode
from .speech import load_fsdd, load_speech_commands
from .ucr import load_ucr_uea

__all__ = ["MNISTDataset", "FSDDDataset", "SpeechCommandsDataset", "UCRUEADataset", "BabiDataset"]


class _Transformed(Dataset):
    transform = None
    target_transform = None

    def _out(self, x, y):
        if self.transform is not None:
            x = self.transform(x)
        if self.target_transform is not None:
            y = self.target_transform(y)
        return x, y


class MNISTDataset(_Transformed):
    """MNIST as a torch ``Dataset`` of ``(x, label)``.

    view : ``"image"`` (float32 [1, 28, 28], pixel/255), ``"sequential"`` (float32 [784, 1]),
    ``"permuted"`` (float32 [784, 1], pixels in ``mnist_permutation(seed)`` order) or ``"spikes"``
    (float32 0/1 [840, 80], :func:`threshold_crossing_encode` computed per item; ``variant``
    selects the thresholds).
    """

    _VIEWS = ("image", "sequential", "permuted", "spikes")

    def __init__(self, root=None, split: str = "train", view: str = "sequential", *, seed: int = 0,
                 variant: str = "loihi", transform=None, target_transform=None, download: bool = True):
        if view not in self._VIEWS:
            raise ValueError(f"view must be one of {self._VIEWS}, got {view!r}")
        self.images, self.labels = load_mnist(root, split, download=download)
        self.view, self.variant = view, variant
        self.perm = torch.from_numpy(mnist_permutation(seed)) if view == "permuted" else None
        self.transform, self.target_transform = transform, target_transform
        if view == "spikes":
            threshold_crossing_encode(self.images[:1], variant=variant)  # validate variant now

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        img = self.images[i]
        y = int(self.labels[i])
        if self.view == "spikes":
            x = torch.from_numpy(threshold_crossing_encode(img[None], variant=self.variant)[0]).float()
        else:
            x = torch.from_numpy(img.astype(np.float32) / np.float32(255.0))
            if self.view == "image":
                x = x[None]
            else:
                x = x.reshape(784, 1)
                if self.perm is not None:
                    x = x[self.perm]
        return self._out(x, y)


class _Sequences(_Transformed):
    """``(x [T_max, F] float32, length, label)`` items from padded arrays."""

    def __init__(self, x, lengths, labels, transform=None, target_transform=None):
        self.x = torch.from_numpy(np.ascontiguousarray(x))
        if self.x.dtype == torch.bool:
            self.x = self.x.float()
        self.lengths = torch.from_numpy(lengths)
        self.labels = torch.from_numpy(labels)
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x, y = self._out(self.x[i], int(self.labels[i]))
        return x, int(self.lengths[i]), y


class FSDDDataset(_Sequences):
    """Free Spoken Digit Dataset: ``(features [T_max, F], length, digit)``; keywords as :func:`load_fsdd`."""

    def __init__(self, root=None, split: str = "train", *, transform=None, target_transform=None, **kwargs):
        super().__init__(*load_fsdd(root, split, **kwargs), transform, target_transform)


class SpeechCommandsDataset(_Sequences):
    """Speech Commands v0.02, 12 classes: ``(features [T, F], length, label)``; see :func:`load_speech_commands`."""

    def __init__(self, root=None, split: str = "train", *, transform=None, target_transform=None, **kwargs):
        kwargs.pop("return_files", None)
        super().__init__(*load_speech_commands(root, split, **kwargs), transform, target_transform)


class UCRUEADataset(_Sequences):
    """A UCR/UEA set: ``(x [T_max, C], length, label)``; ``class_names`` names the labels."""

    def __init__(self, name: str, root=None, split: str = "train", *, transform=None,
                 target_transform=None, **kwargs):
        x, lengths, labels, self.class_names = load_ucr_uea(name, root, split, **kwargs)
        super().__init__(x, lengths, labels, transform, target_transform)


class BabiDataset(Dataset):
    """bAbI for a Relational Network: items ``(story [S, W], question [Q], answer)`` as int64
    tensors (0 is padding); ``data`` holds the full :class:`BabiData`, ``vocab`` the words."""

    def __init__(self, root=None, tasks=None, split: str = "train", size: str = "1k", **kwargs):
        self.data = load_babi(root, tasks, split, size, **kwargs)
        self.vocab = self.data.vocab
        self.story = torch.from_numpy(self.data.story)
        self.question = torch.from_numpy(self.data.question)
        self.answer = torch.from_numpy(self.data.answer)

    def __len__(self) -> int:
        return len(self.answer)

    def __getitem__(self, i):
        return self.story[i], self.question[i], self.answer[i]
