"""The `cifar` recipe's SqueezeNet written plainly in PyTorch, for the benchmarks that compare against it.

Mirrors `squeezekit.models.squeezenet` with the recipe's overrides: 3x3 stride-1 conv1, ceil-mode 3x3/2
max pools after conv1, fire3 and fire5, v1.1 Fire modules, batch norm (epsilon 1e-3, Keras' momentum
0.99) after every convolution, optional bypasses (paper section 6), dropout, conv10 + ReLU + global
average pooling; Glorot-uniform convolutions and N(0, 0.01) conv10 as Keras initialises them. Its
parameter counts equal Keras' trainable ones. Used by train_throughput.py (the plain-PyTorch
reference) and cifar_recipe_study.py (the replica trained on a GPU).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

# fire2 ... fire9 of v1.1: (squeeze filters, expand filters per branch).
FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]
POOL_AFTER_FIRES = (1, 3)  # fire3 and fire5


def conv_bn_relu(in_channels, out_channels, kernel, *, batch_norm=True, relu=True, padding=0):
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=not batch_norm)
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    layers = [conv]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Fire(nn.Module):
    def __init__(self, in_channels, squeeze, expand, *, shortcut=None, batch_norm=True):
        super().__init__()
        self.squeeze = conv_bn_relu(in_channels, squeeze, 1, batch_norm=batch_norm)
        self.expand1x1 = conv_bn_relu(squeeze, expand, 1, batch_norm=batch_norm)
        self.expand3x3 = conv_bn_relu(squeeze, expand, 3, batch_norm=batch_norm, padding=1)
        self.shortcut = shortcut  # None, "identity" (simple bypass) or "conv" (complex bypass's 1x1 conv)
        self.bypass = (conv_bn_relu(in_channels, 2 * expand, 1, batch_norm=batch_norm, relu=False)
                       if shortcut == "conv" else None)

    def forward(self, x):
        squeezed = self.squeeze(x)
        out = torch.cat([self.expand1x1(squeezed), self.expand3x3(squeezed)], 1)
        if self.shortcut == "identity":
            out = out + x
        elif self.shortcut == "conv":
            out = out + self.bypass(x)
        return out


class SqueezeNetCifar(nn.Module):
    def __init__(self, *, bypass="none", dropout=0.2, batch_norm=True, classes=10):
        super().__init__()
        self.conv1 = conv_bn_relu(3, 64, 3, batch_norm=batch_norm, padding=1)
        fires, channels = [], 64
        for index, (squeeze, expand) in enumerate(FIRES):
            # Simple bypass where input and output channels agree (fire3, 5, 7, 9); complex adds 1x1 convs elsewhere.
            shortcut = ("identity" if bypass in ("simple", "complex") and index % 2 == 1
                        else "conv" if bypass == "complex" else None)
            fires.append(Fire(channels, squeeze, expand, shortcut=shortcut, batch_norm=batch_norm))
            channels = 2 * expand
        self.fires = nn.ModuleList(fires)
        self.drop = nn.Dropout(dropout)
        self.conv10 = nn.Conv2d(channels, classes, 1)
        nn.init.normal_(self.conv10.weight, std=0.01)
        nn.init.zeros_(self.conv10.bias)

    def forward(self, x):
        x = F.max_pool2d(self.conv1(x), 3, 2, ceil_mode=True)
        for index, fire in enumerate(self.fires):
            x = fire(x)
            if index in POOL_AFTER_FIRES:
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        return F.relu(self.conv10(self.drop(x))).mean((2, 3))
