"""`orgbot serve` and `orgbot feedback`: registered on the main CLI by `register(app)`."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the Slack commands to the `orgbot` CLI."""

    @app.command()
    def serve(
        port: Annotated[int | None, typer.Option(
            "--port", "-p", envvar="PORT", show_default=False,
            help="HTTP mode: port to listen on (default 3000). Socket Mode: serve GET /healthz on this port "
                 "(none unless given)")] = None,
        host: Annotated[str, typer.Option("--host", help="address to bind (HTTP mode, or /healthz in "
                                                         "Socket Mode)")] = "0.0.0.0",
    ):
        """Run the Slack bot: Socket Mode if SLACK_APP_TOKEN is set, else HTTP at /slack/events (+ /healthz).

        Example: SLACK_BOT_TOKEN=xoxb-… SLACK_APP_TOKEN=xapp-… orgbot serve --port 8080  (health on :8080)
        """
        from bot import cli
        from bot.settings import ConfigError
        from bot.slack.app import check_tokens
        from bot.slack.app import serve as run
        from bot.slack.claims import open_claims

        settings = cli._settings()
        try:
            check_tokens(settings, socket_mode=bool(settings.slack.app_token))
            claims = open_claims(settings)  # a data dir it cannot write fails now, not after the model loads
            answerer = cli._answerer(settings)
            run(settings, host=host, port=port, answerer=answerer, claims=claims,
                on_ready=lambda m: cli.err.print(f"[green]{m}"))
        except ConfigError as e:
            raise cli.fail(str(e)) from None
        except KeyboardInterrupt:
            cli.err.print("stopped")

    feedback = typer.Typer(help="👍/👎 votes people gave the bot's answers in Slack.", no_args_is_help=True)
    app.add_typer(feedback, name="feedback")

    @feedback.command("export")
    def export(
        out: Annotated[str, typer.Option("--out", "-o", help="JSONL file to write")] = "feedback.jsonl",
        since: Annotated[str | None, typer.Option("--since", help="only votes on or after this date "
                                                                  "(YYYY-MM-DD)")] = None,
    ):
        """Write one JSON object per vote (question, answer, vote, passages, citations, user, channel, asked_at).

        `orgbot train` reads the file as it is. Example: orgbot feedback export --out data/feedback.jsonl
        """
        from bot import cli
        from bot.feedback import FeedbackStore, feedback_path

        settings = cli._settings()
        path = feedback_path(settings)
        if not path.exists():
            raise cli.fail(f"No feedback yet at {path}. It is recorded when people click 👍/👎 in Slack "
                           "(orgbot serve).")
        n = FeedbackStore(path).export(out, since=since)
        cli.err.print(f"[green]✓[/] wrote {n} vote(s) to {out}")
