"""Pictures (PNG) of data, stage outputs and results."""
