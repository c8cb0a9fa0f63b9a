"""Formats of the SemanticKITTI family: SemanticKITTI itself, the datasets stored like it, KITTI object frames and
the released SemanticKITTI-C."""

from __future__ import annotations

from pathlib import Path

from seal.core.frame import Dataset, DatasetFormat
from seal.data import splits
from seal.data.formats.base import SequenceSplitFormat


class SemanticKittiFormat(SequenceSplitFormat):
    name = "semantickitti"
    title = "SemanticKITTI"
    layout = "sequences/NN/{velodyne,labels,image_K}/, calib.txt, poses.txt"
    needs = ("KITTI odometry velodyne + calib (+ color images and poses for pretraining), SemanticKITTI labels "
             "(data.label_map or ROOT/label_map.yaml for other maps)")
    detection = "sequences/NN/velodyne/ (after every family member that has a marker of its own)"
    label_map = "semantickitti"
    split_note = "val 08; few-shot: packaged frame lists (every k-th of the 19,130 training frames)"
    miou_convention = "absent-as-zero"  # semantic-kitti-api evaluate_semantics.py: np_ioueval.iouEval.getIoU
    robustness_baseline = "semantickitti"
    lists = "semantickitti"  # the packaged few-shot lists this format uses
    detector = "seal.data.semantickitti:is_semantickitti"
    reader = "seal.data.semantickitti:open_semantickitti"

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        if not splits.is_official(dataset, self.lists):
            return None
        return (splits.select_frames(dataset, fraction, rule_only=False, lists=self.lists),
                splits.val_sequences(self.lists))

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        """A SemanticKITTI-C ``<corruption>/<severity>`` folder (velodyne/ + labels/), with ``clean``'s label map."""
        from seal.data.family import open_semantickitti_c

        return open_semantickitti_c(folder, label_map=clean.label_map)


class ScribbleKittiFormat(SemanticKittiFormat):
    name = "scribblekitti"
    title = "ScribbleKITTI"
    layout = "SemanticKITTI + sequences/NN/scribbles/*.label (training sequences)"
    needs = "SemanticKITTI (labels/ of 08 for validation) + the ScribbleKITTI scribbles/ folders"
    detection = "a sequences/NN/scribbles/ folder"
    label_map = "scribblekitti"
    split_note = "as SemanticKITTI (its frame lists): train on scribbles, validate on 08's dense labels"
    miou_convention = "absent-as-zero"  # validated on SemanticKITTI's 08 with its dense labels: its evaluator
    robustness_baseline = None
    reader = "seal.data.family:open_scribblekitti"

    def detect(self, root: Path) -> bool:
        return any(p.is_dir() for p in (root / "sequences").glob("*/scribbles"))

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        return DatasetFormat.open_released(self, clean, folder)


class SemanticPossFormat(SequenceSplitFormat):
    name = "semanticposs"
    title = "SemanticPOSS"
    layout = "sequences/00..05/{velodyne,labels}/ (SemanticKITTI layout)"
    needs = "the SemanticPOSS release (scans + labels; its calibration and poses are not read)"
    detection = "--kind semanticposs only (its layout is SemanticKITTI's)"
    label_map = "semanticposs"
    split_note = "train 00 01 02 04 05, val 03 (as CoSMix); few-shot: every k-th training frame"
    # SemanticKITTI layout and label scheme, so its rule (SemanticPOSS's own evaluator unverified here)
    miou_convention = "absent-as-zero"
    cameras = poses = False
    train_sequences, val_sequences = ("00", "01", "02", "04", "05"), ("03",)
    reader = "seal.data.family:open_semanticposs"


class SemanticStfFormat(SequenceSplitFormat):
    name = "semanticstf"
    title = "SemanticSTF"
    layout = "{train,val,test}/{velodyne,labels}/ (5 float32 per point), semanticstf.yaml"
    needs = "the SemanticSTF release as unpacked (no sequences/ folder)"
    detection = "a train/, val/ or test/ folder with velodyne/"
    label_map = "semanticstf"
    split_note = "train / val folders; few-shot: every k-th frame of train/"
    miou_convention = "absent-as-zero"  # SemanticKITTI-style labels, so its rule (its own evaluator unverified here)
    cameras = poses = False
    train_sequences, val_sequences = ("train",), ("val",)
    detector = "seal.data.family:is_semanticstf"
    reader = "seal.data.family:open_semanticstf"


class SynLidarFormat(SequenceSplitFormat):
    name = "synlidar"
    title = "SynLiDAR"
    layout = "NN/{velodyne,labels}/ + annotations.yaml (or sequences/NN/...), sequences 00..12"
    needs = "the SynLiDAR release (full or the sub-sampled SubDataset), unpacked per sequence"
    detection = "annotations.yaml next to NN/velodyne/ (re-organised into sequences/: --kind synlidar)"
    label_map = "synlidar"
    split_note = "val 00 04 07, train the rest (as GIPSO; SynLiDAR defines none); few-shot: every k-th frame"
    miou_convention = "absent-as-zero"  # no official evaluator; SemanticKITTI layout, so its rule
    cameras = poses = False
    train_sequences = ("01", "02", "03", "05", "06", "08", "09", "10", "11", "12")
    val_sequences = ("00", "04", "07")
    detector = "seal.data.family:is_synlidar"
    reader = "seal.data.family:open_synlidar"


class Rellis3dFormat(SequenceSplitFormat):
    name = "rellis3d"
    title = "RELLIS-3D"
    layout = "NNNNN/{os1_cloud_node_kitti_bin,os1_cloud_node_semantickitti_label_id}/, poses.txt, pt_*.lst"
    needs = "the LiDAR SemanticKITTI-format scans, their labels, the poses and the LiDAR split files (pt_*.lst)"
    detection = "NNNNN/os1_cloud_node_kitti_bin/ (or Rellis-3D/NNNNN/...)"
    label_map = "rellis3d"
    split_note = "pt_train.lst / pt_val.lst (sequences SEQ-train / SEQ-val); few-shot: every k-th listed frame"
    miou_convention = "absent-as-zero"  # SemanticKITTI-format labels; benchmarked with KITTI codebases (unverified)
    cameras = False
    detector = "seal.data.family:is_rellis3d"
    reader = "seal.data.family:open_rellis3d"

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        names = [s.name for s in dataset.sequences]
        train = tuple(n for n in names if n.endswith("-train"))
        return splits.sequence_split(dataset, fraction, train, [n for n in names if n.endswith("-val")])


class Daps3dFormat(SequenceSplitFormat):
    name = "daps3d"
    title = "DAPS-3D"
    layout = "data/NN/{clouds,labels}/ (DAPS-1), params.yml"
    needs = "the DAPS-1 release"
    detection = "data/NN/clouds/ (or NN/clouds/)"
    label_map = "daps3d"
    split_note = "train 00-07 09 10, val 08 (the DAPS3D repository's navigation.yml); few-shot: every k-th frame"
    miou_convention = "absent-as-zero"  # SemanticKITTI-style release; its evaluator unverified here
    cameras = poses = False
    train_sequences = ("00", "01", "02", "03", "04", "05", "06", "07", "09", "10")
    val_sequences = ("08",)
    detector = "seal.data.family:is_daps3d"
    reader = "seal.data.family:open_daps3d"


class Synth4dFormat(SequenceSplitFormat):
    name = "synth4d"
    title = "Synth4D"
    layout = "{kitti_synth,nuscenes_synth}/<Town>/{velodyne,labels,calib}/NNNNNN.npy"
    needs = "Synth4D-KITTI or Synth4D-nuScenes (data.version=nuscenes_synth picks the second)"
    detection = "<Town>/velodyne/*.npy (under kitti_synth/ or nuscenes_synth/)"
    label_map = "synth4d"
    split_note = "none packaged (its splits ship as pickles, not read): name split.train/val_sequences (towns)"
    miou_convention = "absent-as-zero"  # no official evaluator; SemanticKITTI-style labels, so its rule
    cameras = poses = False
    options = ("label_map", "version")
    detector = "seal.data.family:is_synth4d"
    reader = "seal.data.family:open_synth4d"


class KittiObjectFormat(SequenceSplitFormat):
    name = "kitti-object"
    title = "KITTI object"
    layout = "velodyne/ + calib/ + image_2/, or NNNNNN.bin/.png/_calib.txt"
    needs = "KITTI object velodyne + calib + image_2 (no per-point labels)"
    detection = "velodyne/ + calib/, or NNNNNN.bin + NNNNNN_calib.txt"
    label_map = "semantickitti"
    split_note = "none (single unlabelled frames)"
    miou_convention = "absent-as-zero"  # no labels; the SemanticKITTI label map, so its rule
    poses = False
    options = ()
    detector = "seal.data.semantickitti:is_kitti_object"
    reader = "seal.data.semantickitti:open_kitti_object"


class SemanticKittiCFormat(SequenceSplitFormat):
    name = "semantickitti-c"
    title = "SemanticKITTI-C (Robo3D)"
    layout = "<corruption>/<light|moderate|heavy>/{velodyne,labels}/"
    needs = "the Robo3D SemanticKITTI-C release (OpenDataLab); evaluate.robustness_root points at it"
    detection = "<corruption>/<severity>/velodyne/ with Robo3D corruption names"
    label_map = "semantickitti"
    split_note = "evaluation only (all frames of each corruption/severity)"
    miou_convention = "absent-as-zero"  # SemanticKITTI's rule (how Robo3D scored it: unverified here)
    robustness_baseline = "semantickitti"
    cameras = poses = False
    detector = "seal.data.family:is_semantickitti_c"
    reader = "seal.data.family:open_semantickitti_c"


