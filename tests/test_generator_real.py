"""The real default language model, loaded from its pip package (slow: converted once, then cached)."""

import pytest

from bot.answering.generator import GeneratorError, TransformersGenerator, resolve_model
from bot.answering.prompt import PromptPassage, build_messages
from bot.settings import load_settings


@pytest.fixture(scope="module")
def generator():
    g = load_settings().generation
    gen = TransformersGenerator(g.model, cache_dir=g.cache_dir, max_new_tokens=40)
    gen.warm_up()
    return gen


@pytest.mark.slow
def test_streams_a_continuation_of_the_prompt_format(generator):
    messages = build_messages(
        "Where do staff park in Toronto?",
        [PromptPassage("Parking", "Toronto", "Toronto staff park for free in lot B behind the office.")],
        asker="Sam", few_shot=True,
    )
    pieces = list(generator.stream(messages))
    text = "".join(pieces)
    assert len(pieces) > 3 and text.strip()
    assert "<start_of_turn>" not in text and "<end_of_turn>" not in text  # stops at the end of its turn


@pytest.mark.slow
def test_stopping_early_stops_the_model(generator):
    stream = generator.stream(build_messages("Tell me everything about parking.", [], few_shot=False))
    next(stream)
    stream.close()  # the consumer goes away (a Slack request cancelled): generation must end, not leak


@pytest.mark.slow
def test_the_refusal_gate_reads_the_models_confidence_and_can_forbid_the_refusal(generator):
    from bot.answering.generator import RefusalGate
    from bot.answering.prompt import REFUSAL_TEXT

    messages = build_messages("What colour is the office door in Lisbon?",
                              [PromptPassage("Parking", "Toronto", "Toronto staff park in lot B.")], few_shot=True)
    watch = RefusalGate(REFUSAL_TEXT)
    free = "".join(generator.stream(messages, gate=watch))
    assert 0.0 < watch.probability < 1.0 and not watch.blocked
    floor = RefusalGate(REFUSAL_TEXT, min_probability=1.0)  # never sure enough: it may not start the refusal
    forced = "".join(generator.stream(messages, gate=floor))
    assert floor.blocked and floor.probability == pytest.approx(watch.probability, abs=1e-3)
    assert not forced.lstrip().startswith("I ") and forced.strip()
    assert free != forced or not free.lstrip().startswith("I ")


def test_a_missing_model_path_names_the_setting(tmp_path):
    with pytest.raises(GeneratorError, match="generation.model"):
        resolve_model(str(tmp_path / "nope"), tmp_path)
    with pytest.raises(GeneratorError, match="generation.model"):
        resolve_model("package:not_a_real_model_pkg", tmp_path)
    with pytest.raises(GeneratorError, match="generation.model"):
        resolve_model(str(tmp_path / "m.gguf"), tmp_path)


def test_a_missing_adapter_names_the_setting(tmp_path):
    from bot.runtime import make_generator

    settings = load_settings(generation={"adapter": str(tmp_path / "no-adapter")})
    with pytest.raises(GeneratorError, match="generation.adapter"):
        make_generator(settings)
    assert make_generator(settings, adapter="none").adapter is None
