"""Hand-written torch models for tests/test_import.py, in the class structure their originals have
(torchvision's ResNet and Inception, the usual U-Net, squeeze-and-excitation), plus ones a plan cannot hold.
A module of its own so that `convplan import _import_models:ResNet18` can load them."""

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)
class ResNet18(nn.Module):
    def __init__(self, layers=(2, 2, 2, 2), num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make(64, layers[0])
        self.layer2 = self._make(128, layers[1], 2)
        self.layer3 = self._make(256, layers[2], 2)
        self.layer4 = self._make(512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
    def _make(self, planes, blocks, stride=1):
        ds = None
        if stride != 1 or self.inplanes != planes:
            ds = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, ds)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)
    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)

class BasicConv(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)
    def forward(self, x):
        return F.relu(self.bn(self.conv(x)), inplace=True)

class InceptionA(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        self.b1 = BasicConv(cin, 16, kernel_size=1)
        self.b5_1 = BasicConv(cin, 12, kernel_size=1)
        self.b5_2 = BasicConv(12, 16, kernel_size=5, padding=2)
        self.b3_1 = BasicConv(cin, 16, kernel_size=1)
        self.b3_2 = BasicConv(16, 24, kernel_size=3, padding=1)
        self.bp = BasicConv(cin, pool, kernel_size=1)
    def forward(self, x):
        b1 = self.b1(x)
        b5 = self.b5_2(self.b5_1(x))
        b3 = self.b3_2(self.b3_1(x))
        bp = self.bp(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([b1, b5, b3, bp], 1)

class InceptionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = BasicConv(3, 32, kernel_size=3, stride=2)
        self.mixed_a = InceptionA(32, 8)
        self.mixed_b = InceptionA(64, 16)
        self.fc = nn.Linear(72, 10)
    def forward(self, x):
        x = self.mixed_b(self.mixed_a(self.stem(x)))
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.fc(x)

class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.double_conv = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
    def forward(self, x):
        return self.double_conv(x)

class Down(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(cin, cout))
    def forward(self, x):
        return self.maxpool_conv(x)

class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(cin, cout)
    def forward(self, x1, x2):
        x1 = self.up(x1)
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)

class UNet(nn.Module):
    def __init__(self, classes=2, w=8):
        super().__init__()
        self.inc = DoubleConv(3, w)
        self.down1 = Down(w, 2 * w)
        self.down2 = Down(2 * w, 4 * w)
        self.up1 = Up(4 * w, 2 * w)
        self.up2 = Up(2 * w, w)
        self.outc = nn.Conv2d(w, classes, kernel_size=1)
    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        return self.outc(x)

class SqueezeExcitation(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Sigmoid()
    def forward(self, x):
        s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return s * x

class SEClassic(nn.Module):
    """The SENet paper's: pooled, flattened, two Linears, reshaped back (view) and multiplied."""
    def __init__(self, c, r=4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())
    def forward(self, x):
        b, c, _, _ = x.size()
        y = F.adaptive_avg_pool2d(x, 1).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)

class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.se = SqueezeExcitation(16, 4)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.se2 = SqueezeExcitation(32, 8)
    def forward(self, x):
        return self.se2(self.conv2(self.se(self.conv(x))))

class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.gate = Gate()
    def forward(self, x):
        return self.gate(self.conv(x))

class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 1)
    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return x


class Unplannable(nn.Module):
    """Five things a plan cannot hold, each to be reported where it is."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.scale = nn.Parameter(torch.ones(1))  # read directly in forward
        self.rnn = nn.GRU(8, 8)  # a torch.nn module that is no layer kind
        self.unused = nn.Linear(4, 4)  # never called: its weights would be lost

    def forward(self, x):
        x = self.conv(x) * self.scale
        x = torch.clamp(x, 0, 1)  # a function that is no kind
        return x + 1  # a merge with a number


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(self.conv(x))


def resnet18(num_classes=1000):
    """A factory, as torchvision's."""
    return ResNet18(num_classes=num_classes)


def broken_factory():
    raise ValueError("this factory is broken")


class CheckedConv(nn.Module):
    """A block that checks its input as torchvision's do: fx cannot trace the `if`, a run can read it."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.conv.in_channels:
            raise ValueError(f"expected [N, {self.conv.in_channels}, H, W], got {list(x.shape)}")
        return self.relu(self.bn(self.conv(x)))


class Untraceable(nn.Module):
    """Something with a non-traceable branch (issue 12): its own forward and its blocks' check their input."""

    def __init__(self, classes=5):
        super().__init__()
        self.stem = CheckedConv(3, 8)
        self.stage = nn.Sequential(CheckedConv(8, 16, stride=2), CheckedConv(16, 16))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()  # a functional call between submodules is no submodule a run can see
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        assert x.shape[1] == 3, "RGB input"
        x = self.stage(self.stem(x))
        return self.fc(self.flatten(self.pool(x)))


class HiddenArithmetic(nn.Module):
    """Untraceable, and computing between its layers: read from a run, the arithmetic is reported."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.b = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError("4-D input")
        return self.b(self.a(x) * 2)  # the line the report names


class SizeBranch(nn.Module):
    """A branch on a size: the run at the example takes one side; another size the other."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 1)
        self.down = nn.MaxPool2d(2)

    def forward(self, x):
        x = self.a(x)
        if x.shape[-1] % 2 == 0:
            x = self.down(x)
        return x


class TanhEncoder(nn.Module):
    """A Transformer encoder whose layers' activation is a callable a plan cannot name."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(8, 2, 16, activation=torch.tanh, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.encoder(x)
