"""Optimiser pieces mmengine lacks on CPU: bf16 autocast and param-wise lr with norm/bias decay rules."""
from __future__ import annotations

import contextlib

from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn

from posezoo import precision
from posezoo.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """Runs forward and loss under :func:`posezoo.precision.autocast` (bf16) on the model's device, CPU
    included (mmengine's ``AmpOptimWrapper`` refuses CPU). bf16 keeps fp32's range, so no loss scaler is
    needed; parameters and optimiser state stay float32, and the tasks take their losses on fp32
    predictions. On a CPU without native bf16 it trains in fp32 (with a warning)."""

    @contextlib.contextmanager
    def optim_context(self, model: nn.Module):
        device = next(model.parameters()).device
        with super().optim_context(model), precision.autocast(precision.supported_dtype("bf16", device), device):
            yield


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ParamGroupConstructor(DefaultOptimWrapperConstructor):
    """One rule set for every parameter, unlike mmengine's ``custom_keys`` (first match wins and
    disables the decay rules):

    ``paramwise_cfg=dict(lr_mult={"backbone": 0.1}, no_decay_1d=True, no_decay_keys=("embed",))``

    - ``lr_mult``: the first key contained in a parameter's name scales its lr (e.g. a finetuned
      backbone 10x slower than a new head);
    - ``no_decay_1d``: biases and norm weights (parameters with ndim <= 1) get no weight decay;
    - ``no_decay_keys``: names containing any of these get no weight decay either.
    """

    def add_params(self, params: list, module: nn.Module, prefix: str = "", is_dcn_module=None) -> None:
        lr_mult = dict(self.paramwise_cfg.get("lr_mult", {}))
        no_decay_1d = self.paramwise_cfg.get("no_decay_1d", True)
        no_decay_keys = tuple(self.paramwise_cfg.get("no_decay_keys", ()))
        unknown = set(self.paramwise_cfg) - {"lr_mult", "no_decay_1d", "no_decay_keys"}
        if unknown:
            raise KeyError(f"ParamGroupConstructor: unknown paramwise_cfg keys {sorted(unknown)}")
        groups: dict[tuple[float, bool], list] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            mult = next((m for key, m in lr_mult.items() if key in name), 1.0)
            decay = not ((no_decay_1d and param.ndim <= 1) or any(k in name for k in no_decay_keys))
            groups.setdefault((mult, decay), []).append(param)
        for (mult, decay), group in groups.items():
            entry = {"params": group, "lr": self.base_lr * mult}
            if self.base_wd is not None:
                entry["weight_decay"] = self.base_wd if decay else 0.0
            params.append(entry)
