"""Temporal superpoints as a cached pipeline stage (SPEC section 4); the geometry is in seal.geometry."""
