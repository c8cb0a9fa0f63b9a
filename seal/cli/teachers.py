"""`seal teachers`: every registered 2D teacher (built-ins and plugins) with what its `TeacherSpec` states, as a table.

No network is built and no weights are read: the rows come from the specs alone (a plugin's spec is imported to be
read; timm and torchvision are not). The model size is the spec's ``size`` when it has one, else read from the
architecture name (``vit_large_...`` -> ViT-L/stride, ``resnet50`` -> ResNet-50); the native input size (what the
published weights were trained at) is shown when the spec states it (``input_size``: an int or (height, width)).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from seal.core.errors import ConfigError

__all__ = ["TeacherRow", "TeachersSchema", "model_size", "native_input", "render_teachers", "run_teachers",
           "teacher_rows"]

_SIZES = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H", "giant": "g", "giant2": "g",
          "ti": "Ti", "s": "S", "b": "B", "l": "L", "h": "H", "g": "g"}
_FAMILIES = (("resnet", "ResNet"), ("convnext", "ConvNeXt"), ("hiera", "Hiera"), ("swin", "Swin"), ("vit", "ViT"))


@dataclass
class TeachersSchema:
    """`seal teachers` reads no configuration: it lists what the teacher registry holds."""


@dataclass(frozen=True)
class TeacherRow:
    """What `seal teachers` shows of one registered teacher."""

    name: str
    family: str
    size: str          # model size ("ViT-L/14", "ResNet-50"), then the native input size when known ("(518x518)")
    stride: int
    width: int
    formats: str
    licence: str
    source: str        # the published weights the name is meant for
    origin: str = "seal"  # "seal", or the plugin distribution that registers the name


def model_size(spec: Any) -> str:
    """The spec's ``size``, else what its architecture name tells: a parenthesised name ("sam2 ImageEncoder
    (Hiera-B+)"), ``resnet50`` -> ResNet-50, ``convnext_base`` -> ConvNeXt-B, ``vit_huge_plus_patch16`` ->
    ViT-H+/16 (a ViT's patch is its stride); ``-`` when it tells none."""
    stated = getattr(spec, "size", None)
    if isinstance(stated, str) and stated:  # an attribute, not a method of the same name
        return stated
    arch = str(getattr(spec, "arch", ""))
    inner = re.search(r"\(([^()]+)\)", arch)
    if inner:
        return inner.group(1)
    low = arch.lower()
    resnet = re.search(r"resnet(\d+)", low)
    if resnet:
        return f"ResNet-{resnet.group(1)}"
    tokens = [t for t in re.split(r"[_\-./ ]+", low) if t]
    family = next((label for key, label in _FAMILIES if any(key in t for t in tokens)), None)
    for i, token in enumerate(tokens[1:], start=1):
        if token in _SIZES or re.fullmatch(r"(so)?\d+[bm]", token):  # vit_7b_..., naflexvit_so400m_...
            size = _SIZES.get(token) or token.upper()
            size = "T" if family == "ConvNeXt" and size == "Ti" else size
            size += "+" if tokens[i + 1:i + 2] == ["plus"] else ""
            break
    else:
        return "-"
    if family is None:
        return "-"
    return f"{family}-{size}/{getattr(spec, 'stride', '?')}" if family == "ViT" else f"{family}-{size}"


def native_input(spec: Any) -> str:
    """The input size the spec states (``input_size``, or ``image_size``) as HxW, or "" when it states none."""
    size = getattr(spec, "input_size", None) or getattr(spec, "image_size", None)
    if not isinstance(size, int | tuple | list) or not size:
        return ""
    if isinstance(size, int):
        return f"{size}x{size}"
    dims = [int(v) for v in size][-2:]  # (3, H, W) as timm writes it, or (H, W)
    return f"{dims[0]}x{dims[-1]}"


def teacher_rows() -> list[TeacherRow]:
    """One row per registered teacher, in `TEACHERS` order (built-ins, then plugins with their distribution); a
    plugin that fails to load is a row saying why, not a crash of the table."""
    from seal.models import TEACHERS

    rows = []
    for name in TEACHERS.names():
        origin = TEACHERS.source(name)
        try:
            spec = TEACHERS.get(name)
        except ConfigError as err:
            rows.append(TeacherRow(name, "(failed to load)", "-", 0, 0, "-", "-", str(err), origin))
            continue
        native = native_input(spec)
        size = model_size(spec) + (f" ({native})" if native else "")
        formats = ", ".join(getattr(spec, "formats", ()) or ()) or "-"
        rows.append(TeacherRow(name, str(getattr(spec, "family", "?")), size, int(getattr(spec, "stride", 0)),
                               int(getattr(spec, "width", 0)), formats, getattr(spec, "licence", "") or "not stated",
                               getattr(spec, "source", "") or "-", origin))
    return rows


def render_teachers(rows: list[TeacherRow]) -> None:
    """Print the rows as two rich tables: what each teacher is, then its weights: the formats read, their licence,
    where they are published (and the plugin it comes from, for a third-party one)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    summary = Table(title="2D teachers (teacher.backbone=NAME)", title_justify="left")
    summary.add_column("name", no_wrap=True)
    summary.add_column("family", overflow="fold")
    summary.add_column("size (native input)", overflow="fold")
    summary.add_column("stride", justify="right", no_wrap=True)
    summary.add_column("width", justify="right", no_wrap=True)
    for r in rows:
        summary.add_row(r.name, escape(r.family), escape(r.size), str(r.stride), str(r.width))
    console.print(summary)
    details = Table(title="weights (teacher.weights=a local file in a format read)", title_justify="left",
                    show_header=False)
    details.add_column("name", style="bold", no_wrap=True)
    details.add_column("what", no_wrap=True)
    details.add_column("", overflow="fold")
    for r in rows:  # escaped: sources hold [brackets] rich would read as markup
        facts = [("formats read", r.formats), ("licence", r.licence), ("source", r.source)]
        if r.origin != "seal":
            facts.append(("from", f"plugin {r.origin}"))
        for i, (what, text) in enumerate(facts):
            details.add_row(r.name if i == 0 else "", what, escape(text), end_section=i == len(facts) - 1)
    console.print(details)


def run_teachers(cfg: object) -> int:
    """`seal teachers` (it reads no configuration)."""
    render_teachers(teacher_rows())
    return 0
