"""Geometry shared by every stage: point-to-pixel pairings and voxelisation."""

from seal.geometry.projection import Pairings, pair_points, project_to_camera
from seal.geometry.voxelize import Voxelization, voxelize

__all__ = ["Pairings", "pair_points", "project_to_camera", "Voxelization", "voxelize"]
