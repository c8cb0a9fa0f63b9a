"""WaffleIron (Puy et al., ICCV 2023), seal's point-token 3D backbone family, in plain PyTorch (no sparse engine).

One token per seal voxel (its mean point). A point embedding turns each token's features and those of its k nearest
neighbours into F channels; then L layers each apply a spatial mix (tokens averaged into the cells of a 2D grid,
two depthwise 3x3 convolutions, read back per token) and a channel mix (a per-token MLP), both residual with
LayerScale and stochastic depth. Submodules carry the official names, so a released state dict loads unchanged
(`seal.models.waffleiron_weights`).

Facts, from valeoai/WaffleIron @bcd387c (WI) and valeoai/ScaLR branch scalr_plus @7cf02a2 (S+):
- embedding (WI waffleiron/embedding.py:29-44, 99-124): ``norm`` BatchNorm1d(C_in); ``conv1`` 1x1 (point
  embedding); ``conv2`` = BatchNorm2d, 1x1 conv (no bias), BatchNorm2d, ReLU, 1x1 conv (no bias) on the
  neighbours' normalised features minus the centre's, max over neighbours; ``final`` 1x1 conv of both (2F -> F).
  Neighbour 0 (the point itself) is skipped (:113-117).
- neighbours (WI datasets/pc_dataset.py:180-182): cKDTree per scan, k = num_neighbors + 1 on xyz.
- features (WI datasets/pc_dataset.py:132-147, :193): [intensity, xyz, radius] in input_feat order, radius = |xyz|;
  S+ datasets/pc_dataset.py:116-119 standardises intensity with per-dataset mean/std.
- grids (WI datasets/pc_dataset.py:81, 109-130): dim_proj d projects onto plane {0: (y, z), 1: (x, z), 2: (x, y)};
  cell size = fov extent / grid shape; cell = q0 * W + q1 with q = int((p - fov_min) / cell size).
- channel mix (WI waffleiron/backbone.py:72-119): norm, ``mlp`` = 1x1 conv, ReLU, 1x1 conv; ``scale`` = depthwise
  1x1 conv without bias (LayerScale); tokens + drop_path(scale(mlp(norm(tokens)))).
- spatial mix (WI backbone.py:122-187): norm, mean per 2D cell (S+ waffleiron/helper_projection.py:18-29:
  scatter_reduce "mean"), ``ffn`` = depthwise 3x3 conv (padding 1, bias), ReLU, depthwise 3x3 conv, ``scale``, read
  back by cell index (gather), residual with drop_path.
- layer d uses grid d % len(grids) (WI backbone.py:198-203) and runs spatial then channel mix (:219-221).
- DropPath (WI backbone.py:43-69): one Bernoulli(1 - p) per scan, kept branch divided by 1 - p; the same p in every
  layer (backbone.py:196-200).
- norms (WI backbone.py:30-40): BatchNorm1d or LayerNorm over channels (WI configs: batchnorm, segmenter.py:37-38);
  S+ backbone.py:69, 105: always LayerNorm; S+ backbone.py:73, 109: GELU instead of ReLU with ``gelu``.
- shapes: WI configs/WaffleIron-48-256__kitti.yaml:2-19 and WaffleIron-48-384__nuscenes.yaml:2-19 (fov, dim_proj
  2,1,0, grids, drop 0.2), :30 neighbors 16; S+ configs/pretrain/WI_768-ScaLR_plus.yaml:1-17.
Where seal differs: seal keeps every voxel, so tokens outside the fov (WI crops them, utils/transforms.py Crop)
stay, skip every spatial mix (no cell, zero residual) and still take part in neighbour lists; a token is the voxel
mean, not WI's one random point per voxel (utils/transforms.py Voxelize); scans are not zero-padded, so BatchNorm
and cell means see real tokens only. Tokens stay [M, C] rows (1x1 convs run as linear maps on their weights, grids
are channels-last views) and LayerScale is folded into the preceding conv: the same function, fewer copies. Checked
once against both official implementations on shared random weights (eval and train mode): equal to 4e-5.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from seal.core.batch import BackboneInput
from seal.core.config import BackboneConfig, WaffleIronConfig
from seal.core.errors import ConfigError
from seal.models.backbones import BACKBONES, BackboneSpec, SparseBackbone

_WI = dict(dim_proj=[2, 1, 0], num_neighbors=16, drop_path=0.2, activation="relu", norm="batchnorm",
           input_features=["intensity", "xyz", "radius"])
SHAPES: dict[str, dict] = {
    "WI-48-256": {**_WI, "depth": 48, "width": 256, "grid_shape": [[250, 250], [250, 12], [250, 12]],
                  "fov": [[-50.0, -50.0, -3.0], [50.0, 50.0, 2.0]]},
    "WI-48-384": {**_WI, "depth": 48, "width": 384, "grid_shape": [[166, 166], [166, 16], [166, 16]],
                  "fov": [[-50.0, -50.0, -5.0], [50.0, 50.0, 5.0]]},
    "WI-48-768": {**_WI, "depth": 48, "width": 768, "grid_shape": [[256, 256], [256, 32], [256, 32]],
                  "fov": [[-64.0, -64.0, -8.0], [64.0, 64.0, 8.0]], "activation": "gelu", "norm": "layernorm"},
    "tiny": {**_WI, "depth": 4, "width": 32, "grid_shape": [[32, 32], [32, 8], [32, 8]],
             "fov": [[-32.0, -32.0, -4.0], [32.0, 32.0, 4.0]], "num_neighbors": 8, "drop_path": 0.0,
             "activation": "gelu", "norm": "layernorm"},
}
FEATURES = ("intensity", "xyz", "radius", "height", "constant")
PLANES = {0: (1, 2), 1: (0, 2), 2: (0, 1)}  # projection axis -> the two axes of its plane


def resolve_shape(cfg: WaffleIronConfig | dict) -> WaffleIronConfig:
    """``cfg`` with every null key filled from its packaged ``shape``, checked (one line naming the key)."""
    if isinstance(cfg, dict):
        cfg = WaffleIronConfig(**cfg)
    if cfg.shape not in SHAPES:
        raise ConfigError(f"model.backbone.waffleiron.shape={cfg.shape}: unknown, one of {', '.join(SHAPES)}")
    base = SHAPES[cfg.shape]
    out = replace(cfg, **{f.name: base[f.name] for f in fields(cfg) if getattr(cfg, f.name) is None})
    key = "model.backbone.waffleiron."
    if len(out.dim_proj) != len(out.grid_shape) or not out.dim_proj:
        raise ConfigError(f"{key}dim_proj has {len(out.dim_proj)} axes but grid_shape {len(out.grid_shape)} grids")
    if any(d not in PLANES for d in out.dim_proj):
        raise ConfigError(f"{key}dim_proj={out.dim_proj}: axes are 0, 1 or 2")
    if any(len(g) != 2 or min(g) < 1 for g in out.grid_shape):
        raise ConfigError(f"{key}grid_shape={out.grid_shape}: each grid is [rows, cols] >= 1")
    if len(out.fov) != 2 or any(len(v) != 3 for v in out.fov) or any(a >= b for a, b in zip(*out.fov, strict=True)):
        raise ConfigError(f"{key}fov={out.fov}: expected [[xmin, ymin, zmin], [xmax, ymax, zmax]] with min < max")
    bad = [f for f in out.input_features if f not in FEATURES]
    if bad or not out.input_features:
        raise ConfigError(f"{key}input_features={out.input_features}: each one of {', '.join(FEATURES)}")
    return out


def feature_width(shape: WaffleIronConfig, in_channels: int) -> int:
    """Input channels of the embedding: ``in_channels`` for intensity, 3 for xyz, 1 for radius / height / constant."""
    return sum(in_channels if f == "intensity" else 3 if f == "xyz" else 1 for f in shape.input_features)


def point_features(inputs: BackboneInput, shape: WaffleIronConfig) -> Tensor:
    """[M, feature_width] token features in ``input_features`` order (WI datasets/pc_dataset.py:132-147)."""
    xyz = inputs.xyz.float()
    columns = {"intensity": lambda: (inputs.feats.float() - shape.intensity_mean) / shape.intensity_std,
               "xyz": lambda: xyz, "radius": lambda: xyz.norm(dim=1, keepdim=True), "height": lambda: xyz[:, 2:3],
               "constant": lambda: xyz.new_ones(len(xyz), 1)}
    return torch.cat([columns[f]() for f in shape.input_features], dim=1)


@torch.no_grad()
def knn(xyz: Tensor, batch: Tensor, batch_size: int, k: int, method: str = "auto", chunk: int = 1 << 25) -> Tensor:
    """[M, k] global indices of each token's k nearest neighbours within its own scan, nearest first, the
    nearest (the token itself) dropped as WI does. ``method``: "kdtree" (scipy, CPU), "torch" (exact distances,
    ``chunk`` distance entries at a time: bounded memory on GPU) or "auto" (kdtree for CPU tensors). A scan with
    fewer than k + 1 tokens repeats the token itself."""
    method = ("kdtree" if xyz.device.type == "cpu" else "torch") if method == "auto" else method
    out = torch.empty(len(xyz), k, dtype=torch.long, device=xyz.device)
    order = torch.argsort(batch, stable=True)
    counts = torch.bincount(batch, minlength=batch_size).tolist()
    start = 0
    for n in counts:
        rows = order[start:start + n]
        start += n
        if n == 0:
            continue
        pts, kk = xyz[rows].float(), min(k + 1, n)
        if method == "kdtree":
            from scipy.spatial import cKDTree

            host = pts.cpu().numpy()
            local_np = cKDTree(host).query(host, k=kk)[1].reshape(n, kk)
            local = torch.from_numpy(local_np.astype(np.int64)).to(xyz.device)
        else:
            step = max(1, chunk // n)
            local = torch.cat([torch.cdist(pts[i:i + step], pts, compute_mode="donot_use_mm_for_euclid_dist")
                               .topk(kk, dim=1, largest=False, sorted=True).indices for i in range(0, n, step)])
        if kk < k + 1:
            local = torch.cat([local, torch.arange(n, device=xyz.device)[:, None].expand(n, k + 1 - kk)], dim=1)
        out[rows] = rows[local[:, 1:]]
    return out


@dataclass
class Plane:
    """Where every token lands on one 2D grid: ``cell`` (row of the [B*H*W, C] grid), ``weight`` (1 / tokens in
    the cell, 0 outside the fov: scatter-sum becomes the cell mean) and ``keep`` (1 inside the fov, else 0; None
    when every token is inside)."""

    cell: Tensor          # [M] int64
    weight: Tensor        # [M, 1] float32
    keep: Tensor | None   # [M, 1] float32
    height: int
    width: int


@torch.no_grad()
def project(xyz: Tensor, batch: Tensor, batch_size: int, shape: WaffleIronConfig) -> list[Plane]:
    """One `Plane` per entry of ``dim_proj`` (WI datasets/pc_dataset.py:109-130): cell size = fov extent / grid."""
    lo, hi = (xyz.new_tensor(v) for v in shape.fov)
    inside = ((xyz > lo) & (xyz < hi)).all(dim=1)
    keep = None if bool(inside.all()) else inside.float()[:, None]
    planes = []
    for axis, (rows, cols) in zip(shape.dim_proj, shape.grid_shape, strict=True):
        a, b = PLANES[axis]
        q = [((xyz[:, d] - lo[d]) / ((hi[d] - lo[d]) / n)).floor().long().clamp_(0, n - 1)
             for d, n in ((a, rows), (b, cols))]
        cell = torch.where(inside, batch * (rows * cols) + q[0] * cols + q[1], 0)
        counts = torch.bincount(cell[inside], minlength=batch_size * rows * cols).clamp_(min=1)
        weight = torch.where(inside, 1.0 / counts[cell].float(), 0.0)[:, None]
        planes.append(Plane(cell, weight, keep, rows, cols))
    return planes


def _activation(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.ReLU()


def _norm(kind: str, channels: int, momentum: float) -> nn.Module:
    return nn.LayerNorm(channels) if kind == "layernorm" else nn.BatchNorm1d(channels, momentum=momentum)


def _pointwise(conv: nn.Module, x: Tensor, scale: Tensor | None = None) -> Tensor:
    """A 1x1 Conv1d/Conv2d applied to rows [R, C_in] (its weight as a linear map): tokens stay [M, C]. ``scale``
    (LayerScale, [C_out]) is folded into weight and bias: the same function, one [R, C_out] tensor fewer."""
    weight, bias = conv.weight.reshape(conv.weight.shape[0], -1), conv.bias
    if scale is not None:
        weight, bias = weight * scale[:, None], None if bias is None else bias * scale
    return F.linear(x, weight, bias)


class DropPath(nn.Module):
    """Stochastic depth per scan (WI backbone.py:43-69): each scan's branch is dropped with probability p."""

    def __init__(self, prob: float = 0.0) -> None:
        super().__init__()
        self.prob = prob

    def forward(self, x: Tensor, batch: Tensor, batch_size: int) -> Tensor:
        if not self.training or self.prob == 0.0:
            return x
        if self.prob >= 1.0:
            return x * 0.0
        keep = (torch.rand(batch_size, device=x.device, dtype=x.dtype) + (1 - self.prob)).floor_() / (1 - self.prob)
        return x * keep[batch].unsqueeze(1)

    def extra_repr(self) -> str:
        return f"prob={self.prob}"


class Embedding(nn.Module):
    """Point embedding (WI embedding.py): own features plus max over neighbours of (neighbour - centre)."""

    def __init__(self, channels_in: int, channels_out: int, momentum: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(channels_in, momentum=momentum)
        self.conv1 = nn.Conv1d(channels_in, channels_out, 1)
        self.conv2 = nn.Sequential(nn.BatchNorm2d(channels_in, momentum=momentum),
                                   nn.Conv2d(channels_in, channels_out, 1, bias=False),
                                   nn.BatchNorm2d(channels_out, momentum=momentum), nn.ReLU(),
                                   nn.Conv2d(channels_out, channels_out, 1, bias=False))
        self.final = nn.Conv1d(2 * channels_out, channels_out, 1)

    def forward(self, x: Tensor, neighbors: Tensor) -> Tensor:
        """x [M, C_in], neighbors [M, K] -> [M, C_out]."""
        x = self.norm(x)
        point = _pointwise(self.conv1, x)
        m, k = neighbors.shape
        h = (x[neighbors] - x.unsqueeze(1)).reshape(m * k, -1)
        bn1, conv_a, bn2, act, conv_b = self.conv2
        h = bn1(h[:, :, None, None])[:, :, 0, 0]
        h = bn2(_pointwise(conv_a, h)[:, :, None, None])[:, :, 0, 0]
        h = _pointwise(conv_b, act(h)).reshape(m, k, -1).amax(dim=1)
        return _pointwise(self.final, torch.cat([point, h], dim=1))


class ChannelMix(nn.Module):
    """tokens + DropPath(LayerScale(MLP(norm(tokens)))) (WI backbone.py:72-119)."""

    def __init__(self, channels: int, drop_path: float, activation: str, norm: str, momentum: float) -> None:
        super().__init__()
        self.norm = _norm(norm, channels, momentum)
        self.mlp = nn.Sequential(nn.Conv1d(channels, channels, 1), _activation(activation),
                                 nn.Conv1d(channels, channels, 1))
        self.scale = nn.Conv1d(channels, channels, 1, bias=False, groups=channels)  # LayerScale
        self.drop_path = DropPath(drop_path)

    def forward(self, tokens: Tensor, batch: Tensor, batch_size: int) -> Tensor:
        h = self.mlp[1](_pointwise(self.mlp[0], self.norm(tokens)))
        return tokens + self.drop_path(_pointwise(self.mlp[2], h, self.scale.weight.reshape(-1)), batch, batch_size)


class SpatialMix(nn.Module):
    """tokens + DropPath(LayerScale(read-back(FFN(cell means(norm(tokens)))))) (WI backbone.py:122-187)."""

    def __init__(self, channels: int, grid_shape: tuple[int, int], drop_path: float, activation: str, norm: str,
                 momentum: float) -> None:
        super().__init__()
        self.H, self.W = grid_shape
        self.norm = _norm(norm, channels, momentum)
        self.ffn = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, groups=channels), _activation(activation),
                                 nn.Conv2d(channels, channels, 3, padding=1, groups=channels))
        self.scale = nn.Conv1d(channels, channels, 1, bias=False, groups=channels)  # LayerScale
        self.drop_path = DropPath(drop_path)

    def forward(self, tokens: Tensor, plane: Plane, batch: Tensor, batch_size: int) -> Tensor:
        c = tokens.shape[1]
        h = self.norm(tokens)
        grid = h.new_zeros(batch_size * self.H * self.W, c).index_add_(0, plane.cell, h * plane.weight.to(h.dtype))
        grid = grid.view(batch_size, self.H, self.W, c).permute(0, 3, 1, 2)  # channels-last [B, C, H, W]
        conv1, act, conv2 = self.ffn
        scale = self.scale.weight.reshape(-1)  # LayerScale folded into the last depthwise conv (per channel)
        grid = F.conv2d(act(conv1(grid)), conv2.weight * scale[:, None, None, None], conv2.bias * scale, padding=1,
                        groups=c)
        h = grid.permute(0, 2, 3, 1).reshape(-1, c).index_select(0, plane.cell)
        if plane.keep is not None:  # tokens outside the fov: no spatial mixing
            h = h * plane.keep.to(h.dtype)
        return tokens + self.drop_path(h, batch, batch_size)

    def extra_repr(self) -> str:
        return f"(grid): [{self.H}, {self.W}]"


class Mixer(nn.Module):
    """The L layers (WI backbone.py:190-223): spatial mix on grid d % len(grids), then channel mix; with
    ``checkpointing`` each mix is recomputed in backward (S+ backbone.py:199-206; with norm=batchnorm the running
    statistics then move twice per training step)."""

    def __init__(self, channels: int, shape: WaffleIronConfig, momentum: float) -> None:
        super().__init__()
        self.depth, self.checkpointing = shape.depth, shape.checkpointing
        grids = [tuple(g) for g in shape.grid_shape]
        self.channel_mix = nn.ModuleList(ChannelMix(channels, shape.drop_path, shape.activation, shape.norm, momentum)
                                         for _ in range(shape.depth))
        self.spatial_mix = nn.ModuleList(SpatialMix(channels, grids[d % len(grids)], shape.drop_path,
                                                    shape.activation, shape.norm, momentum)
                                         for d in range(shape.depth))

    def forward(self, tokens: Tensor, planes: list[Plane], batch: Tensor, batch_size: int) -> Tensor:
        recompute = self.checkpointing and self.training and torch.is_grad_enabled()
        for d, (smix, cmix) in enumerate(zip(self.spatial_mix, self.channel_mix, strict=True)):
            plane = planes[d % len(planes)]
            if recompute:
                tokens = checkpoint(smix, tokens, plane, batch, batch_size, use_reentrant=False)
                tokens = checkpoint(cmix, tokens, batch, batch_size, use_reentrant=False)
            else:
                tokens = cmix(smix(tokens, plane, batch, batch_size), batch, batch_size)
        return tokens


class WaffleIron(SparseBackbone):
    """WaffleIron on seal's voxels: `BackboneInput` in (mean xyz and intensity per voxel), [M, width] out."""

    def __init__(self, config: BackboneConfig | None = None) -> None:
        super().__init__()
        cfg = config or BackboneConfig(name="waffleiron")
        if isinstance(cfg.waffleiron, dict):  # from an exported file's asdict()
            cfg = replace(cfg, waffleiron=WaffleIronConfig(**cfg.waffleiron))
        self.config = cfg
        self.shape = resolve_shape(cfg.waffleiron)
        self.embed = Embedding(feature_width(self.shape, cfg.in_channels), self.shape.width, cfg.bn_momentum)
        self.waffleiron = Mixer(self.shape.width, self.shape, cfg.bn_momentum)
        self.out_channels = self.shape.width

    def forward(self, inputs: BackboneInput) -> Tensor:
        """Per-token features [M, width] in input order; a token sees only tokens of its own scan."""
        if inputs.feats.shape[1] != self.config.in_channels:
            raise ValueError(f"WaffleIron built for {self.config.in_channels} feature channels, got "
                             f"{inputs.feats.shape[1]}")
        batch = inputs.coords[:, 0].long()
        xyz = inputs.xyz.float()
        neighbors = knn(xyz, batch, inputs.batch_size, self.shape.num_neighbors)
        planes = project(xyz, batch, inputs.batch_size, self.shape)
        tokens = self.embed(point_features(inputs, self.shape), neighbors)
        return self.waffleiron(tokens, planes, batch, inputs.batch_size)

    def describe(self) -> str:
        s = self.shape
        grids = ", ".join(f"{'xyz'[PLANES[d][0]]}{'xyz'[PLANES[d][1]]} {g[0]}x{g[1]}"
                          for d, g in zip(s.dim_proj, s.grid_shape, strict=True))
        return f"WaffleIron WI-{s.depth}-{s.width} ({s.shape}; grids {grids}; {s.norm}, {s.activation})"


BACKBONES.register("waffleiron", BackboneSpec(
    WaffleIron, "WaffleIron point-token backbone (WI-48-768 by default)",
    "Puy et al., ICCV 2023 (valeoai/WaffleIron); ScaLR+ shape (valeoai/ScaLR branch scalr_plus)"))

__all__ = ["SHAPES", "WaffleIron", "feature_width", "knn", "point_features", "project", "resolve_shape"]
