"""Temporal superpoints as a cached pipeline stage (docs/METHOD.md §4); the geometry is in seal.geometry."""
