"""Seal pretraining: frame-pair samples, augmentations, collation, and the configuration of a run."""
