"""LR-GAN: layered recursive GANs that decompose images into background, objects, masks and poses."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lrgan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
