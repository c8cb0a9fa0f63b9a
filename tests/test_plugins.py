"""An out-of-tree plugin: the README's example package, installed the way pip lays it out (the package beside a
``.dist-info`` folder holding its entry points), found by seal without any change to seal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_block(marker: str) -> str:
    """The fenced code block that follows ``<!-- plugin: MARKER -->`` in the README."""
    text = README.read_text()
    found = re.search(rf"<!-- plugin: {re.escape(marker)} -->\n```\w+\n(.*?)```", text, re.S)
    assert found, f"README has no plugin block {marker}"
    return found.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A site folder with the README's plugin installed: its package and its dist-info (METADATA, entry points)."""
    site = tmp_path_factory.mktemp("site")
    (site / "seal_fleet").mkdir()
    (site / "seal_fleet" / "__init__.py").write_text(_readme_block("seal_fleet/__init__.py"))
    project = tomllib.loads(_readme_block("pyproject.toml"))["project"]
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    groups = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n"
                     for group, eps in project["entry-points"].items())
    (dist / "entry_points.txt").write_text(groups)
    return site


@pytest.fixture(scope="module")
def drives(tmp_path_factory) -> Path:
    """Two drives of three scans in the fleet layout."""
    root = tmp_path_factory.mktemp("fleet")
    (root / "fleet.txt").write_text("our fleet\n")
    rng = np.random.default_rng(0)
    for d in ("drive-a", "drive-b"):
        (root / d).mkdir()
        for i in range(3):
            np.save(root / d / f"{i:06d}.npy", rng.normal(size=(100 + 10 * i, 4)).astype(np.float32))
    return root


def _seal(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "seal", *args], capture_output=True, text=True, env=env, timeout=300)


def test_seal_info_reads_a_plugin_format(site, drives):
    out = _seal(site, "info", str(drives))
    assert out.returncode == 0, out.stderr
    assert "fleet" in out.stdout.lower()
    assert "drive-a" in out.stdout and "drive-b" in out.stdout
    assert "6" in out.stdout  # frames: 2 drives x 3 scans
    forced = _seal(site, "info", str(drives), "--kind", "fleet")
    assert forced.returncode == 0, forced.stderr


def test_plugin_is_listed_with_its_source_and_without_it_unknown(site, drives):
    listed = _seal(site, "datasets")
    assert listed.returncode == 0, listed.stderr
    assert "fleet" in listed.stdout and "seal-fleet 0.1.0" in listed.stdout
    without = subprocess.run([sys.executable, "-m", "seal", "info", str(drives), "--kind", "fleet"],
                             capture_output=True, text=True, timeout=300)
    assert without.returncode == 2 and "fleet" in without.stderr  # argparse lists the known kinds


def test_doctor_names_the_plugin(site):
    out = _seal(site, "doctor")
    assert "plugin seal.formats" in out.stdout and "fleet from seal-fleet 0.1.0" in out.stdout, out.stdout


def test_names_are_listed_without_importing_the_plugin(site):
    code = ("import sys; from seal.data.formats import FORMATS; names = FORMATS.names(); "
            "print('fleet' in names, 'seal_fleet' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]
