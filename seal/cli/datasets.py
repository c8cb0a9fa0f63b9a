"""`seal datasets`: every dataset seal reads, with what its format knows, as one table."""

from __future__ import annotations

from dataclasses import dataclass

from seal.core.labelmap import load_label_map
from seal.data.formats import FORMATS


@dataclass(frozen=True)
class DatasetRow:
    """What `seal datasets` shows of one format."""

    kind: str
    title: str
    layout: str
    label_map: str
    classes: int
    cameras: bool
    poses: bool
    needs: str
    detection: str
    splits: str

    @property
    def pretraining(self) -> bool:
        return self.cameras and self.poses


def dataset_rows() -> list[DatasetRow]:
    """One row per format, in detection order; the class count is the packaged label map's."""
    return [DatasetRow(kind=f.name, title=f.title or f.name, layout=f.layout, label_map=f.label_map,
                       classes=load_label_map(f.label_map).num_classes, cameras=f.cameras, poses=f.poses,
                       needs=f.needs, detection=f.detection, splits=f.split_note) for f in FORMATS.values()]


def render_datasets(rows: list[DatasetRow]) -> None:
    """Print the rows as two rich tables: what each dataset offers, then what it needs on disk."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    console = Console()
    summary = Table(title="datasets seal reads (open with --kind KIND, or let the layout be detected)",
                    title_justify="left")
    summary.add_column("kind", no_wrap=True)
    summary.add_column("dataset", overflow="fold")
    summary.add_column("label map (classes)", overflow="fold")
    summary.add_column("cameras")
    summary.add_column("poses")
    summary.add_column("pretraining", no_wrap=True)
    for r in rows:
        summary.add_row(r.kind, escape(r.title), f"{r.label_map} ({r.classes})", yes(r.cameras), yes(r.poses),
                        "yes" if r.pretraining else "downstream only")
    console.print(summary)
    details = Table(title="on disk", title_justify="left", show_header=False)
    details.add_column("kind", style="bold", no_wrap=True)
    details.add_column("what", no_wrap=True)
    details.add_column("", overflow="fold")
    for r in rows:  # escaped: layouts and commands hold [brackets] rich would read as markup
        for i, (what, text) in enumerate((("layout", r.layout), ("needs", r.needs), ("detected by", r.detection),
                                          ("splits", r.splits))):
            details.add_row(r.kind if i == 0 else "", what, escape(text), end_section=i == 3)
    console.print(details)


def run_datasets(cfg: object) -> int:
    """`seal datasets` (it reads no configuration)."""
    render_datasets(dataset_rows())
    return 0


__all__ = ["DatasetRow", "dataset_rows", "render_datasets", "run_datasets"]
