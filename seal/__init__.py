"""seal: LiDAR segmentation pretrained by distilling vision foundation models (Seal, NeurIPS 2023)."""

__version__ = "0.1.0"
