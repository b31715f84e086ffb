"""Audio2Head (Wang et al., IJCAI 2021): the four networks of the official ``audio2head.pth.tar``
with the module structure of wangsuzhen/Audio2Head ``modules/`` so each state dict loads strictly.

- ``Audio2Pose`` (``audio2poseLSTM``): two torchvision-layout ResNet34 encoders (``em_img`` on the
  256-px image, ``em_audio`` on one (1, 4, 41) feature block per frame) -> 256, a 2-layer LSTM
  (512 -> 256) fed [audio_t, previous output] with the image embedding as the first "previous
  output", ``output`` Linear 256 -> 6. Output row 0 comes from the image alone, so T frames of audio
  give T + 1 poses.
- ``Audio2Kp`` (``AudioModel3D``): ConvTranspose2d/BN/ReLU/Conv2d turns each (4, 41) block into
  2 x 32 x 32, nearest x2 -> 64 x 64; with the 0.25 anti-aliased identity image (3 ch) and pose map
  (1 ch) that is 6 channels x 64 frames into a 3-D hourglass; ``kp`` Conv3d k7 pad (3, 0, 0) gives
  58 x 58 heatmaps (softmax / 0.1) whose means are the keypoints; ``jacobian`` Conv2d k7 per frame.
- ``KPDetector`` and ``OcclusionAwareGenerator`` with ``DenseMotionNetwork``: FOMM's, with
  ``config/vox-256.yaml``'s sizes. ``grid_sample``/``interpolate`` use PyTorch's defaults
  (align_corners=False; nearest for the hourglass upsampling), as the official code does.

SynchronizedBatchNorm is state-dict compatible with ``nn.BatchNorm``. ``width`` scales every internal
channel count (1.0 = official); keypoint count, audio dimensions and pose size do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_KP = 10
SEQ_LEN = 64
AUDIO_DIM = 41


def _scaler(width: float):
    return lambda n: max(4, round(n * width))


# ---------------------------------------------------------------------------------------------------
# keypoint helpers (FOMM)


def coordinate_grid(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(h, w, 2) grid of (x, y) in [-1, 1], pixel centres at the ends (FOMM's make_coordinate_grid)."""
    x = 2 * (torch.arange(w, dtype=like.dtype, device=like.device) / (w - 1)) - 1
    y = 2 * (torch.arange(h, dtype=like.dtype, device=like.device) / (h - 1)) - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=-1)


def heatmap_mean(heatmap: torch.Tensor) -> torch.Tensor:
    """(..., h, w) normalised heatmaps -> (..., 2) expected coordinates."""
    grid = coordinate_grid(*heatmap.shape[-2:], like=heatmap)
    return (heatmap.unsqueeze(-1) * grid).sum(dim=(-3, -2))


def kp_gaussian(kp: torch.Tensor, h: int, w: int, variance: float) -> torch.Tensor:
    """(B, K, 2) keypoints -> (B, K, h, w) unnormalised gaussians."""
    grid = coordinate_grid(h, w, like=kp)
    d = grid.view(1, 1, h, w, 2) - kp.view(*kp.shape[:-1], 1, 1, 2)
    return torch.exp(-0.5 * (d**2).sum(-1) / variance)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur (sigma = (1/scale - 1)/2, kernel 2*round(4 sigma)+1, a persistent buffer
    ``weight``) then nearest downsampling by ``scale``."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        ax = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((ax - (size - 1) / 2) ** 2) / (2 * sigma**2))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())
        self.groups = channels
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        x = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        x = F.conv2d(x, self.weight, groups=self.groups)
        return F.interpolate(x, scale_factor=(self.scale, self.scale))


# ---------------------------------------------------------------------------------------------------
# 2-D blocks (FOMM modules/util.py layout)


class ResBlock2d(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv twice, plus input."""

    def __init__(self, c: int, kernel_size=3, padding=1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(c, c, kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(c)
        self.norm2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(out))) + x


class UpBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2))))


class DownBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm2d(cout)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size=3, padding=1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


def _hourglass_sizes(block_expansion: int, max_features: int, num_blocks: int):
    return [min(max_features, block_expansion * 2 ** (i + 1)) for i in range(num_blocks)]


class Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        outs = _hourglass_sizes(block_expansion, max_features, num_blocks)
        ins = [in_features, *outs[:-1]]
        self.down_blocks = nn.ModuleList(DownBlock2d(i, o) for i, o in zip(ins, outs, strict=True))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(UpBlock2d(cin, min(max_features, block_expansion * 2**i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), feats.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------------------------------------------
# 3-D blocks (Audio2Head's Hourglass3D)


class ResBlock3d(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(c, c, 3, padding=1)
        self.conv2 = nn.Conv3d(c, c, 3, padding=1)
        self.norm1 = nn.BatchNorm3d(c)
        self.norm2 = nn.BatchNorm3d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(out))) + x


class DownBlock3d(nn.Module):
    """Residual block, BN-ReLU, conv, BN-ReLU, 2x2x2 average pool."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.res = ResBlock3d(cin)
        self.norm_res = nn.BatchNorm3d(cin)
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm3d(cout)
        self.pool = nn.AvgPool3d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(F.relu(self.norm_res(self.res(x))))
        return self.pool(F.relu(self.norm(out)))


class UpBlock3d(nn.Module):
    """Nearest x2 (time and space), conv-BN-ReLU, residual block, BN-ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm3d(cout)
        self.res = ResBlock3d(cout)
        self.norm2 = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=2))))
        return F.relu(self.norm2(self.res(out)))


class Encoder3D(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        outs = _hourglass_sizes(block_expansion, max_features, num_blocks)
        ins = [in_features, *outs[:-1]]
        self.down_blocks = nn.ModuleList(DownBlock3d(i, o) for i, o in zip(ins, outs, strict=True))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder3D(nn.Module):
    """Like the 2-D decoder, but each skip passes through residual block + BN + ReLU first (the
    innermost-but-last skip is the hourglass input itself)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        ups, skips = [], []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            cout = min(max_features, block_expansion * 2**i)
            ups.append(UpBlock3d(cin, cout))
            c = cout if i > 0 else in_features
            skips.append(nn.Sequential(ResBlock3d(c), nn.BatchNorm3d(c), nn.ReLU()))
        self.res_blocks = nn.ModuleList(skips)
        self.up_blocks = nn.ModuleList(ups)
        self.out_filters = block_expansion + in_features

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        feats = list(feats)
        out = feats.pop()
        for up, skip in zip(self.up_blocks, self.res_blocks, strict=True):
            out = torch.cat([up(out), skip(feats.pop())], dim=1)
        return out


class Hourglass3D(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = Encoder3D(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder3D(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------------------------------------------
# ResNet34 (torchvision layout, ``resnet.`` prefix inside MyResNet34)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNet34(nn.Module):
    def __init__(self, num_classes: int, input_channel: int, width: float = 1.0) -> None:
        super().__init__()
        c = _scaler(width)
        planes = [c(64), c(128), c(256), c(512)]
        self.conv1 = nn.Conv2d(input_channel, planes[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = planes[0]
        for i, (p, n) in enumerate(zip(planes, (3, 4, 6, 3), strict=True)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(cin, p, stride)] + [BasicBlock(p, p) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            cin = p
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class _ResNetEmbedding(nn.Module):
    def __init__(self, dim: int, input_channel: int, width: float) -> None:
        super().__init__()
        self.resnet = ResNet34(dim, input_channel, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet(x)


# ---------------------------------------------------------------------------------------------------
# the four networks


class Audio2Pose(nn.Module):
    """img (B, 3, 256, 256) in [0, 1], audio (B, T, 4, 41) -> (B, T + 1, 6) normalised poses in
    roughly [-1, 1] (3 rotation-vector + 3 translation components; see ``preprocess.denormalise_pose``)."""

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        self.dim = _scaler(width)(256)
        self.em_audio = _ResNetEmbedding(self.dim, 1, width)
        self.em_img = _ResNetEmbedding(self.dim, 3, width)
        self.lstm = nn.LSTM(2 * self.dim, self.dim, num_layers=2, bias=True, batch_first=True)
        self.output = nn.Linear(self.dim, 6)

    def forward(self, img: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        b, t = audio.shape[:2]
        prev = self.em_img(img)
        audio_em = self.em_audio(audio.reshape(b * t, 1, 4, audio.shape[-1])).reshape(b, t, self.dim)
        outs = [prev]
        state = None
        for i in range(t):
            # the LSTM's own previous output, not the hidden state alone, is half its next input
            y, state = self.lstm(torch.cat([audio_em[:, i : i + 1], prev.unsqueeze(1)], dim=2), state)
            prev = y[:, 0]
            outs.append(prev)
        return self.output(torch.stack(outs, dim=1))


class Audio2Kp(nn.Module):
    """audio (B, 64, 4, 41), pose maps (B, 64, 256, 256) (0/255 box drawings), id_img (B, 3, 256, 256)
    -> {"value": (B, 64, 10, 2), "jacobian": (B, 64, 10, 2, 2), "heatmap": (B*64, 10, 58, 58)}."""

    def __init__(self, width: float = 1.0, seq_len: int = SEQ_LEN, num_kp: int = NUM_KP) -> None:
        super().__init__()
        c = _scaler(width)
        self.seq_len, self.num_kp = seq_len, num_kp
        self.down_id = AntiAliasInterpolation2d(3, 0.25)
        self.down_pose = AntiAliasInterpolation2d(seq_len, 0.25)
        self.embedding = nn.Sequential(nn.ConvTranspose2d(1, 8, (29, 14), stride=1, padding=(0, 11)),
                                       nn.BatchNorm2d(8), nn.ReLU(),
                                       nn.Conv2d(8, 2, 13, padding=6))
        self.predictor = Hourglass3D(c(32), 6, 5, c(512))
        self.kp = nn.Conv3d(self.predictor.out_filters, num_kp, 7, padding=(3, 0, 0))
        self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * num_kp, 7, padding=0)
        self.temperature = 0.1
        with torch.no_grad():  # identity jacobians at init, as FOMM
            self.jacobian.weight.zero_()
            self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * num_kp))

    def forward(self, audio: torch.Tensor, pose: torch.Tensor, id_img: torch.Tensor) -> dict[str, torch.Tensor]:
        b, t = audio.shape[:2]
        emb = self.embedding(audio.reshape(b * t, 1, 4, audio.shape[-1]))
        emb = F.interpolate(emb, scale_factor=2).reshape(b, t, 2, 64, 64).permute(0, 2, 1, 3, 4)
        ident = self.down_id(id_img).unsqueeze(2).expand(-1, -1, t, -1, -1)
        poses = self.down_pose(pose).unsqueeze(1)
        feat = self.predictor(torch.cat([emb, ident, poses], dim=1))  # (B, C, T, 64, 64)
        pred = self.kp(feat).permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, K, 58, 58)
        h, w = pred.shape[-2:]
        heat = F.softmax(pred.flatten(2) / self.temperature, dim=2).view_as(pred)
        value = heatmap_mean(heat).reshape(b, t, self.num_kp, 2)
        frames = feat.permute(0, 2, 1, 3, 4).flatten(0, 1)
        jmap = self.jacobian(frames).reshape(b * t, self.num_kp, 4, h, w)
        jac = (heat.unsqueeze(2) * jmap).flatten(3).sum(-1).reshape(b, t, self.num_kp, 2, 2)
        return {"value": value, "jacobian": jac, "heatmap": pred}


class KPDetector(nn.Module):
    """image (B, 3, 256, 256) -> {"value": (B, 10, 2), "jacobian": (B, 10, 2, 2), "heatmap": logits}."""

    def __init__(self, width: float = 1.0, num_kp: int = NUM_KP) -> None:
        super().__init__()
        c = _scaler(width)
        self.num_kp = num_kp
        self.predictor = Hourglass(c(32), 3, 5, c(1024))
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, 7, padding=0)
        self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * num_kp, 7, padding=0)
        self.temperature = 0.1
        self.down = AntiAliasInterpolation2d(3, 0.25)
        with torch.no_grad():
            self.jacobian.weight.zero_()
            self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * num_kp))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feat = self.predictor(self.down(x))
        pred = self.kp(feat)
        b, k, h, w = pred.shape
        heat = F.softmax(pred.flatten(2) / self.temperature, dim=2).view_as(pred)
        jmap = self.jacobian(feat).reshape(b, k, 4, h, w)
        jac = (heat.unsqueeze(2) * jmap).flatten(3).sum(-1).reshape(b, k, 2, 2)
        return {"value": heatmap_mean(heat), "jacobian": jac, "heatmap": pred}


class DenseMotionNetwork(nn.Module):
    def __init__(self, width: float = 1.0, num_kp: int = NUM_KP, kp_variance: float = 0.01) -> None:
        super().__init__()
        c = _scaler(width)
        self.num_kp, self.kp_variance = num_kp, kp_variance
        self.hourglass = Hourglass(c(64), (num_kp + 1) * 4, 5, c(1024))
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, 7, padding=3)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, 7, padding=3)
        self.down = AntiAliasInterpolation2d(3, 0.25)

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        src = self.down(source)
        b, _, h, w = src.shape
        k = self.num_kp
        heat = (kp_gaussian(kp_driving["value"], h, w, self.kp_variance)
                - kp_gaussian(kp_source["value"], h, w, self.kp_variance))
        heat = torch.cat([heat.new_zeros(b, 1, h, w), heat], dim=1).unsqueeze(2)
        # sparse motions T_{s<-d}(z) = kp_s + J_s J_d^-1 (z - kp_d), background = identity
        grid = coordinate_grid(h, w, like=src)
        rel = grid.view(1, 1, h, w, 2) - kp_driving["value"].view(b, k, 1, 1, 2)
        jac = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
        rel = torch.einsum("bkij,bkhwj->bkhwi", jac, rel)
        motions = torch.cat([grid.expand(b, 1, h, w, 2), rel + kp_source["value"].view(b, k, 1, 1, 2)], dim=1)
        rep = src.unsqueeze(1).expand(b, k + 1, 3, h, w).reshape(b * (k + 1), 3, h, w)
        warped = F.grid_sample(rep, motions.reshape(b * (k + 1), h, w, 2), align_corners=False)
        warped = warped.view(b, k + 1, 3, h, w)
        pred = self.hourglass(torch.cat([heat, warped], dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask(pred), dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        return {"mask": mask, "sparse_deformed": warped, "deformation": deformation,
                "occlusion_map": torch.sigmoid(self.occlusion(pred))}


def warp(x: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    """grid_sample x by a (B, h, w, 2) deformation, bilinearly resized to x's size first."""
    h, w = x.shape[-2:]
    if deformation.shape[1:3] != (h, w):
        deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear").permute(0, 2, 3, 1)
    return F.grid_sample(x, deformation, align_corners=False)


class OcclusionAwareGenerator(nn.Module):
    """source (B, 3, 256, 256), driving and source keypoints ({"value", "jacobian"}) ->
    {"prediction": (B, 3, 256, 256) sigmoid, "deformed", "deformation", "occlusion_map", "mask"}."""

    def __init__(self, width: float = 1.0, num_kp: int = NUM_KP) -> None:
        super().__init__()
        c = _scaler(width)
        be, mx = c(64), c(512)
        self.dense_motion_network = DenseMotionNetwork(width, num_kp)
        self.first = SameBlock2d(3, be, kernel_size=7, padding=3)
        self.down_blocks = nn.ModuleList(DownBlock2d(min(mx, be * 2**i), min(mx, be * 2 ** (i + 1))) for i in range(2))
        self.up_blocks = nn.ModuleList(UpBlock2d(min(mx, be * 2 ** (2 - i)), min(mx, be * 2 ** (1 - i))) for i in range(2))
        self.bottleneck = nn.Sequential()
        for i in range(6):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(min(mx, be * 4)))
        self.final = nn.Conv2d(be, 3, 7, padding=3)

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        motion = self.dense_motion_network(source, kp_driving, kp_source)
        out = warp(out, motion["deformation"])
        occ = motion["occlusion_map"]
        if occ.shape[2:] != out.shape[2:]:
            occ = F.interpolate(occ, size=out.shape[2:], mode="bilinear")
        out = self.bottleneck(out * occ)
        for block in self.up_blocks:
            out = block(out)
        return {**motion, "deformed": warp(source, motion["deformation"]),
                "prediction": torch.sigmoid(self.final(out))}


NETWORKS = {"audio2pose": Audio2Pose, "audio2kp": Audio2Kp, "generator": OcclusionAwareGenerator,
            "kp_detector": KPDetector}


def build_networks(width: float = 1.0) -> dict[str, nn.Module]:
    """The four networks at ``width`` (1.0 = the official sizes), in eval mode."""
    return {name: cls(width=width).eval() for name, cls in NETWORKS.items()}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["NETWORKS", "Audio2Kp", "Audio2Pose", "KPDetector", "OcclusionAwareGenerator", "build_networks",
           "heatmap_mean", "kp_gaussian"]
