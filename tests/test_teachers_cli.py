"""`seal teachers`: every registered teacher is listed with its stride and width, a plugin's with its distribution,
a broken plugin as a row saying why; the sizes come from the spec alone (nothing is built)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import pytest

import seal.core.registry as registry_module
from seal.cli.main import main
from seal.cli.teachers import model_size, native_input, teacher_rows
from seal.models import TEACHERS
from seal.models.teachers import TeacherSpec


@dataclass(frozen=True)
class FancyTeacher(TeacherSpec):
    """A third-party family that states its native input size (never built here)."""

    input_size: tuple[int, int] = (448, 448)


FANCY = FancyTeacher("fancy", "vit_large_patch16_fancy", 16, 1000, ("fancy-ckpt",), "Fancy ViT-L/16 (example.org)",
                     licence="Fancy Licence 1.0")


@pytest.fixture
def plugins(monkeypatch):
    """``fancy_vit`` (this module's FANCY) and ``broken_vit`` (a missing module) in the ``seal.teachers`` group."""
    eps = [metadata.EntryPoint("fancy_vit", f"{__name__}:FANCY", "seal.teachers"),
           metadata.EntryPoint("broken_vit", "no_such_module_anywhere:SPEC", "seal.teachers")]
    real = registry_module.metadata.entry_points
    monkeypatch.setattr(registry_module.metadata, "entry_points",
                        lambda **s: eps if s.get("group") == "seal.teachers" else real(**s))
    TEACHERS.refresh()
    yield
    monkeypatch.undo()
    TEACHERS.refresh()


def _summary_rows(out: str) -> dict[str, list[str]]:
    """name -> cells of the first table's rows (the first table ends where the second one's title starts)."""
    first = out.split("weights (teacher.weights=")[0]
    rows = {}
    for line in first.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            rows[cells[0]] = cells
    return rows


def test_every_registered_teacher_is_listed_with_its_stride_and_width(capsys) -> None:
    assert main(["teachers"]) == 0
    out = capsys.readouterr().out
    rows = _summary_rows(out)
    names = TEACHERS.names()
    assert names and set(names) <= set(rows), sorted(set(names) - set(rows))
    for name in names:
        spec = TEACHERS.get(name)
        cells = rows[name]
        assert cells[1] == spec.family and cells[-2:] == [str(spec.stride), str(spec.width)], (name, cells)
    assert rows["vit_large_patch14_dinov2"][2] == "ViT-L/14" and rows["resnet50"][2] == "ResNet-50"


def test_the_second_table_names_the_formats_licence_and_source_of_each(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # long lines unfolded, so whole phrases can be looked for
    assert main(["teachers"]) == 0
    out = capsys.readouterr().out.split("weights (teacher.weights=")[1]
    for row in teacher_rows():
        spec = TEACHERS.get(row.name)
        assert row.formats == ", ".join(spec.formats) and row.origin == "seal"
        assert row.licence == (spec.licence or "not stated") and row.source == (spec.source or "-")
        assert row.formats in out and row.licence in out


def test_a_plugin_teacher_shows_its_source_and_a_broken_one_why(plugins, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # long lines unfolded, so whole phrases can be looked for
    assert main(["teachers"]) == 0
    out = capsys.readouterr().out
    rows = _summary_rows(out)
    assert rows["fancy_vit"][1:] == ["fancy", "ViT-L/16 (448x448)", "16", "1000"]
    assert f"plugin {__name__}:FANCY" in out and "Fancy Licence 1.0" in out and "fancy-ckpt" in out
    assert rows["broken_vit"][1] == "(failed to load)"
    broken = next(r for r in teacher_rows() if r.name == "broken_vit")
    assert "no_such_module_anywhere" in broken.source and broken.origin == "no_such_module_anywhere:SPEC"
    assert list(TEACHERS.names())[-2:] == ["broken_vit", "fancy_vit"]  # plugins after the built-ins


@pytest.mark.parametrize("arch, stride, size", [
    ("vit_small_patch16_dinov3", 16, "ViT-S/16"), ("vit_base_patch14_reg4_dinov2", 14, "ViT-B/14"),
    ("vit_7b_patch16_dinov3", 16, "ViT-7B/16"), ("vit_huge_plus_patch16_dinov3_qkvb", 16, "ViT-H+/16"),
    ("naflexvit_so400m_patch16_radio_v4", 16, "ViT-SO400M/16"), ("segment_anything ImageEncoderViT vit_b", 16,
                                                                 "ViT-B/16"),
    ("sam2 ImageEncoder (Hiera-B+)", 16, "Hiera-B+"), ("convnext_tiny", 32, "ConvNeXt-T"),
    ("resnet101", 4, "ResNet-101"), ("radio_v3", 16, "-"), ("some_net", 8, "-"),
])
def test_the_model_size_is_read_from_the_architecture_name(arch, stride, size) -> None:
    spec = TeacherSpec("vit", arch, stride, 8, ())
    assert model_size(spec) == size
    assert native_input(spec) == ""


def test_a_spec_that_states_its_sizes_is_shown_as_it_says() -> None:
    @dataclass(frozen=True)
    class Stated(TeacherSpec):
        size: str = "C-RADIOv3-L"
        input_size: int = 512

    spec = Stated("radio", "c_radio_v3_l", 16, 1024, ())
    assert model_size(spec) == "C-RADIOv3-L" and native_input(spec) == "512x512"
    assert native_input(FANCY) == "448x448"
