"""The command line: the registry of commands (schema + run) and the `seal` entry point on top of everything."""

from seal.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
