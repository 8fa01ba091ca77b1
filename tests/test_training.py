"""Tone fine-tuning: the dataset builder, a few real training steps on a tiny model, the tone eval's scores."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.answering.generator import GeneratorError, load_adapter
from tests.fakes.tiny_lm import make_tiny_model
from training.config import TrainingSettings
from training.data import DataError, load_chat_jsonl, prepare
from training.evaluate import ToneClassifier, fact_recall, pick_questions
from training.train import TrainingError, check_out_dir, train


def grounded_row(i: int, name: str = "Dana") -> dict:
    return {
        "id": f"g{i}", "asker": name, "topic": "hr" if i % 2 else "it",
        "question": f"how many leave days do crew in team {i} get?",
        "passages": [{"title": f"Leave policy {i}", "heading": "Allowance", "text": f"Team {i} crew get {20 + i} days."}],
        "answer": f"Hi {name}! Team {i} crew get {20 + i} days of leave [1].\n\n📘 Policy: Leave policy {i} [1]\n— Anvil 🔨",
    }


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


# -- data ----------------------------------------------------------------------------------------

def test_prepare_renders_the_answerers_prompt_with_distractors_and_renumbered_citations(tmp_path):
    write_jsonl(tmp_path / "src" / "g.jsonl", [grounded_row(i) for i in range(30)])
    report = prepare([tmp_path / "src"], tmp_path / "out", eval_fraction=0.2, seed=1)
    assert report.train + report.eval == 30 and report.eval >= 1
    rows = load_chat_jsonl(tmp_path / "out" / "train.jsonl")
    for row in rows:
        system, user, assistant = row["messages"]
        assert system["role"] == "system" and "cite" in system["content"]
        assert user["content"].startswith("Passages:\n<passage 1> ") and "\nQuestion: " in user["content"]
        passages = user["content"].split("\n\n")
        n = sum(1 for p in passages if p.removeprefix("Passages:\n").startswith("<passage "))
        assert n >= 2  # its own passage plus at least one distractor
        # the answer's [k] still points at the passage holding the fact after shuffling
        k = int(assistant["content"].split("[")[1].split("]")[0])
        fact = assistant["content"].split("get ")[1].split(" days")[0]
        block = [p for p in passages if p.removeprefix("Passages:\n").startswith(f"<passage {k}> ")][0]
        assert f"get {fact} days" in block


def test_training_shows_the_model_a_passage_as_the_answerer_does(tmp_path):
    # The answerer shows a code block's lines without their fences (`as_read`); training the same way, so that a
    # retrained adapter reads passages as it will be shown them.
    rows = [grounded_row(i) for i in range(10)]
    for row in rows:
        row["passages"][0]["text"] += "\nRun this:\n```bash\nleavectl balance\n```"
    write_jsonl(tmp_path / "src" / "g.jsonl", rows)
    prepare([tmp_path / "src"], tmp_path / "out", eval_fraction=0.2, seed=1)
    users = [r["messages"][1]["content"] for r in load_chat_jsonl(tmp_path / "out" / "train.jsonl")]
    assert users and all("Run this:\nleavectl balance" in u and "```" not in u for u in users)


def test_ranked_rows_keep_their_retrieval_order_so_the_answer_may_sit_below_the_top(tmp_path):
    def ranked(i):
        passages = [{"title": f"Other {i}-{j}", "heading": "h", "text": f"Unrelated text {j}."} for j in range(3)]
        passages.insert(2, {"title": f"Leave {i}", "heading": "h", "text": f"Team {i} crew get {20 + i} days."})
        return {"id": f"r{i}", "question": f"leave days in team {i}?", "passages": passages,
                "answer": f"Team {i} crew get {20 + i} days [3].", "ranked": True}

    write_jsonl(tmp_path / "src" / "g.jsonl", [ranked(i) for i in range(20)])
    prepare([tmp_path / "src"], tmp_path / "out", eval_fraction=0.2, seed=1, max_passages=5)
    for row in load_chat_jsonl(tmp_path / "out" / "train.jsonl"):
        user, answer = row["messages"][1]["content"], row["messages"][2]["content"]
        assert answer.endswith("days [3].")  # not renumbered: nothing was shuffled
        third = user.split("<passage 3> ")[1].split("</passage 3>")[0]
        assert "crew get" in third
        team = user.split("in team ")[1].split("?")[0]
        fifth = user.split("<passage 5> ")[1].split("</passage 5>")[0]
        assert f" {team}-" not in fifth and f"Leave {team}" not in fifth  # another row's passage, added last


def test_each_example_names_a_made_up_assistant_so_no_organisation_is_learnt(tmp_path):
    write_jsonl(tmp_path / "src" / "g.jsonl", [grounded_row(i) for i in range(30)])
    prepare([tmp_path / "src"], tmp_path / "out", eval_fraction=0.2, seed=1, bot_name="Anvil",
            organisation="Acme Robotics", vary_identities=True)
    systems = [r["messages"][0]["content"] for r in load_chat_jsonl(tmp_path / "out" / "train.jsonl")]
    assert not any("Anvil" in s or "Acme" in s for s in systems)
    assert len(set(systems)) > 5  # many identities, so the adapter reads its own from the prompt


def test_prepare_is_deterministic_deduplicates_and_drops_held_out_questions(tmp_path):
    rows = [grounded_row(i) for i in range(20)]
    write_jsonl(tmp_path / "src" / "a.jsonl", rows + [rows[3]])  # an exact duplicate
    holdout = write_jsonl(tmp_path / "questions.jsonl", [{"question": rows[5]["question"].upper(), "pages": []}])
    r1 = prepare([tmp_path / "src"], tmp_path / "o1", holdout=holdout)
    r2 = prepare([tmp_path / "src"], tmp_path / "o2", holdout=holdout)
    assert r1.dropped == {"duplicate": 1, "held_out_question": 1}
    assert r1.train + r1.eval == 19
    assert (tmp_path / "o1" / "train.jsonl").read_bytes() == (tmp_path / "o2" / "train.jsonl").read_bytes()
    assert r1.data_hash == r2.data_hash
    assert rows[5]["question"] not in (tmp_path / "o1" / "train.jsonl").read_text()


def test_schema_errors_name_the_file_and_line(tmp_path):
    src = write_jsonl(tmp_path / "bad.jsonl", [
        grounded_row(1),
        "{not json",
        {"question": "q", "passages": [{"title": "t", "heading": "", "text": "x"}], "answer": "see [4]"},
        {"messages": [{"role": "user", "content": "hi"}]},
    ])
    with pytest.raises(DataError) as e:
        prepare([src], tmp_path / "out")
    msg = str(e.value)
    assert f"{src}:2: not valid JSON" in msg
    assert f"{src}:3: the answer cites [4] but there is only 1 passage" in msg
    assert f"{src}:4: the last message must be the assistant's answer" in msg
    assert "--skip-invalid" in msg
    report = prepare([src], tmp_path / "out", skip_invalid=True)
    assert report.train + report.eval == 1 and report.dropped["invalid"] == 3


def test_empty_file_and_missing_folder_are_clear_errors(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match="empty.jsonl: the file is empty"):
        prepare([tmp_path / "empty.jsonl"], tmp_path / "out")
    with pytest.raises(DataError, match="no such file or folder"):
        prepare([tmp_path / "nope"], tmp_path / "out")


def test_too_long_examples_lose_distractors_then_are_left_out_with_a_count(tmp_path):
    long_row = grounded_row(99)
    long_row["passages"][0]["text"] += " filler" * 400
    write_jsonl(tmp_path / "src" / "g.jsonl", [grounded_row(i) for i in range(10)] + [long_row])

    def words(messages):
        return sum(len(m["content"].split()) for m in messages)

    report = prepare([tmp_path / "src"], tmp_path / "out", count_tokens=words, max_length=150)
    assert report.dropped["too_long"] == 1 and report.train + report.eval == 10
    assert "max_length=150" in report.warnings[0]


def test_feedback_exports_become_examples_only_when_voted_up(tmp_path):
    base = {"question": "where is the vpn guide?", "answer": "Hi Sam! See the VPN page [1].\n— Anvil 🔨",
            "passages": [{"title": "VPN setup", "heading": "Install", "text": "Install WireGuard.", "document_id": "w:vpn"}],
            "citations": ["w:vpn"], "user": "U1", "channel": "C1", "asked_at": "2026-11-01T10:00:00Z"}
    src = write_jsonl(tmp_path / "fb.jsonl", [{**base, "vote": "up"}, {**base, "question": "other?", "vote": "down"}])
    report = prepare([src], tmp_path / "out")
    assert report.counts == {"feedback": 1} and report.dropped["feedback_not_up"] == 1


# -- training (a tiny random Gemma-3, a few real steps) --------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    rows = [grounded_row(i, name) for i, name in zip(range(16), ["Dana", "Omar", "Lea", "Kenji"] * 4, strict=True)]
    write_jsonl(root / "data" / "g.jsonl", rows)
    from bot.answering.prompt import GEMMA_TEMPLATE, system_prompt

    corpus = [json.dumps(r, ensure_ascii=False) for r in rows] + [GEMMA_TEMPLATE, system_prompt(),
                                                                   "Passages: Question: Asker: updated"]
    model_dir = make_tiny_model(root / "model", corpus)
    cfg = TrainingSettings(data=[str(root / "data")], holdout=None, batch_size=4, epochs=1, max_length=512,
                           learning_rate=5e-2, early_stopping_patience=0, bf16=False)
    report = train(cfg, base_model=str(model_dir), out=root / "adapter", max_steps=4, keep_model=True)
    return root, model_dir, report


def _logits(model, model_dir):
    import torch
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    ids = tok("Hi Dana ! Team 3 crew get 23 days", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_training_changes_the_adapter_not_the_base_and_the_saved_adapter_reloads(tiny):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    root, model_dir, report = tiny
    adapter = root / "adapter"
    assert report.steps == 4 and report.train_losses and report.eval_losses
    assert 0 < report.trainable_params < report.total_params
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # LoRA B starts at zero: it was trained

    base_before = load_file(str(model_dir / "model.safetensors"))
    trained = report.model
    for name, param in trained.get_base_model().named_parameters():
        if "lora_" in name:
            continue
        key = name.replace(".base_layer", "")
        if key in base_before:
            assert torch.equal(param.detach().cpu(), base_before[key]), name

    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    base_logits = _logits(base, model_dir)
    reloaded = load_adapter(AutoModelForCausalLM.from_pretrained(str(model_dir)), str(adapter), str(model_dir))
    reloaded.eval()
    trained.eval()
    assert torch.allclose(_logits(reloaded, model_dir), _logits(trained, model_dir), atol=1e-5)
    assert not torch.allclose(_logits(reloaded, model_dir), base_logits, atol=1e-4)

    card = json.loads((adapter / "adapter_card.json").read_text())
    assert card["base_model"] == str(model_dir) and card["data"]["hash"] == report.data_hash
    assert card["hyperparameters"]["lora"]["r"] == 16 and card["training"]["steps"] == 4
    assert not (adapter / "checkpoints").exists()
    # the answers' token ids travel with the adapter, so a trimmed output vocabulary can still write them
    from transformers import AutoTokenizer

    ids = set(json.loads((adapter / "output_ids.json").read_text())["ids"])
    assert set(AutoTokenizer.from_pretrained(str(model_dir))("crew get", add_special_tokens=False)["input_ids"]) <= ids


def test_an_organisation_adapter_trains_on_top_of_the_general_one(tiny):
    import torch
    from transformers import AutoModelForCausalLM

    from bot.answering.generator import adapter_chain, merge_adapters

    root, model_dir, _ = tiny
    cfg = TrainingSettings(data=[str(root / "data")], holdout=None, batch_size=4, epochs=1, max_length=512,
                           learning_rate=5e-2, early_stopping_patience=0, base_adapter=str(root / "adapter"), bf16=False)
    report = train(cfg, base_model=str(model_dir), out=root / "org-tone", max_steps=2)
    card = json.loads((root / "org-tone" / "adapter_card.json").read_text())
    assert card["base_adapter"] == str(root / "adapter") and report.steps == 2
    assert adapter_chain(str(root / "org-tone")) == [str(root / "adapter"), str(root / "org-tone")]

    def logits(adapter):
        m = merge_adapters(AutoModelForCausalLM.from_pretrained(str(model_dir)), adapter, str(model_dir))
        return _logits(m.eval(), model_dir)

    general, stacked = logits(str(root / "adapter")), logits(str(root / "org-tone"))
    assert not torch.allclose(general, stacked, atol=1e-4)  # the tone adapter changed the answers
    # and it was applied on top of the general one: loading it alone onto the base gives other logits
    alone = load_adapter(AutoModelForCausalLM.from_pretrained(str(model_dir)), str(root / "org-tone"),
                         str(model_dir)).merge_and_unload()
    assert not torch.allclose(_logits(alone.eval(), model_dir), stacked, atol=1e-4)


def test_existing_output_is_refused_without_overwrite(tiny):
    root, _, _ = tiny
    with pytest.raises(TrainingError, match="--overwrite"):
        check_out_dir(root / "adapter", overwrite=False, resume=False)


def test_an_adapter_for_another_base_model_is_a_clear_error(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    root, _, _ = tiny
    other = make_tiny_model(tmp_path / "other", ["a completely different vocabulary"], seed=1)
    with pytest.raises(GeneratorError) as e:
        load_adapter(AutoModelForCausalLM.from_pretrained(str(other)), str(root / "adapter"), str(other))
    assert str(root / "model") in str(e.value) and str(other) in str(e.value)


def test_cli_prepare_reports_bad_lines(tmp_path, monkeypatch):
    from bot.cli import app

    src = write_jsonl(tmp_path / "d" / "x.jsonl", [grounded_row(1), "[1, 2]"])
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "data"), "train", "prepare",
                                      "--data", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "x.jsonl:2: expected a JSON object" in result.output.replace("\n", "")


# -- tone eval -----------------------------------------------------------------------------------

def test_fact_recall_counts_the_reference_terms_found():
    ref = "Up to 30 working days per calendar year, requested in PeopleHub."
    assert fact_recall("Hi Ana! You can work 30 working days per calendar year abroad; ask in PeopleHub [1].", ref) > 0.8
    assert fact_recall("Hi Ana! You can work abroad for two weeks [1].", ref) < 0.3


def test_tone_classifier_tells_house_style_from_plain_answers():
    house = [f"Hi {n}! Your laptop is refreshed every {k} years [1].\n\n• Ask Pit Crew [1]\n\n📘 Policy: Laptops [1]\n"
             "— Anvil 🔨" for n, k in zip(["Ana", "Bo", "Cy", "Di", "Ed", "Flo"], range(2, 8), strict=True)]
    plain = [f"The laptop refresh cycle is {k} years according to the policy document." for k in range(2, 8)]
    clf = ToneClassifier().fit(house[:5], plain[:5])
    high, low = clf.score([house[5], plain[5]])
    assert high > 0.5 > low


def test_held_out_questions_mix_answerable_and_unanswerable():
    qs = pick_questions("examples/acme-wiki/questions.jsonl", 24)
    assert len(qs) == 24 and len({q["id"] for q in qs}) == 24
    assert sum(1 for q in qs if not q["pages"]) == 4


# -- the general grounded data (training/tools/build_grounded.py) --------------------------------

def _builder():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("build_grounded", "training/tools/build_grounded.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_targets_copy_the_opening_prose_of_the_answering_passage():
    b = _builder()
    text = ("Synopsis:\n$ git stash push -m msg\nUse git stash when you want to record the current state of the "
            "working directory. The command saves your local modifications away. The following are disabled:\n"
            "- cd\n- exec")
    answer = b.answer_from(text)
    assert answer == ("Use git stash when you want to record the current state of the working directory. "
                      "The command saves your local modifications away.")
    assert b.cite(answer + " See section [5899].").endswith("away. See section [1].")


def test_the_sample_house_voice_is_taken_off_for_the_general_adapter():
    from bot.answering.prompt import REFUSAL_TEXT

    b = _builder()
    styled = "Hi Dana! Lot B is free [1].\n\n• Permits at the desk [1]\n\n📘 Policy: Parking [1]\n— Anvil 🔨"
    assert b.plain_voice(styled) == "Lot B is free [1].\n\n• Permits at the desk [1]"
    assert b.plain_voice("Hi Sam! I couldn't find this on the Anvil, so I won't guess.\n— Anvil 🔨") == REFUSAL_TEXT
    listed = "Hi Sam! I couldn't find this on the Anvil, so I won't guess.\n\n• Closest pages: Parking [1]\n— Anvil 🔨"
    assert b.plain_voice(listed) == REFUSAL_TEXT  # no organisation's wiki name, no page list to learn
