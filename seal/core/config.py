"""The component configurations every command is composed from: one dataclass per concept, one default each.

The comment after a field is its documentation: `seal config COMMAND` prints it next to the key and default,
so every field carries one. ``RULES`` states the values a field accepts beyond its type (checked with the key's
full name by `seal.core.settings.validate`): ``">=1"``, ``">0"``, ``"0..1"``, or ``"a|b|c"`` for a choice; a list
field ``"[2]1..4096"`` (exactly 2 items, each 1..4096), ``"[8+]>=1"`` (at least 8), ``"[2]>0 ascending"``.
Command schemas (which sections a command reads) live in `seal.core.schemas`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from seal.core.registry import REGISTRY

SEVERITIES: tuple[str, ...] = ("light", "moderate", "heavy")  # Robo3D's three levels of every corruption
FRACTIONS: tuple[int, ...] = (1, 5, 10, 25, 100)


@dataclass
class DataConfig:
    """Which dataset to read and how. Pretraining may mix datasets: ``mix`` folders are detected and keep their
    own caches (kind, version, sequences and cache.root apply to ``path`` only; a mix entry may carry its own
    ``::kind=K,version=V``); ``mix_weights`` has one weight per dataset, ``path`` first (docs/METHOD.md §7)."""

    path: str = ""                 # dataset folder (the positional DATA argument)
    kind: str | None = None        # dataset format (`seal datasets` lists them); detected from the folder when null
    label_map: str | None = None   # packaged label-map name or a YAML path (SemanticKITTI layout only)
    version: str | None = None     # nuScenes version folder (v1.0-trainval...), PandaSet LiDAR (pandar64|pandargt|both)
    sweeps: bool = False           # nuScenes: every LiDAR sweep instead of keyframes only
    sequences: list[str] | None = None  # keep only these sequences / scenes (e.g. pretrain on train only)
    mix: list[str] = field(default_factory=list)  # more datasets to pretrain on: PATH or PATH::kind=K,version=V
    mix_weights: list[float] = field(default_factory=list)  # sampling weight per dataset, [] = its pair count

    RULES: ClassVar[dict[str, str]] = {"kind": REGISTRY,  # seal.data.formats.FORMATS
                                       "sequences": "[1+]", "mix_weights": "[0+]>=0"}


@dataclass
class ProjectionConfig:
    """Point -> pixel pairing (docs/METHOD.md §2)."""

    min_depth: float = 1.0         # metres in front of a camera below which a point is not paired

    RULES: ClassVar[dict[str, str]] = {"min_depth": ">=0"}


@dataclass
class VoxelConfig:
    """Voxelisation of the 3D input (docs/METHOD.md §5); a pretrained backbone carries the one it was trained with."""

    size: float = 0.1              # voxel edge in metres (radial and height edge for cylindrical voxels)
    mode: str = "cylindrical"      # cylindrical | cartesian
    angle_bin_deg: float = 1.0     # azimuth bin of cylindrical voxels, degrees

    RULES: ClassVar[dict[str, str]] = {"size": ">0", "mode": "cylindrical|cartesian", "angle_bin_deg": ">0"}


@dataclass
class CacheConfig:
    """Where stage artefacts go."""

    root: str | None = None        # null = DATASET/seal_cache, or ~/.cache/seal/NAME-HASH for a read-only dataset


@dataclass
class SlicConfig:
    """SLIC (scikit-image), the SLidR baseline; the paper's defaults, docs/METHOD.md §3."""

    n_segments: int = 150          # target number of segments per image
    compactness: float = 6.0       # colour vs space trade-off (higher = squarer segments)
    sigma: float = 3.0             # Gaussian smoothing before segmentation
    work_width: int = 800          # run SLIC on a copy this wide, then upsample the map (0 = full resolution)

    RULES: ClassVar[dict[str, str]] = {"n_segments": ">=1", "compactness": ">0", "sigma": ">=0", "work_width": ">=0"}


@dataclass
class SamConfig:
    """Segment Anything's automatic mask generator."""

    checkpoint: str | None = None  # local SAM checkpoint, e.g. sam_vit_h_4b8939.pth (never downloaded)
    model_type: str = "vit_h"      # vit_h | vit_l | vit_b, matching the checkpoint
    points_per_side: int = 32      # prompt grid density
    pred_iou_thresh: float = 0.88  # drop masks whose predicted IoU is lower
    stability_score_thresh: float = 0.95  # drop masks less stable than this
    min_mask_region_area: int = 0  # remove holes / islands smaller than this many pixels

    RULES: ClassVar[dict[str, str]] = {"model_type": "vit_h|vit_l|vit_b", "points_per_side": ">=1",
                                       "pred_iou_thresh": "0..1", "stability_score_thresh": "0..1",
                                       "min_mask_region_area": ">=0"}


@dataclass
class Sam2Config:
    """SAM 2's automatic mask generator (Meta's sam2 package, Hiera T/S/B+/L image encoders)."""

    checkpoint: str | None = None  # local SAM 2 checkpoint, e.g. sam2.1_hiera_large.pt (never downloaded)
    model_cfg: str = "sam2.1_hiera_l"  # sam2's packaged config of the checkpoint: sam2.1_hiera_t|s|b+|l, sam2_hiera_*
    overrides: list[str] = field(default_factory=list)  # extra hydra overrides of model_cfg (a changed architecture)
    points_per_side: int = 32      # prompt grid density (points_per_side^2 point prompts per image)
    points_per_batch: int = 64     # point prompts decoded together in one batch on the device
    pred_iou_thresh: float = 0.8   # drop masks whose predicted IoU is lower (SAM 2's default)
    stability_score_thresh: float = 0.95  # drop masks less stable than this
    min_mask_region_area: int = 0  # fill holes / drop islands up to this area (256x256 mask pixels; sam2's CUDA ext)
    dtype: str = "float32"         # float32 | bfloat16 (torch.autocast, how Meta runs SAM 2 on GPUs)

    RULES: ClassVar[dict[str, str]] = {
        "model_cfg": "|".join(f"{v}_hiera_{s}" for v in ("sam2.1", "sam2") for s in ("t", "s", "b+", "l")),
        "points_per_side": ">=1", "points_per_batch": ">=1", "pred_iou_thresh": "0..1",
        "stability_score_thresh": "0..1", "min_mask_region_area": ">=0", "dtype": "float32|bfloat16"}


@dataclass
class HuggingFaceConfig:
    """A transformers segmentation model (SegFormer, Mask2Former, OneFormer...) saved locally."""

    model_dir: str | None = None   # local folder written by save_pretrained
    mode: str = "auto"             # auto | panoptic | semantic
    threshold: float = 0.5         # panoptic: mask score threshold
    overlap_threshold: float = 0.8  # panoptic: overlap above which a mask is merged away

    RULES: ClassVar[dict[str, str]] = {"mode": "auto|panoptic|semantic", "threshold": "0..1",
                                       "overlap_threshold": "0..1"}


@dataclass
class PrecomputedConfig:
    """Superpixel maps computed elsewhere (16-bit PNG or NPY)."""

    folder: str | None = None      # folder holding the maps
    pattern: str = "{sequence}/{camera}/{frame_name}"  # path of one map inside folder (without extension)
    none_value: int | None = None  # the value the producer used for "no segment" (null: every value is one)


@dataclass
class OracleConfig:
    """Oracle segments of synthetic data (`seal synth --segments`): an upper bound on what a perfect VFM could give,
    optionally degraded by random splits and merges to sweep between perfect and SLIC-like segments."""

    split_rate: float = 0.0        # fraction of segments cut in two along a random line through their centroid
    merge_rate: float = 0.0        # fraction of segments (after splitting) merged with a random adjacent segment
    seed: int = 0                  # seeds which segments are split/merged (with the frame and camera): reproducible

    RULES: ClassVar[dict[str, str]] = {"split_rate": "0..1", "merge_rate": "0..1", "seed": ">=0"}


@dataclass
class SuperpixelConfig:
    """2D superpixels (docs/METHOD.md §3): one uint16 map per camera image, 0 = covered by no segment."""

    method: str = "slic"           # superpixel method: slic, sam, hf, precomputed, oracle (synthetic data only), ...
    device: str = "cpu"            # where a VFM runs (cpu | cuda)
    slic: SlicConfig = field(default_factory=SlicConfig)  # options of method=slic
    sam: SamConfig = field(default_factory=SamConfig)  # options of method=sam
    sam2: Sam2Config = field(default_factory=Sam2Config)  # options of method=sam2
    hf: HuggingFaceConfig = field(default_factory=HuggingFaceConfig)  # options of method=hf
    precomputed: PrecomputedConfig = field(default_factory=PrecomputedConfig)  # options of method=precomputed
    oracle: OracleConfig = field(default_factory=OracleConfig)  # options of method=oracle
    options: dict[str, Any] = field(default_factory=dict)  # options of a plugin method (its own keys)

    RULES: ClassVar[dict[str, str]] = {"method": REGISTRY}  # seal.superpixels.SUPERPIXELS


@dataclass
class GroundConfig:
    """RANSAC ground removal, per range sector so sloped or uneven roads still fit."""

    distance: float = 0.25         # inlier distance to the plane, metres
    iterations: int = 100          # RANSAC iterations per sector
    sectors: int = 1               # range sectors (1 = one plane for the whole sweep)
    sector_range: float = 20.0     # metres per sector when sectors > 1
    max_tilt_deg: float = 20.0     # reject candidate planes steeper than this (walls are not ground)
    sensor_height: float | None = None  # prior: reject planes far from this height below the sensor

    RULES: ClassVar[dict[str, str]] = {"distance": ">0", "iterations": ">=1", "sectors": ">=1",
                                       "sector_range": ">0", "max_tilt_deg": ">0"}


@dataclass
class SuperpointConfig:
    """3D superpoints for the temporal terms (docs/METHOD.md §4)."""

    gap: int = 1                   # pair frame t with t+gap
    ground: GroundConfig = field(default_factory=GroundConfig)  # ground removal before clustering
    ground_mode: str = "segment"   # segment: ground is one segment of its own; ignore: ground gets -1
    min_cluster_size: int = 20     # HDBSCAN: smallest cluster
    min_samples: int | None = None  # HDBSCAN: neighbourhood size (null = min_cluster_size)
    cluster_selection_epsilon: float = 0.3  # HDBSCAN: merge clusters closer than this, metres
    max_range: float = 60.0        # points farther than this are not clustered (sparse, unreliable)
    voxel: float = 0.15            # cluster voxel centroids of this size, then spread ids back (speed)
    seed: int = 0                  # RANSAC seed

    RULES: ClassVar[dict[str, str]] = {"gap": ">=1", "ground_mode": "segment|ignore", "min_cluster_size": ">=2",
                                       "min_samples": ">=1", "cluster_selection_epsilon": ">=0", "max_range": ">0",
                                       "voxel": ">0"}


@dataclass
class WaffleIronConfig:
    """WaffleIron's shape (``model.backbone.name=waffleiron``, seal.models.waffleiron): ``shape`` picks a packaged
    one, every other key left null takes the shape's value and a set key overrides it."""

    shape: str = "WI-48-768"       # packaged shape: WI-48-256 | WI-48-384 (WaffleIron) | WI-48-768 (ScaLR+) | tiny
    depth: int | None = None       # layers L (one spatial mix + one channel mix each); null = the shape's
    width: int | None = None       # feature channels F; null = the shape's
    dim_proj: list[int] | None = None  # axis each layer projects along, in turn (2: xy plane, 1: xz, 0: yz)
    grid_shape: list[list[int]] | None = None  # 2D cells of each plane, in the order of dim_proj
    fov: list[list[float]] | None = None  # [[xmin, ymin, zmin], [xmax, ymax, zmax]] metres covered by the grids
    num_neighbors: int | None = None  # nearest neighbours of the point embedding (the point itself excluded)
    drop_path: float | None = None  # stochastic-depth probability of every residual branch (per scan)
    activation: str | None = None  # relu | gelu, in the channel-mix MLP and the spatial-mix convolutions
    norm: str | None = None        # layernorm | batchnorm before each mix
    input_features: list[str] | None = None  # of intensity, xyz, radius, height, constant (in this order)
    intensity_mean: float = 0.0    # intensity feature = (intensity - mean) / std (ScaLR normalises per dataset)
    intensity_std: float = 1.0     # see intensity_mean
    checkpointing: bool = False    # recompute each mix in backward (activation checkpointing: memory for time)

    RULES: ClassVar[dict[str, str]] = {"shape": "WI-48-256|WI-48-384|WI-48-768|tiny", "depth": ">=1",
                                       "width": ">=1", "num_neighbors": ">=1", "drop_path": "0..1",
                                       "activation": "relu|gelu", "norm": "layernorm|batchnorm",
                                       "intensity_std": ">0", "dim_proj": "[1+]0..2", "grid_shape": "[1+][2]>=1",
                                       "fov": "[2][3]", "input_features": "[1+]intensity|xyz|radius|height|constant"}


@dataclass
class BackboneConfig:
    """The 3D backbone and its shape (MinkUNet; the default is Res16UNet34C)."""

    name: str = "minkunet"         # backbone family (seal.models.BACKBONES): minkunet
    in_channels: int = 1           # input features per voxel (intensity)
    stem_channels: int = 32        # width of the stem
    planes: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 256, 128, 96, 96])  # widths of 8 stages
    layers: list[int] = field(default_factory=lambda: [2, 3, 4, 6, 2, 2, 2, 2])  # residual blocks per stage
    stem_kernel: int = 3           # kernel of the stem convolutions
    bn_momentum: float = 0.02      # BatchNorm momentum
    waffleiron: WaffleIronConfig = field(default_factory=WaffleIronConfig)  # shape of name=waffleiron

    RULES: ClassVar[dict[str, str]] = {"name": REGISTRY, "in_channels": ">=1", "stem_channels": ">=1",
                                       "stem_kernel": ">=1", "bn_momentum": "0..1", "planes": "[8]>=1",
                                       "layers": "[8]>=1"}


@dataclass
class ModelConfig:
    """The 3D network: its backbone, the projection width, the sparse engine, and pretrained weights."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)  # backbone shape (random init)
    proj_dim: int = 64             # pretraining: output width of the heads H_p and H_i
    engine: str = "auto"           # sparse engine: auto | spconv | spconv-triton
    pretrained: str | None = None  # downstream: backbone.pt of `seal pretrain` (null = random initialisation)
    scalr_head_hidden: int = 0     # ScaLR head: 0 = linear (ScaLR), >0 = MLP of this width, ReLU (ScaLR+: 2048)

    RULES: ClassVar[dict[str, str]] = {"proj_dim": ">=1", "engine": REGISTRY,  # seal.models.sparse.ENGINES
                                       "scalr_head_hidden": ">=0"}


@dataclass
class TeacherConfig:
    """The frozen 2D network G; ``weights`` is a local file (MoCo-v2, torchvision, DINO, DINOv2 formats).

    On CUDA the teacher runs under its own autocast of ``dtype`` (``train.amp`` does not reach it), ``chunk`` images
    per forward; its feature maps reach the trainable head in float32 either way (`seal.engine.teacher_forward`)."""

    backbone: str = "resnet50"     # 2D teacher (seal.models.TEACHERS): resnet50, vit_small_patch16, ...
    weights: str | None = None     # null = random init (said loudly; fine for tests, never for real runs)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # timm options, e.g. a small ViT for CPU demos
    dtype: str = "float32"         # float32 | bfloat16 | float16: teacher precision on CUDA; CPU: float32 (said once)
    chunk: int = 0                 # images per teacher forward (0 = all at once): bounds the teacher's peak memory

    RULES: ClassVar[dict[str, str]] = {"backbone": REGISTRY, "dtype": "float32|bfloat16|float16", "chunk": ">=0"}


@dataclass
class LossConfig:
    """Weights of L = vfm L_vfm + tmp L_tmp + p2s L_p2s + ppkt L_ppkt + scalr L_scalr (docs/METHOD.md §6 and §11).

    Seal is the default (vfm + tmp + p2s); `seal pretrain --objective ppkt|slidr|scalr|seal` sets these weights for
    one of the neighbouring objectives (seal.losses.objectives), and any other mix is a set of weights."""

    vfm: float = 1.0               # weight of L_vfm (points vs superpixels of the 2D teacher)
    tmp: float = 1.0               # weight of L_tmp (superpoints of frame t vs frame t+n)
    p2s: float = 1.0               # weight of L_p2s (points vs their superpoint's mean)
    ppkt: float = 0.0              # weight of L_ppkt (PPKT: InfoNCE of sampled point-pixel pairings, H_p vs H_i)
    scalr: float = 0.0             # weight of L_scalr (ScaLR: distance of paired points to the frozen teacher's pixels)
    tau: float = 0.07              # temperature of every InfoNCE
    p2s_max_points: int = 8192     # points sampled per step for L_p2s (bounds the points x segments logits)
    ppkt_pairings: int = 4096      # point-pixel pairings sampled per micro-batch for L_ppkt (SLidR's num_matches)
    normalize_pooled: bool = False  # re-normalise pooled means (SLidR does not)

    RULES: ClassVar[dict[str, str]] = {"vfm": ">=0", "tmp": ">=0", "p2s": ">=0", "ppkt": ">=0", "scalr": ">=0",
                                       "tau": ">0", "p2s_max_points": ">=1", "ppkt_pairings": ">=1"}


@dataclass
class AugmentConfig:
    """docs/METHOD.md §7 augmentations; crop sizes are (height, width)."""

    rotate: bool = True            # random rotation about z
    flip: bool = True              # random flips of x and y
    cuboid_drop: bool = True       # drop a random cuboid of points (pairings kept above the minimum)
    min_pairings_per_image: int = 1024  # cuboid drop never leaves an image fewer pairings than this
    crop_size: list[int] = field(default_factory=lambda: [224, 416])  # image crop (height, width)
    crop_scale: list[float] = field(default_factory=lambda: [0.3, 1.0])  # crop area range (fraction of image)
    crop_ratio: list[float] = field(default_factory=lambda: [14 / 9, 17 / 9])  # crop aspect-ratio range
    crop_attempts: int = 10        # tries to find a crop inside the image before a centre crop
    hflip: bool = True             # random horizontal flip of the crop

    RULES: ClassVar[dict[str, str]] = {"min_pairings_per_image": ">=0", "crop_attempts": ">=1",
                                       "crop_size": "[2]1..4096", "crop_scale": "[2]0.0001..1 ascending",
                                       "crop_ratio": "[2]>0 ascending"}


@dataclass
class OptimConfig:
    """SGD (or AdamW) with a cosine (or ScaLR+'s reciprocal-square-root) schedule (docs/METHOD.md §7,
    `seal.engine.optimizers`). Effective lr = lr * global_batch / lr_reference_batch.

    The pretraining defaults are SLidR's (valeoai/SLidR config/slidr_minkunet.yaml: lr 0.5, batch_size 4 on
    num_gpus 1, i.e. a global batch of 4, sgd_momentum 0.9, sgd_dampening 0.1, weight_decay 0.0001,
    num_epochs 50); the presets carry the source of every value."""

    lr: float = 0.5                # learning rate (of the backbone when fine-tuning)
    lr_reference_batch: int | None = 4  # global batch the lr is given for (null: never scaled)
    head_lr: float | None = None   # fine-tuning: lr of the classifier (null = lr)
    momentum: float = 0.9          # SGD momentum
    dampening: float = 0.1         # SGD dampening
    weight_decay: float = 1e-4     # L2 weight decay
    epochs: int = 50               # passes over the training samples
    warmup_steps: int = 0          # linear warm-up steps before the decay (0: warmup_epochs)
    name: str = "sgd"              # optimiser: sgd (SLidR, Seal) | adamw (ScaLR: decoupled weight decay)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW's betas
    schedule: str = "cosine"       # cosine | rsqrt (ScaLR+: warm-up, 1/sqrt(1 + t/T), linear cool-down)
    warmup_epochs: float = 0.0     # linear warm-up in epochs, when warmup_steps is 0
    timescale_epochs: float = 1.0  # rsqrt: its timescale T, in epochs
    cooldown_epochs: float = 0.0   # rsqrt: the final linear ramp to 0, in epochs

    RULES: ClassVar[dict[str, str]] = {"lr": ">=0", "lr_reference_batch": ">=1", "head_lr": ">=0",
                                       "momentum": ">=0", "dampening": ">=0", "weight_decay": ">=0",
                                       "epochs": ">=1", "warmup_steps": ">=0", "name": "sgd|adamw",
                                       "betas": "[2]0..0.999999", "schedule": "cosine|rsqrt",
                                       "warmup_epochs": ">=0", "timescale_epochs": ">0", "cooldown_epochs": ">=0"}


@dataclass
class DownstreamOptimConfig(OptimConfig):
    """docs/METHOD.md §8, from SLidR's downstream configs (valeoai/SLidR): linear probe lr 0.05 on the classifier
    (its README: lr=0.05, lr_head=null, freeze_layers=True), 100 epochs, batch 16 (semseg_nuscenes.yaml);
    fine-tuning lr_head 2.0 and backbone lr 0.05 on SemanticKITTI (semseg_kitti.yaml, batch 10) but 0.02 on
    nuScenes (semseg_nuscenes.yaml: give optim.lr=0.02); SGD momentum 0.9, dampening 0.1, weight decay 1e-4,
    cosine schedule, in every one of them; lrs are for those batches on one GPU and are not scaled here."""

    lr: float = 0.05               # learning rate (of the backbone when fine-tuning)
    lr_reference_batch: int | None = None  # global batch the lr is given for (null: never scaled)
    head_lr: float | None = 2.0    # fine-tuning: lr of the classifier (null = lr)
    dampening: float = 0.1         # SGD dampening
    epochs: int = 100              # passes over the training frames


@dataclass
class TrainConfig:
    """How a training run executes: batching, devices, logging, checkpoints."""

    batch_size: int = 4            # samples per process and micro-step
    accumulate: int = 1            # micro-batches per optimiser step
    num_workers: int = 2           # data-loader worker processes
    amp: bool = True               # mixed precision on CUDA (ignored on CPU)
    amp_dtype: str = "float16"     # float16 | bfloat16 (autocast dtype when amp is on)
    seed: int = 0                  # seed of weights, data order and augmentations
    deterministic: bool = False    # bitwise-repeatable runs (on CPU: single-threaded, slower)
    device: str = "auto"           # auto | cpu | cuda
    run_dir: str | None = None     # run folder (default runs/COMMAND-TIME)
    log_every: int = 10            # optimiser steps between logged metrics (losses are read back only then)
    checkpoint_every: int = 200    # optimiser steps between checkpoints (one is also written at each epoch end)
    keep_checkpoints: int = 2      # newest step-N.pt files kept (last.pt is always kept)
    max_steps: int | None = None   # stop (with a checkpoint) after this many optimiser steps in total
    resume: str | None = None      # continue a run: its folder, a checkpoint file, or auto (the newest run)
    stop_signals: list[str] = field(default_factory=lambda: ["SIGTERM", "SIGUSR1"])  # finish the step, save, exit 75

    RULES: ClassVar[dict[str, str]] = {"batch_size": ">=1", "accumulate": ">=1", "num_workers": ">=0",
                                       "amp_dtype": "float16|bfloat16", "device": "auto|cpu|cuda",
                                       "log_every": ">=1", "checkpoint_every": ">=1", "keep_checkpoints": ">=0",
                                       "max_steps": ">=1"}


@dataclass
class DownstreamTrainConfig(TrainConfig):
    """Downstream defaults: the paper's batch of 16 frames (SLidR semseg_nuscenes.yaml batch_size 16, on one GPU;
    its semseg_kitti.yaml uses 10)."""

    batch_size: int = 16           # frames per process and micro-step
    checkpoint_every: int = 500    # optimiser steps between checkpoints (one is also written at each epoch end)


@dataclass
class DownstreamConfig:
    """Options of linear probing and fine-tuning beyond the shared training loop."""

    lovasz_weight: float = 1.0     # loss = cross-entropy + lovasz_weight * Lovász-softmax (label 0 ignored)
    augment: bool = True           # fine-tuning: random rotation + flips (a probe on cached features does not)
    cache_features: bool = True    # probe: run the frozen backbone once per frame, train the head on cached ones
    max_points_per_frame: int = 20000  # probe feature cache: labelled points sampled per training frame
    standardize_features: bool = False  # probe diagnostic: z-score features first (not the paper's protocol)

    RULES: ClassVar[dict[str, str]] = {"lovasz_weight": ">=0", "max_points_per_frame": ">=1"}


@dataclass
class SplitConfig:
    """Which frames train and which evaluate. Official lists come with the dataset's format; any other dataset
    names its sequences here (few-shot fractions then take every k-th of their sorted frames)."""

    fraction: int = 100            # % of the labelled training set: 1 | 5 | 10 | 25 | 100
    train_sequences: list[str] | None = None  # training sequences (null = the format's official split)
    val_sequences: list[str] | None = None  # validation sequences (null = the format's official split)

    RULES: ClassVar[dict[str, str]] = {"fraction": "|".join(map(str, FRACTIONS))}


@dataclass
class StageOptions:
    """How a cached stage runs."""

    shard: str | None = None       # i/n: every n-th item from the i-th (default: torchrun rank/world, else 0/1)
    fail_fast: bool = False        # stop at the first failed item
    progress: bool = True          # show a progress bar


@dataclass
class InfoOptions:
    """`seal info`."""

    label_sample: int = 20         # frames read to measure class shares (0 skips)

    RULES: ClassVar[dict[str, str]] = {"label_sample": ">=0"}


@dataclass
class ShowOptions:
    """`seal show`."""

    frame: int = 0                 # frame index over the whole dataset
    out: str = ""                  # PNG to write (default WHAT.png)
    rerun: str = ""                # show frame: a Rerun recording (.rrd) to write; the PNG then only with --out
    frames: int = 1                # show frame --rerun: consecutive frames from show.frame to log (within its sequence)

    RULES: ClassVar[dict[str, str]] = {"frames": ">=1"}


@dataclass
class SynthOptions:
    """`seal synth`: procedural streets in the SemanticKITTI or the nuScenes layout."""

    out: str = ""                  # folder to write the dataset into
    sequences: int = 4             # number of sequences
    frames: int = 20               # frames per sequence
    seed: int = 0                  # random seed; the same seed gives the same files
    cameras: int | None = None     # cameras per frame: 1 (front) up to 6 (a ring); null = 1, or 6 for nuscenes
    layout: str = "semantickitti"  # semantickitti | nuscenes: the folder layout written
    segments: bool = False  # also write each camera image's oracle segment map (segments_K/NNNNNN.png, uint16)

    RULES: ClassVar[dict[str, str]] = {"sequences": ">=1", "frames": ">=1", "cameras": "1|2|3|4|5|6",
                                       "layout": "semantickitti|nuscenes"}


@dataclass
class CorruptOptions:
    """`seal corrupt`: one Robo3D corruption at one severity."""

    corruption: str | None = None  # Robo3D corruption: fog, wet_ground, snow, motion_blur, beam_missing, ...
    severity: str = "moderate"     # light | moderate | heavy
    out: str = ""                  # folder to write the corrupted dataset into
    seed: int = 0                  # random seed (same seed, same output)
    progress: bool = True          # show a progress bar

    RULES: ClassVar[dict[str, str]] = {"corruption": REGISTRY, "severity": "|".join(SEVERITIES)}


@dataclass
class EvaluateOptions:
    """`seal evaluate`."""

    checkpoint: str = ""           # model.pt of `seal probe` / `seal finetune`
    split: str = "val"             # val | all: the frames to evaluate
    robustness: bool = False       # also evaluate under every corruption x 3 severities (mCE, mRR)
    baseline: str | None = None    # robustness baseline YAML (default: the one the dataset's format names)
    save_predictions: str | None = None  # folder for predictions in the dataset's own format
    rerun: str | None = None       # a Rerun recording (.rrd) of the evaluated frames' predictions and errors
    out: str | None = None         # results folder (default: next to the checkpoint)
    robustness_root: str | None = None  # released Robo3D set (SemanticKITTI-C / nuScenes-C) instead of corrupting

    RULES: ClassVar[dict[str, str]] = {"split": "val|all"}


@dataclass
class DemoOptions:
    """`seal demo`."""

    out: str = "seal-demo"         # output folder
    quick: bool = False            # a much smaller run (a smoke test, not a result)
    ablation: bool = False         # the distillation family, Seal's ablations, semantic teachers + a chart
    sweep: bool = False            # ScaLR and Seal against the oracle teacher's quality + a PNG
    seeds: list[int] = field(default_factory=list)  # training seeds; [] = [0, 1] for the demo, [0] for the others
    cameras: int = 1               # cameras of the synthetic data: 1 (front, ~13% of the points) .. 6 (360 degrees)
    pretrain_epochs: int = 0       # pretraining epochs per row; 0 = the plan's 3 (90 steps)

    RULES: ClassVar[dict[str, str]] = {"seeds": "[0+]>=0", "cameras": "1..6", "pretrain_epochs": ">=0"}
