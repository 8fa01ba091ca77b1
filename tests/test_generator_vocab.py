"""The generator's own decoding loop: the same greedy tokens as transformers' generate, and a trimmed
output vocabulary that still lets an answer copy any word of its prompt (a tiny random Gemma-3, fast)."""

import pytest

from bot.answering.generator import RefusalGate, TransformersGenerator
from bot.answering.prompt import PromptPassage, build_messages, render
from tests.fakes.tiny_lm import make_tiny_model

CORPUS = ["Toronto staff park for free in lot B behind the office .",
          "Leave : crew get twenty five days a year , plus public holidays .",
          "I couldn't find this in the documents I searched .",
          "where do staff park ? how many leave days ? the answer is cited [ 1 ] and [ 2 ] ."]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(make_tiny_model(tmp_path_factory.mktemp("tiny"), CORPUS, seed=3))


def messages(question="where do staff park ?"):
    return build_messages(question, [PromptPassage("Parking", "Toronto", CORPUS[0])], few_shot=False)


def test_the_decoding_loop_gives_the_tokens_transformers_generate_gives(tiny):
    import torch

    gen = TransformersGenerator(tiny, max_new_tokens=24, dtype="fp32")
    ours = "".join(gen.stream(messages()))
    tok, model, end_ids, _ = gen.warm_up()
    ids = tok(render(messages(), tok), return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=24, do_sample=False, eos_token_id=end_ids,
                             pad_token_id=tok.pad_token_id)
    theirs = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    # the same tokens, up to where the loop detector stops a random model repeating itself
    assert len(ours.split()) >= 8 and theirs.startswith(ours)


def test_a_vocabulary_as_large_as_the_model_changes_nothing(tiny):
    full = TransformersGenerator(tiny, max_new_tokens=24, dtype="fp32")
    trimmed = TransformersGenerator(tiny, max_new_tokens=24, dtype="fp32", output_vocabulary=10_000)
    assert "".join(trimmed.stream(messages())) == "".join(full.stream(messages()))


def test_a_trimmed_vocabulary_scores_only_frequent_ids_and_the_prompts_own_words(tiny):
    gen = TransformersGenerator(tiny, max_new_tokens=40, dtype="fp32", output_vocabulary=8)
    tok = gen.warm_up()[0]
    prompt_ids = set(tok(render(messages(), tok), add_special_tokens=False)["input_ids"])
    text = "".join(gen.stream(messages()))
    out_ids = tok(text, add_special_tokens=False)["input_ids"]
    assert out_ids and all(i < 8 or i in prompt_ids for i in out_ids)
    # a word that appears only in another document cannot be produced for this prompt
    assert "holidays" not in text.split() and "holidays" not in render(messages(), tok)


@pytest.mark.parametrize("decoder", ["loop", "generate"])
def test_the_refusal_gate_works_in_both_decoders(tiny, decoder):
    gen = TransformersGenerator(tiny, max_new_tokens=8, dtype="fp32", output_vocabulary=8, decoder=decoder)
    watch = RefusalGate("I couldn't find this")
    "".join(gen.stream(messages(), gate=watch))
    assert watch.probability is not None and 0 < watch.probability < 1
    floor = RefusalGate("I couldn't find this", min_probability=1.0)
    text = "".join(gen.stream(messages(), gate=floor))
    assert floor.blocked and not text.startswith("I ")
