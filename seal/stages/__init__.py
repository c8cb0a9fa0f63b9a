"""Cached, resumable, shardable pipeline stages (superpixels, superpoints)."""

from seal.stages.cache import StageCache, cache_root_for, parse_shard
from seal.stages.runner import StageReport, run_items

__all__ = ["StageCache", "cache_root_for", "parse_shard", "StageReport", "run_items"]
