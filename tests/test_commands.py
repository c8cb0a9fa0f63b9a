"""The command registry: every command's help, presets shared across commands, `seal config COMMAND`, bad values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import seal.cli.commands  # noqa: F401 - registers the commands
from seal.cli.main import build_parser, main
from seal.cli.registry import REGISTRY, build_config
from seal.core.settings import field_comments, preset_names

COMMANDS = sorted(REGISTRY)


@pytest.mark.parametrize("name", [*COMMANDS, "config", "show"])
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*name.split(" "), "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--config" in out or name == "show"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_key_of_every_command_has_a_comment(name):
    comments = field_comments(REGISTRY[name].defaults())
    missing = [key for key, text in comments.items() if not text]
    assert not missing, f"seal {name}: keys without a comment: {missing}"


@pytest.mark.parametrize("name", ["pretrain", "probe", "superpixels", "info", "evaluate", "show pairs"])
def test_seal_config_lists_every_key_the_command_reads(name, capsys):
    assert main(["config", name.split(" ")[0]]) == 0
    out = capsys.readouterr().out
    for key in field_comments(REGISTRY[name].defaults()):
        leaf = key.rsplit(".", 1)[-1]
        assert f"{leaf}:" in out, f"seal config {name} misses {key}"
    sections = {f.name for f in dataclasses.fields(REGISTRY[name].schema)}
    assert all(f"\n{s}:" in out for s in sections)


def test_seal_config_superpixels_shows_work_width_with_its_comment(capsys):
    assert main(["config", "superpixels", "--config", "tiny"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "work_width:" in x)
    assert "work_width: 0" in line and "# run SLIC on a copy this wide" in line  # the tiny preset's value


@pytest.mark.parametrize("family, preset", [(f, p) for f, names in preset_names().items() for p in names])
def test_a_preset_is_accepted_by_every_command_it_fits(family, preset):
    """A preset's sections reach every command that reads them; the others are left out, never an error."""
    for name, command in REGISTRY.items():
        if family not in command.families:
            continue
        cfg = build_config(command, preset, {}, [])
        if hasattr(cfg, "superpixels") and family == "pretrain" and preset == "tiny":
            assert cfg.superpixels.slic.n_segments == 60, name  # the preset's value, not the default 150


def test_superpixels_and_info_take_the_tiny_preset(nuscenes_root, tmp_path, capsys):
    assert main(["superpixels", str(nuscenes_root), "--config", "tiny", "--cache", str(tmp_path / "c"),
                 "--no-progress"]) == 0
    assert main(["info", str(nuscenes_root), "--config", "tiny"]) == 0
    assert "nuscenes" in capsys.readouterr().out
    assert list((tmp_path / "c" / "superpixels").glob("slic-*"))


BAD_VALUES = [
    (["pretrain"], "train.batch_size=0", "train.batch_size"),
    (["pretrain"], "loss.tau=0", "loss.tau"),
    (["pretrain"], "loss.tau=-0.5", "loss.tau"),
    (["pretrain"], "optim.lr=-0.1", "optim.lr"),
    (["pretrain"], "model.engine=cudnn", "model.engine"),
    (["pretrain"], "train.accumulate=0", "train.accumulate"),
    (["superpixels"], "superpixels.slic.n_segments=0", "superpixels.slic.n_segments"),
    (["superpixels"], "superpixels.method=felzenszwalb", "superpixels.method"),
    (["superpoints"], "superpoints.gap=0", "superpoints.gap"),
    (["probe"], "split.fraction=3", "split.fraction"),
    (["probe"], "train.batch_size=-2", "train.batch_size"),
    (["info"], "info.label_sample=-1", "info.label_sample"),
    (["corrupt", "--out", "x", "--corruption", "fog"], "corrupt.severity=extreme", "corrupt.severity"),
    (["pretrain"], "augment.crop_size=[100]", "augment.crop_size' = [100]: must have 2 items, got 1"),
    (["pretrain"], "augment.crop_size=[10000,10000]", "item 0 (10000) must be between 1 and 4096"),
    (["pretrain"], "augment.crop_scale=[1.0,0.3]", "augment.crop_scale' = [1.0, 0.3]: must be in ascending"),
    (["pretrain"], "augment.crop_ratio=[0,0]", "augment.crop_ratio' = [0.0, 0.0]: item 0 (0.0) must be > 0"),
    (["pretrain"], "model.backbone.planes=[16,32]", "model.backbone.planes' = [16, 32]: must have 8 items"),
    (["pretrain"], "model.backbone.layers=[0,0,0,0,0,0,0,0]", "model.backbone.layers' = [0, 0, 0, 0, 0, 0, 0, 0]"),
    (["pretrain"], "data.mix_weights=[1,2]", "data.mix_weights=[1.0, 2.0] without data.mix"),
]


@pytest.mark.parametrize("argv, override, key", BAD_VALUES)
def test_out_of_range_values_are_one_line_errors(argv, override, key, nuscenes_root, tmp_path, capsys,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main([argv[0], str(nuscenes_root), *argv[1:], override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seal: error:") and key in err[0], err
    assert not any(tmp_path.iterdir())  # nothing written for a refused config


def test_unknown_command_in_seal_config(capsys):
    assert main(["config", "pretrian"]) == 2
    assert "no such command" in capsys.readouterr().err


def test_doctor_prints_its_table_and_says_whether_a_run_can_start(capsys, tmp_path):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in ("python", "torch", "sparse engine", "spconv", "[sam]", "teacher.weights"))
    assert main(["doctor", f"teacher.weights={tmp_path / 'missing.pth'}"]) == 1
    assert "NOT FOUND" in capsys.readouterr().out


def test_a_dict_written_whole_on_the_command_line_replaces_the_presets():
    from seal.core.schemas import PretrainSchema
    from seal.core.settings import load_config

    tiny = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
    assert load_config(PretrainSchema, tiny, []).teacher.model_kwargs == {"embed_dim": 96, "depth": 2, "num_heads": 3}
    assert load_config(PretrainSchema, tiny, ["teacher.model_kwargs={}"]).teacher.model_kwargs == {}
    assert load_config(PretrainSchema, tiny, ["teacher.model_kwargs={patch: 16}"]).teacher.model_kwargs == {"patch": 16}
    one = load_config(PretrainSchema, tiny, ["teacher.model_kwargs.depth=3"]).teacher.model_kwargs
    assert one == {"embed_dim": 96, "depth": 3, "num_heads": 3}  # a dotted key still changes one entry
