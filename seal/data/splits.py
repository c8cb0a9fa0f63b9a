"""Few-shot fine-tuning splits (SPEC section 8), shipped as files so that results are comparable across runs.

Rule: fraction f% keeps every k-th item, k = 100, 20, 10, 4, 1 for f = 1, 5, 10, 25, 100, starting with the first.
- nuScenes: items are scenes, in the order of nuscenes-devkit's ``splits.train`` (700 scenes, sorted by name);
  files ``splits/nuscenes_train_<f>.txt`` (scene names), ``nuscenes_train.txt`` and ``nuscenes_val.txt`` (150).
- SemanticKITTI: items are the frames of training sequences 00-07 and 09-10 (08 is validation), as the sorted
  list of ``sequences/SS/velodyne/NNNNNN.bin``; files ``splits/semantickitti_train_<f>.txt`` hold ``SS/NNNNNN``
  ids for f = 1, 5, 10, 25. 100% is every training frame, generated from the per-sequence frame counts below
  rather than stored as a 19,130-line file. ScribbleKITTI uses these lists (its scans are SemanticKITTI's).
- Every other dataset: an official split of *sequences* (its format names them, see ``splits/README.md``), and the
  rule applied to the sorted frame ids of the training sequences present (`sequence_split`).
"""

from __future__ import annotations

from importlib import resources

from seal.core.errors import ConfigError, DataError
from seal.core.frame import Dataset

STEPS = {1: 100, 5: 20, 10: 10, 25: 4, 100: 1}
SEMANTICKITTI_TRAIN_FRAMES = {"00": 4541, "01": 1101, "02": 4661, "03": 801, "04": 271, "05": 2761, "06": 1101,
                              "07": 1101, "09": 1591, "10": 1201}
SEMANTICKITTI_VAL_SEQUENCES = ("08",)
_KINDS = ("nuscenes", "semantickitti")


def split_step(fraction: int) -> int:
    """k of the every-k-th rule for ``fraction`` percent; a ConfigError naming ``--fraction`` otherwise."""
    try:
        return STEPS[int(fraction)]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"--fraction {fraction!r} is not a supported few-shot fraction; "
                          f"choose one of {', '.join(map(str, STEPS))} (percent of the training set)") from None


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ConfigError(f"no official few-shot splits for dataset kind {kind!r}; official splits exist for "
                          f"{', '.join(_KINDS)} (other datasets use the every-k-th-frame rule via select_frames)")


def _read(name: str) -> list[str]:
    text = (resources.files("seal.data") / "splits" / name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def semantickitti_train_frames() -> list[str]:
    """All 19,130 SemanticKITTI training frame ids ``SS/NNNNNN``, sorted as the file paths sort."""
    return sorted(f"{seq}/{i:06d}" for seq, n in SEMANTICKITTI_TRAIN_FRAMES.items() for i in range(n))


def load_split(dataset_kind: str, fraction: int) -> list[str]:
    """The official ``fraction``% training split: nuScenes scene names, or SemanticKITTI frame ids ``SS/NNNNNN``."""
    step = split_step(fraction)
    _check_kind(dataset_kind)
    if dataset_kind == "semantickitti" and step == 1:
        return semantickitti_train_frames()
    return _read(f"{dataset_kind}_train_{int(fraction)}.txt")


def train_sequences(dataset_kind: str) -> list[str]:
    """Names of the official training sequences (700 nuScenes scenes; SemanticKITTI 00-07, 09, 10)."""
    _check_kind(dataset_kind)
    return _read("nuscenes_train.txt") if dataset_kind == "nuscenes" else list(SEMANTICKITTI_TRAIN_FRAMES)


def val_sequences(dataset_kind: str) -> list[str]:
    """Names of the official validation sequences (150 nuScenes scenes; SemanticKITTI 08)."""
    _check_kind(dataset_kind)
    return _read("nuscenes_val.txt") if dataset_kind == "nuscenes" else list(SEMANTICKITTI_VAL_SEQUENCES)


def sequence_split(dataset: Dataset, fraction: int, train: tuple[str, ...] | list[str],
                   val: tuple[str, ...] | list[str]) -> tuple[list[int], list[str]] | None:
    """(every k-th frame of the sorted frame ids of the ``train`` sequences present, the ``val`` sequences present),
    or None when none of the ``train`` sequences is present (the user then names the sequences)."""
    step = split_step(fraction)
    wanted = set(train)
    ids = sorted((seq.frame_id(i), offset + i) for seq, offset in zip(dataset.sequences, _offsets(dataset),
                                                                      strict=True)
                 if seq.name in wanted for i in range(len(seq)))
    if not ids:
        return None
    present = {s.name for s in dataset.sequences}
    return sorted(index for _, index in ids[::step]), [v for v in val if v in present]


def _offsets(dataset: Dataset) -> list[int]:
    offsets, start = [], 0
    for seq in dataset.sequences:
        offsets.append(start)
        start += len(seq)
    return offsets


def is_official(dataset: Dataset, lists: str | None = None) -> bool:
    """Whether the official split lists apply to ``dataset``.

    nuScenes: at least one scene has an official (train or val) scene name, so a val-only folder gets an empty
    training split (an error) rather than the rule applied to val scenes. SemanticKITTI: at least one official training
    sequence is present and every present one has exactly the official frames (000000..N-1); seal's synthetic
    data, which reuses the names 00, 01, ... with other frame counts, therefore falls back to the rule. ``lists``
    names the official lists to check (default: the dataset's kind; ScribbleKITTI passes ``semantickitti``).
    """
    lists = lists or dataset.kind
    if lists == "nuscenes":
        official = set(train_sequences("nuscenes")) | set(val_sequences("nuscenes"))
        return any(s.name in official for s in dataset.sequences)
    if lists == "semantickitti":
        train = [s for s in dataset.sequences if s.name in SEMANTICKITTI_TRAIN_FRAMES]
        return bool(train) and all(
            list(s.frame_names) == [f"{i:06d}" for i in range(SEMANTICKITTI_TRAIN_FRAMES[s.name])] for s in train)
    return False


def select_frames(dataset: Dataset, fraction: int, rule_only: bool | None = None, lists: str | None = None
                  ) -> list[int]:
    """Dataset-wide frame indices (ascending) of the ``fraction``% few-shot split of ``dataset``.

    With the official lists (``rule_only=False``, or ``None`` when `is_official` says they apply): nuScenes keeps
    every frame of the listed scenes, SemanticKITTI the listed ``seq/name`` frame ids. With the rule alone
    (``rule_only=True``, or ``None`` for any other dataset): nuScenes keeps every k-th scene in name order; any
    other kind every k-th frame of the dataset's frame ids sorted lexicographically, the first included. The
    rule takes all frames it is given: open only the training sequences. An empty selection is an error.
    """
    step = split_step(fraction)
    lists = lists or dataset.kind
    if rule_only is None:
        rule_only = not is_official(dataset, lists)
    offsets = _offsets(dataset)
    if not rule_only:
        _check_kind(lists)
        listed = set(load_split(lists, fraction))
        if lists == "nuscenes":
            picked = [offsets[s] + i for s, seq in enumerate(dataset.sequences) if seq.name in listed
                      for i in range(len(seq))]
        else:
            picked = [offsets[s] + i for s, seq in enumerate(dataset.sequences) for i in range(len(seq))
                      if seq.frame_id(i) in listed]
    elif dataset.kind == "nuscenes":
        order = sorted(range(len(dataset.sequences)), key=lambda s: dataset.sequences[s].name)[::step]
        picked = [offsets[s] + i for s in order for i in range(len(dataset.sequences[s]))]
    else:
        ids = sorted((seq.frame_id(i), offsets[s] + i) for s, seq in enumerate(dataset.sequences)
                     for i in range(len(seq)))
        picked = [index for _, index in ids[::step]]
    if not picked:
        how = "the every-k-th rule" if rule_only else "the official split list"
        raise DataError(dataset.root, f"the {fraction}% split selects no frame of this dataset ({how})",
                        "pass rule_only=True to apply the rule to this dataset's own frames" if not rule_only
                        else None)
    return sorted(picked)
