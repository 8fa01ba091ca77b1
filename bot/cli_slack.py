"""`orgbot serve` and `orgbot feedback`: registered on the main CLI by `register(app)`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the Slack commands to the `orgbot` CLI."""
