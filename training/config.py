"""Typed settings for tone fine-tuning (`training:` in config.yaml); composed into `bot/settings.py`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class LoraSettings(BaseModel):
    r: int = Field(16, ge=1, le=256, description="LoRA rank; lower it if training runs out of memory")
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str = Field(
        "all-linear", description="module names to adapt, or all-linear (every linear layer but the output head)"
    )


class TrainingSettings(BaseModel):
    base_model: str | None = Field(None, description="model to tune; null = generation.model")
    data: list[str] = Field(default_factory=lambda: ["training/data/grounded"],
                            description="JSONL files or folders: grounded Q&A, chat examples, feedback exports")
    holdout: str | None = Field("examples/acme-wiki/questions.jsonl",
                                description="questions kept out of training (they are the evaluation set)")
    out: str = "adapters/grounded"
    base_adapter: str | None = Field(None, description="an adapter to train on top of (merged into the base "
                                     "first), e.g. adapters/grounded for an organisation's tone adapter")
    vary_identity: bool = Field(True, description="name a different made-up assistant and organisation in each "
                                "example's system prompt, so no organisation's name is learnt into the weights")
    bf16: bool | str = Field("auto", description="train in bfloat16 autocast: auto = where the CPU/GPU supports it")
    lora: LoraSettings = LoraSettings()
    epochs: float = Field(1, gt=0)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(4, ge=1)
    grad_accumulation: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=64, description="tokens; longer examples lose distractor passages, else are left out")
    max_passages: int = Field(4, ge=1, description="passages per RAG-shaped example (its own + distractors)")
    eval_fraction: float = Field(0.1, gt=0, lt=0.5)
    early_stopping_patience: int = Field(1, ge=0, description="epochs without eval-loss gain before stopping; 0 = off")
    seed: int = 13
    threads: int | None = Field(None, ge=1, description="CPU threads; null = torch's default")
