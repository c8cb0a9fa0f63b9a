"""`seal datasets`: every dataset seal reads, with what its format knows, as one table."""

from __future__ import annotations

from dataclasses import dataclass

from seal.core.errors import ConfigError, SealError
from seal.core.frame import DatasetFormat
from seal.core.labelmap import load_label_map
from seal.data.formats import FORMATS, format_of


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
    source: str = "seal"  # "seal", or the plugin distribution that registers the format

    @property
    def pretraining(self) -> bool:
        return self.cameras and self.poses


def dataset_rows() -> list[DatasetRow]:
    """One row per registered format (the built-ins, then plugins with their distribution, as `FORMATS` lists them);
    the class count is its label map's (0 when a plugin names none seal can load)."""
    rows = []
    for kind in FORMATS.names():
        try:
            rows.append(_row(format_of(kind), FORMATS.source(kind)))
        except ConfigError as err:  # a plugin that fails to load is listed with why, not a crash of the table
            rows.append(DatasetRow(kind=kind, title="(failed to load)", layout="", label_map="-", classes=0,
                                   cameras=False, poses=False, needs=str(err), detection="", splits="",
                                   source=FORMATS.source(kind)))
    return rows


def _row(f: DatasetFormat, source: str) -> DatasetRow:
    try:
        classes = load_label_map(f.label_map).num_classes if f.label_map else 0
    except SealError:
        classes = 0
    return DatasetRow(kind=f.name, title=f.title or f.name, layout=f.layout, label_map=f.label_map or "-",
                      classes=classes, cameras=f.cameras, poses=f.poses, needs=f.needs, detection=f.detection,
                      splits=f.split_note, source=source)


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
        summary.add_row(r.kind, escape(r.title), f"{r.label_map} ({r.classes or '?'})", yes(r.cameras),
                        yes(r.poses), "yes" if r.pretraining else "downstream only")
    console.print(summary)
    details = Table(title="on disk", title_justify="left", show_header=False)
    details.add_column("kind", style="bold", no_wrap=True)
    details.add_column("what", no_wrap=True)
    details.add_column("", overflow="fold")
    for r in rows:  # escaped: layouts and commands hold [brackets] rich would read as markup
        facts = [("layout", r.layout), ("needs", r.needs), ("detected by", r.detection), ("splits", r.splits)]
        if r.source != "seal":
            facts.append(("from", f"plugin {r.source}"))
        facts = [(what, text) for what, text in facts if text] or [("layout", "-")]
        for i, (what, text) in enumerate(facts):
            details.add_row(r.kind if i == 0 else "", what, escape(text), end_section=i == len(facts) - 1)
    console.print(details)


def run_datasets(cfg: object) -> int:
    """`seal datasets` (it reads no configuration)."""
    render_datasets(dataset_rows())
    return 0


__all__ = ["DatasetRow", "dataset_rows", "render_datasets", "run_datasets"]
