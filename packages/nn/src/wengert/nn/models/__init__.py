"""The model zoo: standard architectures built from `wengert.nn` layers,
channels-last, randomly initialised from an explicit ``rng``."""

from .lenet import LeNet5
from .mlp import MLP
from .resnet import ResNet, ResNet18, ResNet34
from .vgg import VGG, VGG11, VGG16, VGG19

__all__ = ["MLP", "VGG", "VGG11", "VGG16", "VGG19", "LeNet5", "ResNet", "ResNet18", "ResNet34"]
