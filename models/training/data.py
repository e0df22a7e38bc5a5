"""Offline data: scikit-learn's bundled 8x8 digits with a fixed split, and a spike encoder.

The digits (1797 grey images of 8x8 pixels, values 0..16) ship inside scikit-learn, so
nothing is downloaded. The split is fixed and independent of the training seed: 360 test
images, stratified by class, ``random_state=0`` — every run, every mode and every seed is
evaluated on the same 360 images. Pixels are scaled to [0, 1].

>>> d = load_digits_split()
>>> d.x_train.shape, d.x_test.shape, d.num_classes
((1437, 1, 8, 8), (360, 1, 8, 8), 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.errors import TrainingError
from models.network.layers import Conv2d, Flatten, Linear, MaxPool2d
from models.network.spec import NetworkSpec, chain

DATASETS = ("digits",)


@dataclass(frozen=True)
class Dataset:
    """Train and test arrays; images are (N, C, H, W) floats in [0, 1], labels integers (a
    reconstruction's targets: the flattened images, ``num_classes`` 0)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_digits_split(test_size: int = 360, split_seed: int = 0) -> Dataset:
    """scikit-learn's digits with a fixed stratified train/test split (1437 / 360 by default)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float64)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=split_seed, stratify=y)
    return Dataset("digits", x_train, y_train, x_test, y_test, 10)


def digits_reconstruction(test_size: int = 360, split_seed: int = 0) -> Dataset:
    """The digits split of :func:`load_digits_split` with each image's 64 pixels as its target: what an
    autoencoder trained with the squared error (``Net(..., loss="mse")``) reconstructs.

    >>> d = digits_reconstruction()
    >>> d.y_train.shape, bool((d.y_train == d.x_train.reshape(len(d.x_train), -1)).all())
    ((1437, 64), True)
    """
    d = load_digits_split(test_size, split_seed)
    return Dataset("digits-reconstruction", d.x_train, d.x_train.reshape(len(d.x_train), -1), d.x_test,
                   d.x_test.reshape(len(d.x_test), -1), 0)


def load_dataset(name: str) -> Dataset:
    """A dataset by its command-line name."""
    if name == "digits":
        return load_digits_split()
    raise TrainingError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")


def rate_code(images: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli rate coding: at each of ``T`` steps a pixel spikes with probability = its intensity.

    ``images`` must lie in [0, 1]; the result has shape ``(T, *images.shape)`` and holds 0.0
    or 1.0 (time first, as snntorch's ``spikegen.rate``).

    >>> s = rate_code(np.array([[0.0, 1.0, 0.5]]), 1000, np.random.default_rng(0))
    >>> s.shape, int(s[:, 0, 0].sum()), int(s[:, 0, 1].sum()), bool(400 < s[:, 0, 2].sum() < 600)
    ((1000, 1, 3), 0, 1000, True)
    """
    if not isinstance(T, (int, np.integer)) or T <= 0:
        raise TrainingError(f"rate coding needs a positive number of time steps, got {T!r}")
    images = np.asarray(images, dtype=np.float64)
    if images.size and (images.min() < 0 or images.max() > 1):
        raise TrainingError("rate coding needs intensities in [0, 1]")
    return (rng.random((int(T), *images.shape)) < images).astype(np.float64)


def digits_cnn(channels: tuple[int, int] = (16, 32), hidden: int = 64) -> NetworkSpec:
    """A small CNN for 1x8x8 digits with 4 weight layers (3x3 convolutions, two 2x2 max pools).

    conv 3x3 pad 1 (16) + ReLU -> pool 2 -> conv 3x3 pad 1 (32) + ReLU -> pool 2 ->
    flatten (32*2*2 = 128) -> fc 64 + ReLU -> fc 10.

    >>> digits_cnn().total_params()
    13706
    """
    c1, c2 = channels
    layers = [
        Conv2d(c1, kernel=3, padding=1, activation="relu"), MaxPool2d(2),
        Conv2d(c2, kernel=3, padding=1, activation="relu"), MaxPool2d(2),
        Flatten(), Linear(hidden, activation="relu"), Linear(10),
    ]
    return chain("digits-cnn", (1, 8, 8), layers, description="small CNN for 8x8 digits")


#: networks sized for the digits, available to ``layerpipe train`` besides the zoo
DIGITS_NETWORKS = {"digits-cnn": digits_cnn}


__all__ = ["DATASETS", "Dataset", "load_digits_split", "digits_reconstruction", "load_dataset", "rate_code", "digits_cnn", "DIGITS_NETWORKS"]
