"""orgbot: the Slack app, its listeners, the answering path and the CLI."""
