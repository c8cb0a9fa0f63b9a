"""Few-shot fine-tuning splits (docs/METHOD.md §8), shipped as files so that results are comparable across runs.

Rule: fraction f% keeps every k-th item, k = 100, 20, 10, 4, 1 for f = 1, 5, 10, 25, 100, starting with the first.
- nuScenes: items are scenes, in the order of nuscenes-devkit's ``splits.train`` (700 scenes, sorted by name);
  files ``splits/nuscenes_train_<f>.txt`` (scene names), ``nuscenes_train.txt`` and ``nuscenes_val.txt`` (150).
- SemanticKITTI: items are the frames of training sequences 00-07 and 09-10 (08 is validation), as the sorted
  list of ``sequences/SS/velodyne/NNNNNN.bin``; files ``splits/semantickitti_train_<f>.txt`` hold ``SS/NNNNNN``
  ids for f = 1, 5, 10, 25. 100% is every training frame, generated from the per-sequence frame counts below
  rather than stored as a 19,130-line file. ScribbleKITTI uses these lists (its scans are SemanticKITTI's).
- Every other dataset: an official split of *sequences* (its format names them, see ``splits/README.md``), and the
  rule applied to the sorted frame ids of the training sequences present (`sequence_split`).

Every split rule lives here: a format's `official_split` / `rule_split` call these functions, and `split_indices`
is what training and evaluation ask for (the official split when it applies, else the named sequences).
"""

from __future__ import annotations

from importlib import resources

from seal.core.config import SplitConfig
from seal.core.errors import ConfigError, DataError
from seal.core.frame import Dataset

STEPS = {1: 100, 5: 20, 10: 10, 25: 4, 100: 1}
SEMANTICKITTI_TRAIN_FRAMES = {"00": 4541, "01": 1101, "02": 4661, "03": 801, "04": 271, "05": 2761, "06": 1101,
                              "07": 1101, "09": 1591, "10": 1201}
SEMANTICKITTI_VAL_SEQUENCES = ("08",)


def split_step(fraction: int) -> int:
    """k of the every-k-th rule for ``fraction`` percent; a ConfigError naming ``--fraction`` otherwise."""
    try:
        return STEPS[int(fraction)]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"--fraction {fraction!r} is not a supported few-shot fraction; "
                          f"choose one of {', '.join(map(str, STEPS))} (percent of the training set)") from None


def _read(name: str) -> list[str]:
    text = (resources.files("seal.data") / "splits" / name).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


class PackagedLists:
    """The official few-shot lists one benchmark ships (``splits/<name>_*.txt``): what they name (scenes or
    frames), its training and validation sequences, and how they select a dataset's frames."""

    name = ""
    by_scene = False  # the lists (and the rule on such a dataset) count whole scenes, not frames

    def train(self, fraction: int) -> list[str]:
        """The listed items of the ``fraction``% training split."""
        return _read(f"{self.name}_train_{int(fraction)}.txt")

    def train_sequences(self) -> list[str]:
        raise NotImplementedError

    def val_sequences(self) -> list[str]:
        raise NotImplementedError

    def applies(self, dataset: Dataset) -> bool:
        """Whether these lists name ``dataset``'s sequences (see `is_official`)."""
        raise NotImplementedError

    def picks(self, dataset: Dataset, listed: set[str]) -> list[int]:
        """Dataset-wide indices of the frames the ``listed`` items select."""
        starts = dataset.sequence_starts
        return [starts[s] + i for s, seq in enumerate(dataset.sequences) for i in range(len(seq))
                if (seq.name if self.by_scene else seq.frame_id(i)) in listed]


class NuScenesLists(PackagedLists):
    """Scene names in the order of nuscenes-devkit's ``splits.train`` (700, name-sorted) and ``splits.val``."""

    name, by_scene = "nuscenes", True

    def train_sequences(self) -> list[str]:
        return _read("nuscenes_train.txt")

    def val_sequences(self) -> list[str]:
        return _read("nuscenes_val.txt")

    def applies(self, dataset: Dataset) -> bool:
        official = set(self.train_sequences()) | set(self.val_sequences())
        return any(s.name in official for s in dataset.sequences)


class SemanticKittiLists(PackagedLists):
    """``SS/NNNNNN`` frame ids of sequences 00-07 and 09-10; 100% generated from the frame counts."""

    name = "semantickitti"

    def train(self, fraction: int) -> list[str]:
        return semantickitti_train_frames() if split_step(fraction) == 1 else super().train(fraction)

    def train_sequences(self) -> list[str]:
        return list(SEMANTICKITTI_TRAIN_FRAMES)

    def val_sequences(self) -> list[str]:
        return list(SEMANTICKITTI_VAL_SEQUENCES)

    def applies(self, dataset: Dataset) -> bool:
        train = [s for s in dataset.sequences if s.name in SEMANTICKITTI_TRAIN_FRAMES]
        return bool(train) and all(
            list(s.frame_names) == [f"{i:06d}" for i in range(SEMANTICKITTI_TRAIN_FRAMES[s.name])] for s in train)


LISTS: dict[str, PackagedLists] = {lists.name: lists for lists in (NuScenesLists(), SemanticKittiLists())}


def packaged_lists(name: str) -> PackagedLists:
    """The packaged lists ``name`` (``nuscenes``, ``semantickitti``); a ConfigError naming those that exist."""
    if name not in LISTS:
        raise ConfigError(f"no official few-shot splits for dataset kind {name!r}; official splits exist for "
                          f"{', '.join(LISTS)} (other datasets use the every-k-th-frame rule via select_frames)")
    return LISTS[name]


def semantickitti_train_frames() -> list[str]:
    """All 19,130 SemanticKITTI training frame ids ``SS/NNNNNN``, sorted as the file paths sort."""
    return sorted(f"{seq}/{i:06d}" for seq, n in SEMANTICKITTI_TRAIN_FRAMES.items() for i in range(n))


def load_split(dataset_kind: str, fraction: int) -> list[str]:
    """The official ``fraction``% training split: nuScenes scene names, or SemanticKITTI frame ids ``SS/NNNNNN``."""
    split_step(fraction)
    return packaged_lists(dataset_kind).train(fraction)


def train_sequences(dataset_kind: str) -> list[str]:
    """Names of the official training sequences (700 nuScenes scenes; SemanticKITTI 00-07, 09, 10)."""
    return packaged_lists(dataset_kind).train_sequences()


def val_sequences(dataset_kind: str) -> list[str]:
    """Names of the official validation sequences (150 nuScenes scenes; SemanticKITTI 08)."""
    return packaged_lists(dataset_kind).val_sequences()


def every_kth_frame(dataset: Dataset, fraction: int, sequences: set[str] | None = None) -> list[int]:
    """The rule: every k-th of the dataset's frame ids sorted lexicographically (the first included), over the
    frames of ``sequences`` when given; dataset-wide indices, ascending."""
    ids = sorted((seq.frame_id(i), start + i) for seq, start in zip(dataset.sequences, dataset.sequence_starts,
                                                                    strict=True)
                 if sequences is None or seq.name in sequences for i in range(len(seq)))
    return sorted(index for _, index in ids[::split_step(fraction)])


def sequence_split(dataset: Dataset, fraction: int, train: tuple[str, ...] | list[str],
                   val: tuple[str, ...] | list[str]) -> tuple[list[int], list[str]] | None:
    """(every k-th frame of the sorted frame ids of the ``train`` sequences present, the ``val`` sequences present),
    or None when none of the ``train`` sequences is present (the user then names the sequences)."""
    picked = every_kth_frame(dataset, fraction, set(train))
    if not picked:
        return None
    present = {s.name for s in dataset.sequences}
    return picked, [v for v in val if v in present]


def is_official(dataset: Dataset, lists: str | None = None) -> bool:
    """Whether the official split lists apply to ``dataset``.

    nuScenes: at least one scene has an official (train or val) scene name, so a val-only folder gets an empty
    training split (an error) rather than the rule applied to val scenes. SemanticKITTI: at least one official training
    sequence is present and every present one has exactly the official frames (000000..N-1); seal's synthetic
    data, which reuses the names 00, 01, ... with other frame counts, therefore falls back to the rule. ``lists``
    names the official lists to check (default: the dataset's kind; ScribbleKITTI passes ``semantickitti``).
    """
    lists = lists or dataset.kind
    return lists in LISTS and LISTS[lists].applies(dataset)


def listed_split(dataset: Dataset, fraction: int, lists: str) -> tuple[list[int], list[str]] | None:
    """(the frames the packaged ``lists`` select, their validation sequences), or None when those lists do not
    apply to ``dataset`` (`is_official`): the official split of nuScenes, SemanticKITTI and ScribbleKITTI."""
    if not is_official(dataset, lists):
        return None
    return select_frames(dataset, fraction, rule_only=False, lists=lists), val_sequences(lists)


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
    if not rule_only:
        packaged = packaged_lists(lists)
        picked = packaged.picks(dataset, set(packaged.train(fraction)))
    elif dataset.kind in LISTS and LISTS[dataset.kind].by_scene:  # every k-th scene in name order
        starts = dataset.sequence_starts
        order = sorted(range(len(dataset.sequences)), key=lambda s: dataset.sequences[s].name)[::step]
        picked = [starts[s] + i for s in order for i in range(len(dataset.sequences[s]))]
    else:
        picked = every_kth_frame(dataset, fraction)
    if not picked:
        how = "the every-k-th rule" if rule_only else "the official split list"
        raise DataError(dataset.root, f"the {fraction}% split selects no frame of this dataset ({how})",
                        "pass rule_only=True to apply the rule to this dataset's own frames" if not rule_only
                        else None)
    return sorted(picked)


def split_indices(dataset: Dataset, split: SplitConfig) -> tuple[list[int], list[int]]:
    """(train frame indices of the few-shot fraction, val frame indices) of ``dataset``: the official lists of
    its format when they apply and no sequences are named, else the named sequences and the every-k-th rule."""
    starts = dict(zip((s.name for s in dataset.sequences), dataset.sequence_starts, strict=True))
    names = [s.name for s in dataset.sequences]
    official = None
    if split.train_sequences is None and dataset.format is not None:
        official = dataset.format.official_split(dataset, split.fraction)
    if official is not None:
        train, val_names = official
        val_names = split.val_sequences or val_names
    else:
        if split.train_sequences is None or split.val_sequences is None:
            raise ConfigError(f"{dataset.root} has no official split: set split.train_sequences and "
                              f"split.val_sequences (its sequences are {names[:10]})")
        missing = [s for s in split.train_sequences + split.val_sequences if s not in starts]
        if missing:
            raise ConfigError(f"split sequences {missing} are not in {dataset.root} (it has {names[:10]})")
        view = Dataset(root=dataset.root, kind=dataset.kind, label_map=dataset.label_map, format=dataset.format,
                       sequences=[s for s in dataset.sequences if s.name in split.train_sequences])
        back = [starts[s.name] + i for s in view.sequences for i in range(len(s))]  # view index -> dataset index
        rule = dataset.format.rule_split if dataset.format is not None else every_kth_frame
        train = [back[i] for i in rule(view, split.fraction)]
        val_names = split.val_sequences
    val = [starts[s.name] + i for s in dataset.sequences if s.name in set(val_names) for i in range(len(s))]
    if not val:
        raise ConfigError(f"the validation sequences {list(val_names)[:5]} are not in {dataset.root}")
    return train, val
