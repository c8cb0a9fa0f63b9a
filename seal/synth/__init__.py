"""Procedural synthetic driving sequences (LiDAR + cameras + poses + labels) in the SemanticKITTI layout, or
(``layout="nuscenes"``) as an official nuScenes table set with keyframes, sweeps and lidarseg labels.

``generate_dataset`` writes a small dataset that seal's readers read like real data, so seal can be tried end
to end on a fresh machine without downloading anything.
"""

from seal.synth.generate import generate_dataset

__all__ = ["generate_dataset"]
