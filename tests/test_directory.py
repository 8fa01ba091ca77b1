"""Who is asking: principals from config, Slack user groups and the e-mail, cached, failing closed."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from bot.settings import AccessSettings
from bot.slack.directory import Directory
from tests.fakes.fake_slack import FakeSlack


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    fake.emails["UFIN"] = "Alice@Example.com"
    fake.usergroups["S1"] = ["UFIN", "UOPS"]
    fake.usergroup_handles["S1"] = "finance-team"
    yield fake
    fake.stop()


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def directory(clock=None, **access) -> Directory:
    settings = AccessSettings(**{"groups": {"group:finance": ["alice@example.com"], "group:ops": ["UOPS"]},
                                 "cache_s": 60, **access})
    return Directory(settings, clock=clock or Clock())


def client(slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.api_url)


def test_a_person_has_their_id_e_mail_config_groups_and_slack_groups(slack):
    d = directory()
    assert d.principals(client(slack), "UFIN") == ("UFIN", "slack:UFIN", "alice@example.com", "group:finance",
                                                   "slack-group:finance-team")
    assert d.principals(client(slack), "UOPS") == ("UOPS", "slack:UOPS", "group:ops", "slack-group:finance-team")
    assert d.principals(client(slack), "UNOBODY") == ("UNOBODY", "slack:UNOBODY")


def test_lookups_are_cached_until_the_ttl_and_one_group_list_serves_everyone(slack):
    clock = Clock()
    d = directory(clock)
    for user in ("UFIN", "UOPS", "UFIN", "UOPS"):
        d.principals(client(slack), user)
    assert len(slack.called("users.info")) == 2 and len(slack.called("usergroups.list")) == 1
    slack.usergroups["S1"] = ["UOPS"]  # Alice leaves the Slack group
    clock.now = 61
    assert "slack-group:finance-team" not in d.principals(client(slack), "UFIN")
    assert len(slack.called("users.info")) == 3 and len(slack.called("usergroups.list")) == 2


def test_an_unknown_user_and_a_failed_lookup_get_public_documents_only(slack):
    slack.unknown_users.add("UGHOST")
    d = directory()
    assert d.principals(client(slack), "UGHOST") == ()
    slack.errors["users.info"] = "internal_error"
    assert d.principals(client(slack), "UFIN") == ()


def test_a_failed_refresh_keeps_the_last_answer_for_one_more_ttl_then_fails_closed(slack):
    clock = Clock()
    d = directory(clock)
    before = d.principals(client(slack), "UFIN")
    slack.errors["users.info"] = "internal_error"
    slack.errors["usergroups.list"] = "internal_error"
    clock.now = 61
    assert d.principals(client(slack), "UFIN") == before
    clock.now = 121
    assert d.principals(client(slack), "UFIN") == ()


def test_without_the_usergroups_scope_config_groups_still_apply(slack):
    slack.errors["usergroups.list"] = "missing_scope"
    d = directory()
    assert d.principals(client(slack), "UOPS") == ("UOPS", "slack:UOPS", "group:ops")
    d.principals(client(slack), "UFIN")
    assert len(slack.called("usergroups.list")) == 1  # not asked again on every question
