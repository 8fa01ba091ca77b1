"""generation.decode_weights: one-token steps on int8 copies (or a matrix-vector product), prefill unchanged."""

import pytest
import torch
from torch import nn

from bot.answering.decode import DecodeLinear, swap_linears
from bot.answering.generator import choose_decode_weights


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.Linear(64, 128, bias=False)
        self.down = nn.Linear(128, 64, bias=False)
        self.with_bias = nn.Linear(64, 64)  # left alone: the kernels have no bias term

    def forward(self, x):
        return self.with_bias(self.down(torch.relu(self.up(x))))


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(_Block(), _Block())
        self.lm_head = nn.Linear(64, 1000, bias=False)  # outside .model: scored apart, never swapped


def _model(dtype):
    torch.manual_seed(0)
    return _Model().to(dtype).eval()


@pytest.mark.parametrize("kind", ["int8", "native"])
def test_one_token_steps_take_the_fast_path_and_prefill_is_unchanged(kind):
    model = _model(torch.bfloat16)
    prompt, step = torch.randn(1, 7, 64, dtype=torch.bfloat16), torch.randn(1, 1, 64, dtype=torch.bfloat16)
    with torch.inference_mode():
        before_prompt, before_step = model.model(prompt), model.model(step)
        assert swap_linears(model, kind) == 4
        assert isinstance(model.model[0].up, DecodeLinear) and type(model.model[0].with_bias) is nn.Linear
        assert type(model.lm_head) is nn.Linear
        assert torch.equal(model.model(prompt), before_prompt)  # many positions: the model's own kernel
        after_step = model.model(step)
    assert after_step.shape == before_step.shape
    rel = ((after_step.float() - before_step.float()).norm() / before_step.float().norm()).item()
    assert rel < (0.02 if kind == "int8" else 0.01), rel  # int8 per-channel: rounding, not a different model


def test_int8_decode_needs_bf16_and_auto_picks_it_only_for_bf16_on_cpu():
    with pytest.raises(ValueError, match="decode_weights: native"):
        swap_linears(_model(torch.float32), "int8")
    assert swap_linears(_model(torch.float32), "native") == 0  # fp32 has no faster path: nothing changes
    assert choose_decode_weights("auto", "bf16", "cpu") == "int8"
    assert choose_decode_weights("auto", "fp32", "cpu") == "native"
    assert choose_decode_weights("auto", "bf16", "cuda") == "native"
    assert choose_decode_weights("native", "bf16", "cpu") == "native"

