"""PyTorch reference models for resnet.c.

    build_model(arch, in_channels, num_classes, stem="imagenet", width=64) -> nn.Module
    randomize(model, seed, calib_input=None) -> model   (random weights, non-trivial BN stats)

arch: d2l_resnet18, resnet18, resnet34, resnet50, resnet101, resnet152.

d2l_resnet18 is the "Dive into Deep Learning" ResNet-18 (convs with bias),
laid out so its state_dict keys are conv.block.{0,1}.*,
conv.resnet_block{1..4}.{0,1}.{conv1,conv2,conv3,bn1,bn2}.*, fc.*.
The others are torchvision's, with conv1 replaced by a bias-free
Conv2d(in_channels, 64, 7, 2, 3) when in_channels != 3.
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

ARCHS = ("d2l_resnet18", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
         "wide_resnet50_2", "wide_resnet101_2", "resnext50_32x4d", "resnext101_32x8d")


class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(in_channels, out_channels, 1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


def resnet_block(in_channels, out_channels, num_residuals, first_block=False):
    blk = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(in_channels, out_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(out_channels, out_channels))
    return nn.Sequential(*blk)


class D2LResNet18(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, width=64):
        super().__init__()
        w = width
        block = nn.Sequential(
            nn.Conv2d(in_channels, w, kernel_size=7, stride=2, padding=3),
            nn.BatchNorm2d(w), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        self.conv = nn.Sequential(OrderedDict([
            ("block", block),
            ("resnet_block1", resnet_block(w, w, 2, first_block=True)),
            ("resnet_block2", resnet_block(w, 2 * w, 2)),
            ("resnet_block3", resnet_block(2 * w, 4 * w, 2)),
            ("resnet_block4", resnet_block(4 * w, 8 * w, 2)),
        ]))
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.conv(x))))


def build_model(arch, in_channels=3, num_classes=1000, stem="imagenet", width=64):
    """stem "cifar": the first conv is 3x3 stride 1 (padding 1) and there is no max-pool.
    width: the base width (resnet.c's --width): the stem's channels, the stages'
    planes being width, 2, 4 and 8 x width (64 as published)."""
    if stem == "cifar":
        m = build_model(arch, in_channels, num_classes, width=width)
        if arch == "d2l_resnet18":
            m.conv.block[0] = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1)
            m.conv.block[3] = nn.Identity()
        else:
            m.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
            m.maxpool = nn.Identity()
        return m
    if arch == "d2l_resnet18":
        return D2LResNet18(in_channels, num_classes, width)
    if arch not in ARCHS:
        raise ValueError("unknown arch %r (known: %s)" % (arch, ", ".join(ARCHS)))
    import torchvision
    m = getattr(torchvision.models, arch)(num_classes=num_classes)
    if width != 64:
        rewidth(m, width, num_classes)
    if in_channels != 3 or width != 64:
        m.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(m.conv1.weight, mode="fan_out", nonlinearity="relu")
    return m


def rewidth(m, width, num_classes):
    """A torchvision ResNet rebuilt at base width `width`, initialised as torchvision does."""
    block = type(m.layer1[0])
    m.inplanes = width
    m.bn1 = nn.BatchNorm2d(width)
    for s in range(4):
        n = len(getattr(m, "layer%d" % (s + 1)))
        setattr(m, "layer%d" % (s + 1), m._make_layer(block, width << s, n, stride=1 if s == 0 else 2))
    m.fc = nn.Linear(8 * width * block.expansion, num_classes)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")


def first_conv(model):
    return model.conv.block[0] if isinstance(model, D2LResNet18) else model.conv1


@torch.no_grad()
def randomize(model, seed=0, calib_input=None, calib_size=64, calib_batch=8, branch_scale=0.2):
    """Random weights and non-trivial BatchNorm state, with activations kept O(1).

    Convs: kaiming-normal weights (std sqrt(2/fan_in)), biases N(0, 0.1).
    Linear: N(0, 1/fan_in) weights, N(0, 0.1) biases.
    BN: weight ~ U(0.5, 1.5), bias ~ N(0, 0.1), num_batches_tracked a random int;
    the last BN of each residual branch (bn2 of d2l Residual / BasicBlock, bn3
    of Bottleneck) has both scaled by `branch_scale` (0.2), like torchvision's
    zero_init_residual but not zero: with full-size branches a random 50-block
    net is so ill-conditioned that PyTorch's own float32 forward is off by up
    to 1e-3 (relative) from float64; with 0.2 it is <= ~1e-5.
    Running stats are calibrated in one eval-mode pass over `calib_input`
    (default: N(0,1) images, calib_batch x C x calib_size^2): each BN, when
    reached, gets running_mean = mean_c + N(0, 0.1) * std_c and
    running_var = var_c * U(0.5, 2) of its actual input, so eval-mode
    normalization is off by a per-channel shift/scale (a real test of the
    running stats) while activations stay O(1) through 150 layers.
    """
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    def uniform(shape, lo, hi):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    bns = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.weight[0].numel()
            m.weight.copy_(normal(m.weight.shape, (2.0 / fan_in) ** 0.5))
            if m.bias is not None:
                m.bias.copy_(normal(m.bias.shape, 0.1))
        elif isinstance(m, nn.Linear):
            m.weight.copy_(normal(m.weight.shape, (1.0 / m.in_features) ** 0.5))
            m.bias.copy_(normal(m.bias.shape, 0.1))
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(uniform(m.weight.shape, 0.5, 1.5))
            m.bias.copy_(normal(m.bias.shape, 0.1))
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=g)))
            bns.append(m)

    for m in model.modules():
        last = getattr(m, "bn3", None) or (getattr(m, "bn2", None) if hasattr(m, "conv2") else None)
        if isinstance(last, nn.BatchNorm2d):
            last.weight.mul_(branch_scale)
            last.bias.mul_(branch_scale)

    if calib_input is None:
        cin = first_conv(model).in_channels
        calib_input = normal((calib_batch, cin, calib_size, calib_size), 1.0)

    def pre_hook(m, inputs):
        x = inputs[0].double()
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        floor = max(float(var.mean()) * 1e-2, 1e-4)   # dead channels: no 1/sqrt(eps)
        var = var.clamp(min=floor)
        c = mean.numel()
        m.running_mean.copy_((mean + normal((c,), 0.1).double() * var.sqrt()).to(m.running_mean.dtype))
        m.running_var.copy_((var * uniform((c,), 0.5, 2.0).double()).to(m.running_var.dtype))

    was_training = model.training
    model.eval()
    handles = [bn.register_forward_pre_hook(pre_hook) for bn in bns]
    try:
        model(calib_input.to(next(model.parameters()).dtype))
    finally:
        for h in handles:
            h.remove()
    model.train(was_training)
    return model


def metadata(arch, in_channels, num_classes):
    return {"arch": arch, "in_channels": str(in_channels), "num_classes": str(num_classes)}


if __name__ == "__main__":
    import sys
    torch.set_num_threads(2)
    for arch in (sys.argv[1:] or ARCHS):
        m = randomize(build_model(arch, 3, 1000), seed=1)
        x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
        m.eval()
        ye = m(x)
        m.train()
        yt = m(x)
        n = sum(p.numel() for p in m.state_dict().values())
        print("%-13s params+buffers %9d  eval max|y| %.3g std %.3g   train max|y| %.3g std %.3g"
              % (arch, n, ye.abs().max(), ye.std(), yt.abs().max(), yt.std()))
