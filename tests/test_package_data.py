"""The digits shipped in the package are the first 200 real MNIST test digits."""

from importlib import resources

import numpy as np

import ahpsim.datasets as ds


def test_bundled_digits_equal_the_mnist_test_set(data_root):
    with resources.as_file(resources.files("ahpsim") / "data" / "mnist_test_200.npz") as p:
        d = np.load(p)
        images, labels = d["images"], d["labels"]
    x, y = ds.load_mnist(data_root, "test", cache=False, download=False)
    assert images.shape == (200, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, x[:200])
    np.testing.assert_array_equal(labels, y[:200])
