"""Faster one-token steps for the generator's linear layers (generation.decode_weights).

Decoding multiplies each weight matrix by one vector per token, and on a CPU that is memory-bound: the
time is reading the weights. Prefill (many tokens at once) keeps the model's own weights and kernels;
only the one-token path changes:
- `int8`: a per-output-channel int8 copy of each weight (weight-only quantisation; activations stay bf16),
  read by torch's int8 weight-pack kernel: half the bytes of bf16. Needs bf16 activations.
- `native`: the model's own weights through a matrix-vector product, which for bf16 on CPU reads them
  faster than the general matrix product (Gemma 3 270M's layers, one token: 11.4 vs 17.3 ms) and gives
  the same greedy answers (8/8 on the benchmark).
Imported only when the transformers generator loads (it imports torch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DecodeLinear(nn.Module):
    """An `nn.Linear` (no bias) whose one-token calls take the faster path; other calls are unchanged."""

    def __init__(self, linear: nn.Linear, kind: str):
        super().__init__()
        self.weight = linear.weight  # shared, not copied: prefill and any other caller use it as before
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.kind = kind
        if kind == "int8":
            w = linear.weight.detach().float()
            scale = w.abs().amax(dim=1).clamp(min=1e-8) / 127.0
            self.register_buffer("qweight", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
            self.register_buffer("scale", scale.to(linear.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.numel() != x.shape[-1]:  # more than one position: the model's own kernel
            return F.linear(x, self.weight)
        flat = x.reshape(1, -1)
        if self.kind == "int8":
            out = torch._weight_int8pack_mm(flat, self.qweight, self.scale)
        else:
            out = torch.mv(self.weight, flat[0]).unsqueeze(0)
        return out.view(*x.shape[:-1], self.out_features)


def swap_linears(model: nn.Module, kind: str) -> int:
    """Replace the decoder layers' bias-free linear layers in place (the output head is scored apart);
    returns how many were replaced. `kind` "native" on fp32 changes nothing (fp32 has no faster path)."""
    if kind == "native" and next(model.parameters()).dtype != torch.bfloat16:
        return 0
    if kind == "int8" and next(model.parameters()).dtype != torch.bfloat16:
        raise ValueError("generation.decode_weights: int8 needs generation.dtype bf16 (its kernel takes bf16 "
                         "activations); set decode_weights: native for fp32")
    if kind == "int8" and not hasattr(torch, "_weight_int8pack_mm"):  # a private op, present in the pinned torch
        raise ValueError(f"generation.decode_weights: int8 needs torch's int8 weight kernel, which torch "
                         f"{torch.__version__} lacks; install torch==2.13.0 or set decode_weights: native")
    body = getattr(model, "model", model)
    swapped = 0
    for module in list(body.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear and child.bias is None:
                setattr(module, name, DecodeLinear(child, kind))
                swapped += 1
    return swapped
