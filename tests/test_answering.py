import pytest

from bot.answering import Answerer, QuestionError, Turn
from bot.answering.answerer import clean_generation
from bot.answering.citations import validate_citations
from bot.answering.prompt import build_messages, render
from retrieval.sqlite_index import EmbeddedIndex
from tests.contract.index_contract import make_chunks
from tests.fakes.embedder import HashingEmbedder
from tests.fakes.generator import ScriptedGenerator


def test_invented_citation_numbers_are_dropped():
    text, cited = validate_citations("Parking is free [2]. Bikes go downstairs [7]. See [1, 9] and [3-4].", 4)
    assert text == "Parking is free [2]. Bikes go downstairs. See [1] and [3][4]."
    assert cited == [2, 1, 3, 4]


def test_base_model_rambling_is_cut_after_the_answer():
    raw = "Hi Ana! Lot B is free [1].\n\n— Anvil 🔨 more words\nQuestion: next one?"
    assert clean_generation(raw) == "Hi Ana! Lot B is free [1].\n\n— Anvil 🔨"


@pytest.fixture
def index(tmp_path):
    idx = EmbeddedIndex(tmp_path / "i.db")
    idx.upsert(make_chunks("wiki:parking", ["Staff park for free in lot B behind the Toronto office."],
                           title="Parking"))
    idx.upsert(make_chunks("wiki:vpn", ["Import the acme-vpn profile and sign in with AcmeID."], title="VPN"))
    idx.upsert(make_chunks("wiki:lunch", ["Lunch is served in the canteen from noon."], title="Canteen"))
    return idx


def answerer(index, gen, **kw):
    return Answerer(index, HashingEmbedder(), gen, top_k=3, min_similarity=0.2, **kw)


def test_only_cited_sources_are_listed_with_their_numbers(index):
    def reply(messages):
        user = messages[-1]["content"]
        n = next(i for i in range(1, 4) if f"[{i}] Parking" in user)
        return f"Hi there! Parking is free in lot B [{n}] [9]."

    ans = answerer(index, ScriptedGenerator(reply)).answer("where do staff park for free?")
    assert ans.found
    assert [(c.title, c.document_id) for c in ans.citations] == [("Parking", "wiki:parking")]
    assert "[9]" not in ans.text
    number = ans.citations[0].number
    assert ans.passages[number - 1].chunk.document_id == "wiki:parking"


def test_nothing_relevant_means_no_guess_and_nearest_pages(index):
    gen = ScriptedGenerator("should not be called")
    ans = answerer(index, gen).answer("quarterly revenue, Brazil subsidiary?")
    assert not ans.found and gen.prompts == []
    assert "couldn't find" in ans.text
    assert ans.citations == [] and ans.nearest


def test_prompt_numbers_passages_and_names_the_asker(index):
    gen = ScriptedGenerator()
    answerer(index, gen, few_shot=False).answer("how do I set up the VPN profile?", asker="Ana")
    user = gen.prompts[0][-1]["content"]
    assert user.startswith("Passages:\n[1] VPN")
    assert "Asker: Ana\nQuestion: how do I set up the VPN profile?" in user
    assert gen.prompts[0][0]["role"] == "system"


def test_follow_up_is_searched_with_the_thread(index):
    gen = ScriptedGenerator()
    history = [Turn("user", "where do staff park for free?"), Turn("assistant", "In lot B [1].")]
    ans = answerer(index, gen).answer("is that behind the office?", history=history)
    assert ans.passages[0].chunk.document_id == "wiki:parking"
    roles = [m["role"] for m in gen.prompts[0]]
    assert roles[-3:] == ["user", "assistant", "user"]


def test_empty_and_huge_questions(index):
    a = answerer(index, ScriptedGenerator())
    with pytest.raises(QuestionError, match="empty"):
        a.answer("   ")
    ans = a.answer("parking lot " * 2000)
    assert any("first 2000 characters" in n for n in ans.notes)


def test_streaming_yields_growing_text_then_the_answer(index):
    from bot.answering import Answer, Delta

    events = list(answerer(index, ScriptedGenerator("Hi there! Lot B is free for staff [1].")).stream("parking lot"))
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) > 2 and all(b.startswith(a) for a, b in zip(deltas, deltas[1:], strict=False))
    assert isinstance(events[-1], Answer)


def test_chat_template_renders_gemma_turns():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>")),
                                  bos_token="<bos>")
    messages = build_messages("q?", [], few_shot=True)
    text = render(messages, tok)
    assert text.startswith("<bos><start_of_turn>user\nYou are Anvil")
    assert text.count("<start_of_turn>model\n") == 3 and text.endswith("<start_of_turn>model\n")


def test_a_model_that_says_it_could_not_find_it_is_a_not_found_answer(index):
    gen = ScriptedGenerator("Hi Sam! I couldn't find this on the Anvil, so I won't guess.\n\n"
                            "• Closest pages: Parking [1]\n\n— Anvil 🔨")
    ans = answerer(index, gen).answer("where do staff park for free?", asker="Sam")
    assert gen.prompts and not ans.found and ans.nearest  # the Slack/CLI layers then list the nearest pages
    assert ans.invalid_citations == []
    ok = answerer(index, ScriptedGenerator("Hi Sam! Staff park for free in lot B [1].")).answer("where do staff park for free?")
    assert ok.found


def test_a_question_in_another_language_is_asked_again_in_english(index):
    gen = ScriptedGenerator("should not be called")
    ans = answerer(index, gen).answer("Wie viele Urlaubstage bekomme ich pro Jahr?")
    assert not ans.found and gen.prompts == []
    assert "looks like German" in ans.text and "try asking in English" in ans.text
    assert any("answering.language" in note for note in ans.notes)  # the admin's fix, for the CLI / logs
    # English questions, short ones and a disabled check get the plain "not found"
    for ask, kw in [("quarterly revenue, Brazil subsidiary?", {}), ("wo?", {}),
                    ("Wie viele Urlaubstage bekomme ich pro Jahr?", {"language": None})]:
        plain = answerer(index, gen, **kw).answer(ask)
        assert not plain.found and "looks like" not in plain.text and plain.notes == []


def test_a_question_in_a_non_latin_script_is_recognised():
    from bot.answering.language import detect

    assert detect("年假有多少天？") == "zh" and detect("Сколько дней отпуска у меня?") == "ru"
    assert detect("how many recharge days do I get a year?") is None
    assert detect("do we get ganesh chaturthi off in pune?") is None  # names don't make it foreign
