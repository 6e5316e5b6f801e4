"""VideoPose3D's temporal convolutional network (Pavllo et al., CVPR 2019).

One backbone, :class:`TemporalConvNet`, holds the weights of the official ``TemporalModel`` and
``TemporalModelOptimized1f`` (github.com/facebookresearch/VideoPose3D, common/model.py) and runs
either form on them, selected by ``mode`` (an attribute, so one set of weights can train in one
form and evaluate in another, as the official run.py does with two models):

- ``"sequence"``: dilated convolutions over the whole sequence after VideoPose3D's evaluation
  padding (edge replication of ``(rf - 1) // 2`` frames each side, or ``rf - 1`` on the left when
  causal): T frames in, T frames out, any T >= 1.
- ``"valid"``: dilated convolutions without padding, as ``TemporalModel`` on pre-padded chunks:
  T >= rf frames in, T - rf + 1 out.
- ``"window"``: strided convolutions on exactly rf frames, one frame out, as
  ``TemporalModelOptimized1f`` (the efficient training form; ~15x fewer FLOPs per window).

The backbone returns per-frame features (N, T', channels) before the official ``shrink``
convolution; the ``lift`` head (``head.fc``, the converted ``shrink``) maps them to (N, T', J, 3).

Each form runs channels-last with every convolution a GEMM and, in eval mode, each BatchNorm
folded into it (``fast_path``, default); ``fast_path = False`` runs the official Conv1d +
BatchNorm1d form, the reference the fast one is tested against (tests/test_fastpaths.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from posezoo.checkpoint import numpy_random_state_globals
from posezoo.registry import BACKBONES, CONVERTERS

MODES = ("sequence", "valid", "window")


@BACKBONES.register_module(name=["TemporalConvNet", "tcn"])
class TemporalConvNet(nn.Module):
    """Dilated / strided temporal convolutions with residual blocks, official key names.

    Args (official names): ``num_joints_in``, ``in_features`` (2 for x, y), ``num_joints_out``
    (the joints the lift head predicts; may differ from the input's, e.g. VideoPose3D's COCO-17 in,
    H36M-17 out, or 16 Stacked Hourglass joints in, 17 out), ``filter_widths``
    (odd; one expansion layer then one residual block per further width; the receptive field is
    their product), ``causal`` (look only at past frames), ``dropout``, ``channels``, ``dense``
    (undilated wide kernels, the paper's ablation; not with ``mode='window'``). posezoo's
    ``mode`` picks the form, see the module docstring.

    forward: x (N, T, num_joints_in, in_features) -> features (N, T', channels).
    """

    feature_layout = "frame"
    max_frames = None

    def __init__(self, num_joints_in: int = 17, in_features: int = 2, num_joints_out: int = 17,
                 filter_widths: tuple[int, ...] | list[int] = (3, 3, 3), causal: bool = False,
                 dropout: float = 0.25, channels: int = 1024, dense: bool = False,
                 mode: str = "sequence"):
        super().__init__()
        filter_widths = tuple(int(fw) for fw in filter_widths)
        if not filter_widths or any(fw < 1 or fw % 2 == 0 for fw in filter_widths):
            raise ValueError(f"filter_widths must be a non-empty list of odd widths, got {list(filter_widths)}")
        self.num_joints, self.num_joints_out = num_joints_in, num_joints_out
        self.dim_in = in_features
        self.in_channels = channels
        self.filter_widths = filter_widths
        self.causal = causal
        self.dense = dense
        self.mode = mode  # validated by the setter
        # Convolutions as channels-last GEMMs, BatchNorm folded in eval (not with dense: its wide
        # kernels would multiply the copied taps); False runs the reference Conv1d form.
        self.fast_path = True
        self._folded_cache: dict[int, tuple] = {}

        # Per residual block: width, dilation, half receptive field added, and the causal offsets
        # of the residual slice (dilated form: in frames; strided form: in steps).
        self.blocks: list[tuple[int, int, int, int, int]] = []
        dilation = filter_widths[0]
        half_rf = filter_widths[0] // 2
        for fw in filter_widths[1:]:
            pad = (fw - 1) * dilation // 2
            shift = fw // 2 if causal else 0
            self.blocks.append((fw, dilation, pad, shift * dilation, shift))
            half_rf += pad
            dilation *= fw
        self.receptive_field = 1 + 2 * half_rf

        # Creation order gives the official key order (expand_bn first; shrink lives in the head).
        self.drop = nn.Dropout(dropout)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.expand_conv = nn.Conv1d(num_joints_in * in_features, channels, filter_widths[0], bias=False)
        layers_conv, layers_bn = [], []
        for fw, dilation, pad, _, _ in self.blocks:
            kernel = 2 * pad + 1 if dense else fw
            layers_conv.append(nn.Conv1d(channels, channels, kernel, dilation=1 if dense else dilation, bias=False))
            layers_conv.append(nn.Conv1d(channels, channels, 1, bias=False))
            layers_bn += [nn.BatchNorm1d(channels, momentum=0.1), nn.BatchNorm1d(channels, momentum=0.1)]
        self.layers_conv = nn.ModuleList(layers_conv)
        self.layers_bn = nn.ModuleList(layers_bn)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {value!r}")
        if value == "window" and self.dense:
            raise ValueError("mode='window' (strided convolutions) needs dilated layers; dense=True has none")
        self._mode = value

    def train(self, mode: bool = True) -> TemporalConvNet:
        if mode:  # train-mode forwards change the running statistics: fold anew afterwards
            self._folded_cache.clear()
        return super().train(mode)

    def set_bn_momentum(self, momentum: float) -> None:
        """Set every BatchNorm's momentum (run.py decays it from 0.1 to 0.001 while training)."""
        for bn in (self.expand_bn, *self.layers_bn):
            bn.momentum = momentum

    def sequence_padding(self) -> tuple[int, int]:
        """Frames of edge padding (left, right) that make T input frames give T output frames."""
        half = (self.receptive_field - 1) // 2
        return (2 * half, 0) if self.causal else (half, half)

    def _check_frames(self, frames: int) -> None:
        rf = self.receptive_field
        if self.mode == "window" and frames != rf:
            raise ValueError(f"mode='window' takes exactly the receptive field of {rf} frames, got T={frames}; "
                             "use mode='sequence' for whole sequences")
        if self.mode == "valid" and frames < rf:
            raise ValueError(f"mode='valid' needs at least the receptive field of {rf} frames, got T={frames}; "
                             "use mode='sequence' to pad shorter inputs")

    def _act(self, bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        return self.drop(F.relu(bn(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[-2:] != (self.num_joints, self.dim_in):
            raise ValueError(f"expected (N, T, {self.num_joints}, {self.dim_in}), got {tuple(x.shape)}")
        n, frames = x.shape[:2]
        self._check_frames(frames)
        x = x.reshape(n, frames, -1)  # (N, T, J * F), channel = j * F + f
        if self.mode == "sequence":  # edge replication, as np.pad(..., 'edge')
            left, right = self.sequence_padding()
            x = x[:, torch.arange(-left, frames + right, device=x.device).clamp_(0, frames - 1)]
        if self.fast_path and not self.dense:
            return self._forward_gemm(x)
        return self._forward_conv(x.transpose(1, 2)).transpose(1, 2)

    def _forward_conv(self, x: torch.Tensor) -> torch.Tensor:
        """The reference form, the official module's: Conv1d + BatchNorm1d on (N, C, T)."""
        strided = self.mode == "window"
        step = self.filter_widths[0] if strided else 1
        x = self._act(self.expand_bn, F.conv1d(x, self.expand_conv.weight, stride=step))
        for i, (fw, _, pad, shift, step_shift) in enumerate(self.blocks):
            if strided:
                res = x[:, :, step_shift + fw // 2::fw]
                y = F.conv1d(x, self.layers_conv[2 * i].weight, stride=fw)
            else:
                res = x[:, :, pad + shift: x.shape[2] - pad + shift]
                y = self.layers_conv[2 * i](x)
            y = self._act(self.layers_bn[2 * i], y)
            x = res + self._act(self.layers_bn[2 * i + 1], self.layers_conv[2 * i + 1](y))
        return x

    def _forward_gemm(self, x: torch.Tensor) -> torch.Tensor:
        """The same function on (N, T, C) with every convolution one GEMM (see :meth:`_conv_bn_relu`)."""
        strided = self.mode == "window"
        x = self._conv_bn_relu(x, self.expand_conv, self.expand_bn, self.filter_widths[0] if strided else 1)
        for i, (fw, dilation, pad, shift, step_shift) in enumerate(self.blocks):
            if strided:
                res = x[:, step_shift + fw // 2::fw]
                y = self._conv_bn_relu(x, self.layers_conv[2 * i], self.layers_bn[2 * i], fw)
            else:
                res = x[:, pad + shift: x.shape[1] - pad + shift]
                y = self._conv_bn_relu(x, self.layers_conv[2 * i], self.layers_bn[2 * i], 1, dilation)
            y = self._conv_bn_relu(y, self.layers_conv[2 * i + 1], self.layers_bn[2 * i + 1], 1)
            x = y.add_(res) if _eager_no_grad() else res + y  # in place: no new (N, L, C) buffer
        return x

    def _conv_bn_relu(self, x: torch.Tensor, conv: nn.Conv1d, bn: nn.BatchNorm1d, stride: int,
                      dilation: int = 1) -> torch.Tensor:
        """dropout(relu(bn(conv(x)))) for channels-last x (N, L, C_in) -> (N, L', C_out).

        The convolution is one GEMM over the taps laid side by side (N, L', k * C_in): a view of x
        when stride == k (the strided form: windows do not overlap), else k shifted slices
        concatenated. In eval mode the BatchNorm is folded into the GEMM's weight and bias.
        """
        out_ch, in_ch, k = conv.weight.shape
        length = x.shape[1] - (k - 1) * dilation  # output frames when stride == 1
        folded = not (bn.training or bn.running_mean is None)
        if folded and _eager_no_grad() and k > 1 and stride == 1 \
                and (k - 1) * dilation <= SHIFTED_MAX_WASTE * length:
            weight, bias = self._folded(conv, bn)  # no tap copies; bias and ReLU in one pass
            return self.drop(_add_relu_(_shifted_gemm(x, weight, k, dilation), bias))
        if k == 1:
            cols = x
        elif stride == k:
            cols = x.unflatten(1, (x.shape[1] // k, k)).flatten(2)
        else:
            cols = torch.cat([x[:, j * dilation: j * dilation + length] for j in range(k)], dim=-1)
        if not folded:  # batch statistics: nothing to fold
            weight = conv.weight.transpose(1, 2).reshape(out_ch, k * in_ch)  # [o, j * C_in + i], as cols
            y = bn(F.linear(cols, weight).flatten(0, 1)).unflatten(0, cols.shape[:2])
        elif not _eager_no_grad():
            y = F.linear(cols, *self._folded(conv, bn))
        else:  # the GEMM without bias, then bias and ReLU in one pass; 2-D, as x may be a strided
            weight, bias = self._folded(conv, bn)  # slice (a 3-D matmul would copy the weight per sequence)
            return self.drop(_add_relu_(cols.flatten(0, 1) @ weight.T, bias).unflatten(0, cols.shape[:2]))
        return self.drop(F.relu(y, inplace=True))

    def _folded(self, conv: nn.Conv1d, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
        """``conv`` then eval-mode ``bn`` as one GEMM: weight (C_out, k * C_in), taps outer, and bias.

        Cached while no gradient is needed, keyed on the storage and version counter of every
        tensor it is derived from (loading weights, ``.to()``, in-place edits) and on the count of
        optimiser steps taken in the process: fused optimisers (``AdamW(fused=True)``) update the
        weights without bumping their version counters. BatchNorm's running statistics do not
        bump theirs either: they change only in train mode, and :meth:`train` empties the cache.
        Not a buffer (models are built on meta and loaded with assign).
        """
        sources = (conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
        cacheable = not (torch.is_grad_enabled() and any(t.requires_grad for t in sources)
                         or torch.compiler.is_compiling() or any(t.is_inference() for t in sources))
        if not cacheable:
            return _fold(conv.weight, bn)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in sources) + (bn.eps, _optimizer_steps[0])
        cached = self._folded_cache.get(id(conv))
        if cached is None or cached[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                cached = self._folded_cache[id(conv)] = (key, _fold(conv.weight, bn))
        return cached[1]


def _eager_no_grad() -> bool:
    """No autograd and no torch.compile / torch.export trace: the in-place and fused ops
    (``aten._add_relu_``: no ONNX conversion; ``out=`` GEMMs) are then safe."""
    return not torch.is_grad_enabled() and not torch.compiler.is_compiling()


# Optimiser steps taken in this process (a key of the folded-weights cache): fused optimisers update
# parameters in place without bumping their version counters.
_optimizer_steps = [0]


def _count_step(*_) -> None:
    _optimizer_steps[0] += 1


register_optimizer_step_post_hook(_count_step)

SHIFTED_MAX_WASTE = 0.2  # _shifted_gemm when its dropped rows are at most this fraction of the kept ones


def _shifted_gemm(x: torch.Tensor, weight: torch.Tensor, k: int, dilation: int) -> torch.Tensor:
    """The dilated convolution x (N, L, C_in) -> (N, L - (k - 1) * dilation, C_out) without copying
    the taps: the N sequences laid end to end as (N * L, C_in) rows, tap j is one GEMM on the rows
    shifted by j * dilation, accumulated in place. Rows whose taps reach into the next sequence
    are computed and dropped (a (k - 1) * dilation / L share of the work). Runs in the weight's
    dtype (``out=`` GEMMs are not autocast).
    """
    n, length, in_ch = x.shape
    rows = n * length - (k - 1) * dilation
    flat = x.reshape(n * length, in_ch).to(weight.dtype)
    out = flat.new_empty(n * length, weight.shape[0])
    acc = torch.mm(flat[:rows], weight[:, :in_ch].T, out=out[:rows])
    for j in range(1, k):  # addmm(out=) rather than addmm_: FlopCounterMode counts only the former
        torch.addmm(acc, flat[j * dilation: j * dilation + rows], weight[:, j * in_ch:(j + 1) * in_ch].T, out=acc)
    return out.view(n, length, -1)[:, :length - (k - 1) * dilation]


def _fold(weight: torch.Tensor, bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv1d weight (C_out, C_in, k) and eval-mode BatchNorm -> GEMM weight (C_out, k * C_in) and
    bias, both in the conv weight's dtype (bf16 for a model made with ``dtype=bfloat16``: an fp32 bias
    added to bf16 activations converts them to fp32 and back, 15x the cost of the add)."""
    scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
    folded = (weight * scale[:, None, None]).transpose(1, 2).reshape(weight.shape[0], -1)
    return folded.to(weight.dtype), torch.addcmul(bn.bias, bn.running_mean, scale, value=-1).to(weight.dtype)


def _add_relu_(y: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """relu(y + bias) in place: one fused pass for fp32 (``aten._add_relu_`` has no bf16 kernel)."""
    if y.dtype == torch.float32:
        return torch.ops.aten._add_relu_(y, bias)
    return y.add_(bias).relu_()


@CONVERTERS.register_module("tcn")
def convert_tcn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official VideoPose3D ``model_pos`` (TemporalModel or TemporalModelOptimized1f) -> posezoo keys.

    ``shrink`` (Conv1d, kernel 1) becomes ``head.fc`` (Linear); everything else goes under
    ``backbone.`` unchanged.
    """
    if "expand_conv.weight" not in state_dict or "shrink.weight" not in state_dict:
        sample = ", ".join(sorted(state_dict)[:5])
        raise ValueError(f"not a VideoPose3D TCN checkpoint: no 'expand_conv.weight'/'shrink.weight' keys "
                         f"(keys: {sample}, ...)")
    out = {}
    for key, value in state_dict.items():
        if key == "shrink.weight":
            out["head.fc.weight"] = value.squeeze(-1)
        elif key.startswith("shrink."):
            out[f"head.fc.{key[len('shrink.'):]}"] = value
        else:
            out[f"backbone.{key}"] = value
    return out


convert_tcn.safe_globals = numpy_random_state_globals()
