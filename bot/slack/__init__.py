"""The Slack layer: a thin Bolt app over `bot.answering` (see docs/slack.md)."""
