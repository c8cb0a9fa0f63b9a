"""Procedural synthetic driving sequences (LiDAR + cameras + poses + labels) in the SemanticKITTI layout.

``generate_dataset`` writes a small dataset that the SemanticKITTI reader reads like real data, so seal can
be tried end to end on a fresh machine without downloading anything.
"""

from seal.synth.generate import generate_dataset

__all__ = ["generate_dataset"]
