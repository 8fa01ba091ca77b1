import pytest

from bot.settings import ConfigError, load_settings


def test_yaml_then_env_override(tmp_path, monkeypatch):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retrieval:\n  top_k: 7\nsources:\n  w:\n    path: /tmp/w\n")
    assert load_settings(cfg).retrieval.top_k == 7
    monkeypatch.setenv("ORGBOT_RETRIEVAL__TOP_K", "9")
    s = load_settings(cfg)
    assert s.retrieval.top_k == 9 and s.sources["w"].path == "/tmp/w"


def test_bad_value_names_the_field_and_the_fix(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retrieval:\n  top_k: many\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "retrieval.top_k" in str(e.value) and "ORGBOT_RETRIEVAL__TOP_K" in str(e.value)


def test_unknown_key_and_broken_yaml_are_clear(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retreival:\n  top_k: 3\n")
    with pytest.raises(ConfigError, match="retreival"):
        load_settings(cfg)
    cfg.write_text("retrieval: [top_k: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_settings(cfg)


def test_reranking_without_a_judge_to_rerank_with_says_what_to_set(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("retrieval:\n  rerank_depth: 8\nanswering:\n  focus_embedder: null\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    message = str(e.value)
    assert "answering.focus_embedder" in message and "rerank_depth: 0" in message and "ORGBOT_." not in message
    cfg.write_text("retrieval:\n  rerank_depth: 8\nanswering:\n  focus_embedder: models/all-mpnet-base-v2\n")
    assert load_settings(cfg).retrieval.rerank_depth == 8


def test_slack_tokens_from_conventional_env_are_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    s = load_settings()
    assert s.slack.bot_token.get_secret_value() == "xoxb-very-secret"
    assert "xoxb-very-secret" not in repr(s) and "xoxb-very-secret" not in s.model_dump_json()


def test_missing_config_file_passed_explicitly(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_a_sources_exclude_patterns_reach_its_connector(tmp_path):
    from bot.runtime import make_connector

    wiki = tmp_path / "wiki"
    wiki.mkdir()
    (wiki / "README.md").write_text("# About this folder")
    (wiki / "leave.md").write_text("# Leave\n25 days.")
    (wiki / ".draft.md").write_text("# Draft")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sources:\n  w:\n    path: {wiki}\n    exclude: [README.md]\n")
    # the configured pattern is added to the defaults (hidden files stay skipped)
    assert make_connector("w", load_settings(cfg)).list_ids() == {"w:leave.md"}
