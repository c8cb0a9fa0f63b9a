"""Which configuration sections each command reads: a schema is a dataclass of components from `seal.core.config`.

A section key means the same thing in every schema that has it (``optim`` and ``train`` differ only in their
defaults between pretraining and the downstream commands), so a config file written for one command can be
given to another: the sections it does not read are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seal.core.config import (
    AugmentConfig,
    CacheConfig,
    CorruptOptions,
    DataConfig,
    DemoOptions,
    DownstreamConfig,
    DownstreamOptimConfig,
    DownstreamTrainConfig,
    EvaluateOptions,
    InfoOptions,
    LossConfig,
    ModelConfig,
    OptimConfig,
    ProjectionConfig,
    ShowOptions,
    SplitConfig,
    StageOptions,
    SuperpixelConfig,
    SuperpointConfig,
    SynthOptions,
    TeacherConfig,
    TrainConfig,
    VoxelConfig,
)


@dataclass
class InfoSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the dataset
    info: InfoOptions = field(default_factory=InfoOptions)  # what to measure


@dataclass
class ShowSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the dataset
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)  # point -> pixel pairing
    cache: CacheConfig = field(default_factory=CacheConfig)  # where cached superpixels/superpoints are
    superpixels: SuperpixelConfig = field(default_factory=SuperpixelConfig)  # which superpixels to draw
    superpoints: SuperpointConfig = field(default_factory=SuperpointConfig)  # which superpoints to draw
    show: ShowOptions = field(default_factory=ShowOptions)  # which frame, which file


@dataclass
class SynthSchema:
    synth: SynthOptions = field(default_factory=SynthOptions)  # what to generate


@dataclass
class SuperpixelsSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the dataset
    cache: CacheConfig = field(default_factory=CacheConfig)  # where the maps go
    superpixels: SuperpixelConfig = field(default_factory=SuperpixelConfig)  # the method and its options
    stage: StageOptions = field(default_factory=StageOptions)  # sharding, failures, progress


@dataclass
class SuperpointsSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the dataset
    cache: CacheConfig = field(default_factory=CacheConfig)  # where the pairs go
    superpoints: SuperpointConfig = field(default_factory=SuperpointConfig)  # ground removal and clustering
    stage: StageOptions = field(default_factory=StageOptions)  # sharding, failures, progress


@dataclass
class PretrainSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the dataset (sequences with cameras and poses)
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)  # point -> pixel pairing
    voxel: VoxelConfig = field(default_factory=VoxelConfig)  # voxelisation of the 3D input
    cache: CacheConfig = field(default_factory=CacheConfig)  # where superpixels/superpoints are cached
    superpixels: SuperpixelConfig = field(default_factory=SuperpixelConfig)  # 2D segments for L_vfm
    superpoints: SuperpointConfig = field(default_factory=SuperpointConfig)  # 3D segments for L_tmp, L_p2s
    model: ModelConfig = field(default_factory=ModelConfig)  # the 3D network
    teacher: TeacherConfig = field(default_factory=TeacherConfig)  # the frozen 2D network
    loss: LossConfig = field(default_factory=LossConfig)  # loss weights and temperature
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # 3D and image augmentations
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimiser and schedule
    train: TrainConfig = field(default_factory=TrainConfig)  # batching, devices, logging, checkpoints


@dataclass
class DownstreamSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the labelled dataset
    voxel: VoxelConfig = field(default_factory=VoxelConfig)  # voxelisation (a pretrained backbone brings its own)
    model: ModelConfig = field(default_factory=ModelConfig)  # backbone (pretrained or random) and engine
    split: SplitConfig = field(default_factory=SplitConfig)  # training fraction and validation frames
    downstream: DownstreamConfig = field(default_factory=DownstreamConfig)  # loss and probe options
    optim: DownstreamOptimConfig = field(default_factory=DownstreamOptimConfig)  # optimiser and schedule
    train: DownstreamTrainConfig = field(default_factory=DownstreamTrainConfig)  # batching, devices, checkpoints


@dataclass
class EvaluateSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the labelled dataset
    split: SplitConfig = field(default_factory=SplitConfig)  # which frames are the validation split
    model: ModelConfig = field(default_factory=ModelConfig)  # the sparse engine (weights come from the checkpoint)
    evaluate: EvaluateOptions = field(default_factory=EvaluateOptions)  # checkpoint, robustness, outputs


@dataclass
class CorruptSchema:
    data: DataConfig = field(default_factory=DataConfig)  # the dataset to corrupt
    corrupt: CorruptOptions = field(default_factory=CorruptOptions)  # which corruption, where to


@dataclass
class DemoSchema:
    demo: DemoOptions = field(default_factory=DemoOptions)  # where, how big


@dataclass
class DatasetsSchema:
    """`seal datasets` reads no configuration: it lists what seal's formats know."""


SCHEMAS: tuple[type, ...] = (InfoSchema, ShowSchema, SynthSchema, SuperpixelsSchema, SuperpointsSchema,
                             PretrainSchema, DownstreamSchema, EvaluateSchema, CorruptSchema, DemoSchema)
