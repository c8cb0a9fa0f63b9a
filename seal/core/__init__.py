"""The base layer: data model, geometry, checkpoint I/O, atomic writes, errors and the component configs.

It imports nothing from the rest of seal; every other sub-package builds on it.
"""
