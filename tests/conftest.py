import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads the developer's own environment or .env."""
    for var in list(os.environ):
        if var.startswith("ORGBOT_") or var in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN",
                                               "SLACK_API_URL"):
            monkeypatch.delenv(var, raising=False)
    # load_settings() remembers its YAML file for later Settings(...) calls; never another test's.
    import bot.settings

    monkeypatch.setattr(bot.settings, "_CURRENT_YAML", None)


@pytest.fixture(scope="session")
def real_embedder():
    from retrieval.embedding import Embedder

    e = Embedder()
    e.warm_up()
    return e
