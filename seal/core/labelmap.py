"""Label maps: raw dataset ids -> contiguous train ids (0 = ignore), class names and colours, from YAML."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from seal.core.errors import DataError

IGNORE_INDEX = 0


@dataclass(frozen=True)
class LabelMap:
    """Maps raw semantic ids to train ids 1..C (0 = ignore) and names/colours each train class."""

    name: str
    class_names: tuple[str, ...]
    colors: np.ndarray
    lookup: np.ndarray
    raw_names: dict[int, str]

    @property
    def num_classes(self) -> int:
        """Number of evaluated classes, ignore excluded."""
        return len(self.class_names)

    def name_of(self, train_id: int) -> str:
        return "ignore" if train_id == IGNORE_INDEX else self.class_names[train_id - 1]

    def to_train(self, raw: np.ndarray) -> np.ndarray:
        """Train ids of raw ids; ids the map does not list become ignore."""
        raw = np.asarray(raw, dtype=np.int64)
        out = np.zeros(raw.shape, dtype=np.uint8)
        known = (raw >= 0) & (raw < self.lookup.shape[0])
        out[known] = self.lookup[raw[known]]
        return out

    def rekeyed(self, pairs: list[tuple[int, int]]) -> LabelMap:
        """The same classes read through other raw ids: ``pairs`` maps a dataset's own id to this map's raw id
        (a release that numbers its categories differently)."""
        lookup = np.zeros(max(i for i, _ in pairs) + 1, dtype=np.uint8)
        for index, raw in pairs:
            lookup[index] = self.lookup[raw]
        return LabelMap(name=self.name, class_names=self.class_names, colors=self.colors, lookup=lookup,
                        raw_names={i: self.raw_names[r] for i, r in pairs})

    def color_of(self, train_ids: np.ndarray) -> np.ndarray:
        """RGB uint8 colours of train ids (ignore is black)."""
        palette = np.vstack([np.zeros((1, 3), np.uint8), self.colors])
        return palette[np.asarray(train_ids, dtype=np.int64)]


def load_label_map(name_or_path: str | Path) -> LabelMap:
    """Load a packaged label map by name (``semantickitti``, ``nuscenes``) or any YAML file of that schema."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise DataError(path, "label map file not found")
        text = path.read_text()
    else:
        pkg = resources.files("seal.data") / "labelmaps" / f"{name_or_path}.yaml"
        if not pkg.is_file():
            raise DataError(path, "no packaged label map of that name",
                            "use semantickitti, nuscenes, or a path to a .yaml label map")
        text = pkg.read_text()
    try:
        spec = yaml.safe_load(text)
        return _from_spec(spec)
    except (KeyError, TypeError, ValueError, yaml.YAMLError) as err:
        raise DataError(path, f"is not a valid label map: {err}") from err


def _from_spec(spec: dict) -> LabelMap:
    classes = spec["classes"]
    names = tuple(str(c["name"]) for c in classes)
    colors = np.array([c["color"] for c in classes], dtype=np.uint8).reshape(len(classes), 3)
    index = {n: i + 1 for i, n in enumerate(names)}
    raw_to_train = {int(k): v for k, v in spec["raw_to_train"].items()}
    lookup = np.zeros(max(raw_to_train) + 1, dtype=np.uint8)
    for raw, target in raw_to_train.items():
        if target in (None, "ignore"):
            continue
        if target not in index:
            raise ValueError(f"raw id {raw} maps to unknown class {target!r}")
        lookup[raw] = index[target]
    raw_names = {int(k): str(v) for k, v in spec.get("raw_names", {}).items()}
    return LabelMap(name=str(spec["name"]), class_names=names, colors=colors, lookup=lookup,
                    raw_names=raw_names)
