"""`orgbot train` and `orgbot eval`: registered on the main CLI by `register(app)`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the training and evaluation commands to the `orgbot` CLI."""
