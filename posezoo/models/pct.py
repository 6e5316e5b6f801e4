"""PCT, Human Pose as Compositional Tokens (Geng et al., CVPR 2023): github.com/Gengzigang/PCT, MIT.

Parts (official module and hyper-parameter names, so ``state_dict`` keys map 1:1):

- :class:`PCTTokenizer` (``TOKENIZERS``: ``PCTTokenizer`` / ``pct-tokenizer``): a pose (B, K, d + 1:
  coordinates + visibility) -> MLP-Mixer encoder -> M token features (B, M, D) -> nearest entries of
  an EMA codebook (V, D) -> MLP-Mixer decoder -> the pose (B, K, d). Invisible (and, in training,
  randomly dropped) joints are replaced by a learned ``invisible_token``; image features sampled at
  the joints may guide the encoder (``guide_ratio`` of the hidden width). ``joint_dim`` (2 in the
  paper: pixels of the 256x256 crop) may be 3 for 3D poses; it is posezoo's only addition.
- :class:`PCTTokenizerHead` (``pct-tokenizer``): the tokenizer as a head on the pass-through backbone
  :class:`PCTPoseInput`; input channels are (coords, visibility[, guide features]).
- :class:`PCTClassifierHead` (``pct-classifier``): the stage-2 head, image feature map (B, C, H/32,
  W/32) -> token logits (B, M, V) -> the frozen tokenizer decodes softmax(logits) @ codebook (a soft
  mix of codebook entries, not argmax). Its pass-through backbone is :class:`PCTFeatureMapInput`.
- :class:`TokenLiftHead` (``token-lift``): the same classifier trunk on ANY backbone's features
  (joint or frame layout), decoding to 3D poses with a frozen 3D tokenizer. ``<backbone>-token-lift``
  is a backbone entry's ``backbone`` table with ``head = {type = "TokenLiftHead", tokenizer = {...}}``;
  train it with :func:`token_lift_loss` (cross entropy on the tokenizer's ids + the joint loss).

Codebook collapse (not in official PCT, which relies on EMA with Laplace smoothing only):
:class:`TokenizerRecipe` adds staged training (stage 1 encoder + decoder without quantisation;
stage 2 frozen encoder, codebook seeded from encoder outputs, new decoder) and dead-code restart
(:meth:`PCTTokenizer.restart_dead_codes`). :class:`TokenizerTrainer` runs that schedule step by step,
for :func:`train_tokenizer`'s own loop and for mmengine (``posezoo.engine``'s ``TokenizerTask``);
:func:`codebook_usage` measures perplexity and the fraction of codes used.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from posezoo.registry import BACKBONES, CONVERTERS, HEADS, TOKENIZERS

# The base configuration of configs/pct_base_tokenizer.py and pct_base_classifier.py.
ENCODER = dict(drop_rate=0.2, num_blocks=4, hidden_dim=512, token_inter_dim=64, hidden_inter_dim=512, dropout=0.0)
DECODER = dict(num_blocks=1, hidden_dim=32, token_inter_dim=64, hidden_inter_dim=64, dropout=0.0)
CODEBOOK = dict(token_num=34, token_dim=512, token_class_num=2048, ema_decay=0.9)
TOKENIZER_LOSS = dict(joint_loss_w=1.0, e_loss_w=15.0, beta=0.05)
CLS_HEAD = dict(conv_num_blocks=2, conv_channels=256, dilation=1, num_blocks=4, hidden_dim=64,
                token_inter_dim=64, hidden_inter_dim=256, dropout=0.0)
CLASSIFIER_LOSS = dict(token_loss=1.0, joint_loss=1.0, beta=0.05)
LAPLACE_EPS = 1e-5  # the official Laplace smoothing of the EMA cluster sizes


def _merge(defaults: dict, given: dict | None, what: str) -> dict:
    """``given`` over ``defaults``; ``type`` (mmpose's loss registry name) is accepted and dropped."""
    given = {k: v for k, v in (given or {}).items() if k != "type"}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise TypeError(f"{what} has no key(s) {unknown}; valid: {sorted(defaults)}")
    return {**defaults, **given}


def _deep_merge(base: dict, over: dict) -> dict:
    """``over`` on ``base``, merging nested dicts key by key."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# ----------------------------------------------------------------------------------------- blocks
class MLPBlock(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout on the last dim (keys ``ff.0``, ``ff.3``)."""

    def __init__(self, dim: int, inter_dim: int, dropout_ratio: float):
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(dim, inter_dim), nn.GELU(), nn.Dropout(dropout_ratio),
                                nn.Linear(inter_dim, dim), nn.Dropout(dropout_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class MixerLayer(nn.Module):
    """MLP-Mixer layer on (B, N, C): y = token-MLP(LN1(x)) over N; out = x + y + channel-MLP(LN2(x + y))."""

    def __init__(self, hidden_dim: int, hidden_inter_dim: int, token_dim: int, token_inter_dim: int,
                 dropout_ratio: float):
        super().__init__()
        self.layernorm1 = nn.LayerNorm(hidden_dim)
        self.MLP_token = MLPBlock(token_dim, token_inter_dim, dropout_ratio)
        self.layernorm2 = nn.LayerNorm(hidden_dim)
        self.MLP_channel = MLPBlock(hidden_dim, hidden_inter_dim, dropout_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.MLP_token(self.layernorm1(x).transpose(-1, -2)).transpose(-1, -2)
        return x + y + self.MLP_channel(self.layernorm2(x + y))


class FCBlock(nn.Module):
    """Linear -> LayerNorm -> ReLU (keys ``ff.0``, ``ff.1``)."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class BasicBlock(nn.Module):
    """ResNet basic block (3x3 conv-BN-ReLU, 3x3 conv-BN, residual, ReLU), as in the PCT head."""

    def __init__(self, channels: int, dilation: int = 1):
        super().__init__()
        conv = dict(kernel_size=3, padding=dilation, dilation=dilation, bias=False)
        self.conv1 = nn.Conv2d(channels, channels, **conv)
        self.bn1 = nn.BatchNorm2d(channels, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, **conv)
        self.bn2 = nn.BatchNorm2d(channels, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + x)


# ------------------------------------------------------------------------------------------ losses
def joint_s1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.05) -> torch.Tensor:
    """PCT's ``JointS1Loss``: smooth-L1 (0.5 d^2 / beta below beta, d - beta / 2 above) weighted by
    visibility, mean over coordinates, joints and batch.

    pred (B, K, >= d); target (B, K, d + 1) with visibility last.
    """
    d = target.shape[-1] - 1
    err = (pred[..., :d] - target[..., :d]).abs()
    loss = torch.where(err < beta, 0.5 * err ** 2 / beta, err - 0.5 * beta) * target[..., d:]
    return loss.mean(dim=-1).mean(dim=-1).mean(dim=0)


def token_lift_loss(logits: torch.Tensor, target_ids: torch.Tensor, pred_joints: torch.Tensor,
                    target_joints: torch.Tensor, token_loss_w: float = 1.0, joint_loss_w: float = 1.0,
                    beta: float = 0.05) -> dict[str, torch.Tensor]:
    """PCT's ``Classifer_loss``: cross entropy of token logits (..., M, V) against the tokenizer's ids
    (..., M) plus the smooth-L1 joint loss of the decoded pose (..., K, d) against the target
    (..., K, d + 1, visibility last). Returns ``{"token_loss", "joint_loss"}``, weighted."""
    token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target_ids.reshape(-1))
    joint = joint_s1_loss(pred_joints.reshape(-1, *pred_joints.shape[-2:]),
                          target_joints.reshape(-1, *target_joints.shape[-2:]), beta)
    return {"token_loss": token * token_loss_w, "joint_loss": joint * joint_loss_w}


# ------------------------------------------------------------------------------- codebook metrics
def codebook_usage(indices: torch.Tensor, num_codes: int) -> dict[str, float]:
    """Usage of a codebook of ``num_codes`` entries by token ids (any shape).

    Returns ``perplexity`` (exp of the entropy of the id histogram: the effective number of codes,
    1 ... num_codes) and ``fraction_used`` (share of codes hit at least once, 0 ... 1).
    """
    counts = torch.bincount(indices.reshape(-1).long().cpu(), minlength=num_codes).double()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return {"perplexity": float(entropy.exp()), "fraction_used": float((counts > 0).double().mean())}


# --------------------------------------------------------------------------------------- tokenizer
@TOKENIZERS.register_module(name=["PCTTokenizer", "pct-tokenizer"])
class PCTTokenizer(nn.Module):
    """PCT's pose tokenizer (official ``PCT_Tokenizer``, stage 'tokenizer' semantics).

    Args (the official ``tokenizer`` config's parts; partial dicts complete the base config):
        encoder: ``drop_rate`` (joint masking in training), ``num_blocks``, ``hidden_dim``,
            ``token_inter_dim``, ``hidden_inter_dim``, ``dropout``.
        decoder: ``num_blocks``, ``hidden_dim``, ``token_inter_dim``, ``hidden_inter_dim``, ``dropout``.
        codebook: ``token_num`` M, ``token_dim`` D, ``token_class_num`` V, ``ema_decay``.
        num_joints: K. guide_ratio: share of the encoder width fed by image features (0: none).
        guide_channels: width of the image features per joint. loss_keypoint: ``joint_loss_w``,
            ``e_loss_w``, ``beta``. joint_dim: coordinates per joint (2 official; 3 for 3D poses).

    ``forward(joints, joints_feature)`` = the official forward with ``train=self.training``:
    joints (B, K, joint_dim + 1) (visibility last), joints_feature (B, K, guide_channels) ->
    (recovered (B, K, joint_dim), token ids (B * M,), e_latent_loss or None). In training it masks
    joints, updates the codebook by EMA (summed over processes when torch.distributed is initialised)
    and passes the old codebook's entries straight through.
    """

    def __init__(self, encoder: dict | None = None, decoder: dict | None = None, codebook: dict | None = None,
                 num_joints: int = 17, guide_ratio: float = 0.0, guide_channels: int = 0,
                 loss_keypoint: dict | None = None, joint_dim: int = 2):
        super().__init__()
        enc, dec = _merge(ENCODER, encoder, "encoder"), _merge(DECODER, decoder, "decoder")
        book = _merge(CODEBOOK, codebook, "codebook")
        self.loss_cfg = _merge(TOKENIZER_LOSS, loss_keypoint, "loss_keypoint")
        hidden = enc["hidden_dim"]
        img_width, joint_width = int(hidden * guide_ratio), int(hidden * (1 - guide_ratio))
        if guide_ratio > 0 and (guide_channels <= 0 or img_width + joint_width != hidden):
            raise ValueError(f"guide_ratio {guide_ratio} needs guide_channels > 0 (got {guide_channels}) and "
                             f"int(H*g) + int(H*(1-g)) == H = {hidden} (got {img_width} + {joint_width})")
        self.num_joints, self.joint_dim = num_joints, joint_dim
        self.guide_ratio, self.guide_channels = guide_ratio, guide_channels if guide_ratio > 0 else 0
        self.drop_rate, self.decay = enc["drop_rate"], book["ema_decay"]
        self.token_num, self.token_dim = book["token_num"], book["token_dim"]
        self.token_class_num = book["token_class_num"]

        self.invisible_token = nn.Parameter(torch.zeros(1, 1, hidden))
        trunc_normal_(self.invisible_token, mean=0.0, std=0.02, a=-0.02, b=0.02)
        if guide_ratio > 0:
            self.start_img_embed = nn.Linear(guide_channels, img_width)
        self.start_embed = nn.Linear(joint_dim, joint_width)
        self.encoder = nn.ModuleList(
            MixerLayer(hidden, enc["hidden_inter_dim"], num_joints, enc["token_inter_dim"], enc["dropout"])
            for _ in range(enc["num_blocks"]))
        self.encoder_layer_norm = nn.LayerNorm(hidden)
        self.token_mlp = nn.Linear(num_joints, self.token_num)
        self.feature_embed = nn.Linear(hidden, self.token_dim)

        self.register_buffer("codebook", torch.randn(self.token_class_num, self.token_dim))
        self.register_buffer("ema_cluster_size", torch.zeros(self.token_class_num))
        self.register_buffer("ema_w", torch.randn(self.token_class_num, self.token_dim))

        self.decoder_token_mlp = nn.Linear(self.token_num, num_joints)
        self.decoder_start = nn.Linear(self.token_dim, dec["hidden_dim"])
        self.decoder = nn.ModuleList(
            MixerLayer(dec["hidden_dim"], dec["hidden_inter_dim"], num_joints, dec["token_inter_dim"], dec["dropout"])
            for _ in range(dec["num_blocks"]))
        self.decoder_layer_norm = nn.LayerNorm(dec["hidden_dim"])
        self.recover_embed = nn.Linear(dec["hidden_dim"], joint_dim)

    def encoder_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the encoder side (embeddings, mixer, token_mlp, feature_embed)."""
        names = ("invisible_token", "start_img_embed", "start_embed", "encoder", "encoder_layer_norm",
                 "token_mlp", "feature_embed")
        return (p for n, p in self.named_parameters() if n.split(".")[0] in names)

    def decoder_modules(self) -> list[nn.Module]:
        """The decoder side (what stage 2 of the staged recipe re-initialises)."""
        return [self.decoder_token_mlp, self.decoder_start, *self.decoder, self.decoder_layer_norm, self.recover_embed]

    def _check(self, joints: torch.Tensor, joints_feature: torch.Tensor | None) -> None:
        want = (self.num_joints, self.joint_dim + 1)
        if joints.ndim != 3 or tuple(joints.shape[1:]) != want:
            raise ValueError(f"joints must be (B, {want[0]}, {want[1]}) (coordinates + visibility), "
                             f"got {tuple(joints.shape)}")
        if self.guide_ratio > 0:
            want_feat = (joints.shape[0], self.num_joints, self.guide_channels)
            if joints_feature is None or tuple(joints_feature.shape) != want_feat:
                got = None if joints_feature is None else tuple(joints_feature.shape)
                raise ValueError(f"guide_ratio {self.guide_ratio}: joints_feature must be "
                                 f"(B, {self.num_joints}, {self.guide_channels}), got {got}")

    def encode(self, joints: torch.Tensor, joints_feature: torch.Tensor | None = None,
               keep: torch.Tensor | None = None) -> torch.Tensor:
        """Token features (B, M, D) of joints (B, K, joint_dim + 1); ``keep`` (B, K) bool further
        hides joints (the training mask)."""
        self._check(joints, joints_feature)
        visible = joints[..., -1].bool()
        if keep is not None:
            visible = visible & keep
        feat = self.start_embed(joints[..., :-1])
        if self.guide_ratio > 0:
            feat = torch.cat((feat, self.start_img_embed(joints_feature)), dim=2)
        w = visible.unsqueeze(-1).to(feat.dtype)
        feat = feat * w + self.invisible_token.expand_as(feat) * (1 - w)
        for layer in self.encoder:
            feat = layer(feat)
        feat = self.encoder_layer_norm(feat)
        feat = self.token_mlp(feat.transpose(2, 1)).transpose(2, 1)
        return self.feature_embed(feat)

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codebook entries of features (N, D): (ids (N,), squared distances (N, V))."""
        distances = (features.pow(2).sum(dim=1, keepdim=True) + self.codebook.pow(2).sum(dim=1)
                     - 2 * features @ self.codebook.t())
        return distances.argmin(dim=1), distances

    def decode(self, token_feat: torch.Tensor) -> torch.Tensor:
        """Joints (B, K, joint_dim) from token features (B, M, D)."""
        x = self.decoder_token_mlp(token_feat.transpose(2, 1)).transpose(2, 1)
        x = self.decoder_start(x)
        for layer in self.decoder:
            x = layer(x)
        return self.recover_embed(self.decoder_layer_norm(x))

    def decode_probs(self, probs: torch.Tensor) -> torch.Tensor:
        """Joints (B, K, joint_dim) from token class probabilities (B, M, V): the soft mix
        probs @ codebook, as PCT's stage 2 decodes."""
        return self.decode(probs @ self.codebook)

    def decode_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """Joints (B, K, joint_dim) from token ids (B, M)."""
        return self.decode(self.codebook[ids])

    @torch.no_grad()
    def ema_update(self, encodings: torch.Tensor, features: torch.Tensor) -> None:
        """The official EMA codebook step from one-hot encodings (N, V) and features (N, D)."""
        dw = encodings.t() @ features
        if dist.is_available() and dist.is_initialized():
            combined = torch.cat((encodings.flatten(), dw.flatten()))
            dist.all_reduce(combined)
            encodings, dw = combined[:encodings.numel()].view_as(encodings), combined[encodings.numel():].view_as(dw)
        size = self.ema_cluster_size * self.decay + (1 - self.decay) * encodings.sum(0)
        n = size.sum()
        size = (size + LAPLACE_EPS) / (n + self.token_class_num * LAPLACE_EPS) * n
        self.ema_cluster_size.copy_(size)
        self.ema_w.copy_(self.ema_w * self.decay + (1 - self.decay) * dw)
        self.codebook.copy_(self.ema_w / self.ema_cluster_size.unsqueeze(1))

    @torch.no_grad()
    def restart_dead_codes(self, features: torch.Tensor, min_size: float = 0.03,
                           generator: torch.Generator | None = None) -> int:
        """Re-seed codes whose EMA cluster size is below ``min_size`` with random encoder outputs
        ``features`` (N, D) (plus 1% of their spread as noise); re-seeded codes restart with cluster
        size max(min_size, 1). Returns how many were re-seeded."""
        dead = (self.ema_cluster_size < min_size).nonzero().flatten()
        if len(dead) == 0:
            return 0
        pick = torch.randint(len(features), (len(dead),), generator=generator, device=features.device)
        noise = torch.randn(len(dead), features.shape[1], generator=generator, device=features.device)
        seeds = features[pick] + 0.01 * features.std(0) * noise
        size = max(min_size, 1.0)
        self.codebook[dead] = seeds.to(self.codebook.dtype)
        self.ema_cluster_size[dead] = size
        self.ema_w[dead] = self.codebook[dead] * size
        return len(dead)

    def forward(self, joints: torch.Tensor, joints_feature: torch.Tensor | None = None,
                keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(recovered (B, K, joint_dim), ids (B * M,), e_latent_loss or None); see the class doc.
        ``keep`` (B, K) bool replaces the random training mask (torch.rand(B, K) > drop_rate)."""
        if self.training and keep is None:
            keep = torch.rand(joints.shape[:2], device=joints.device) > self.drop_rate
        features = self.encode(joints, joints_feature, keep).flatten(0, 1)
        ids, _ = self.quantize(features)
        encodings = F.one_hot(ids, self.token_class_num).to(features.dtype)
        quantized = encodings @ self.codebook
        e_latent_loss = None
        if self.training:
            self.ema_update(encodings, features.detach())
            e_latent_loss = F.mse_loss(quantized.detach(), features)
            quantized = features + (quantized - features).detach()
        recovered = self.decode(quantized.view(joints.shape[0], self.token_num, self.token_dim))
        return recovered, ids, e_latent_loss

    def get_loss(self, recovered: torch.Tensor, joints: torch.Tensor,
                 e_latent_loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """``Tokenizer_loss``: {"joint_loss": w * JointS1Loss, "e_latent_loss": e_loss_w * e}."""
        cfg = self.loss_cfg
        return {"joint_loss": joint_s1_loss(recovered, joints, cfg["beta"]) * cfg["joint_loss_w"],
                "e_latent_loss": e_latent_loss * cfg["e_loss_w"]}


def _fold(x: torch.Tensor, trailing: int) -> tuple[torch.Size, torch.Tensor]:
    """(leading shape, x with its leading dims folded into one batch dim)."""
    lead = x.shape[:-trailing]
    return lead, x.reshape(-1, *x.shape[-trailing:])


# ------------------------------------------------------------------------------- backbones (input)
@BACKBONES.register_module()
class PCTPoseInput(nn.Module):
    """Pass-through backbone of the tokenizer entries: poses (N, T, K, dim_in) reach the head as they
    are; a PCT tokenizer encodes single poses, so T frames are T independent poses."""

    feature_layout = "joint"

    def __init__(self, dim_in: int = 3, num_joints: int = 17):
        super().__init__()
        self.dim_in, self.num_joints, self.in_channels, self.max_frames = dim_in, num_joints, dim_in, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@BACKBONES.register_module()
class PCTFeatureMapInput(nn.Module):
    """Pass-through backbone of the classifier entry: the last feature map of an image backbone
    (SwinV2 in PCT), (N, in_channels, H/32, W/32) channels first, computed outside posezoo.

    ``num_joints`` is the number of keypoints the model predicts (what the head derives), not an
    input axis: the input check is this class's own :meth:`check_input`.
    """

    feature_layout = "map"

    def __init__(self, in_channels: int = 1024, num_joints: int = 17):
        super().__init__()
        self.in_channels = self.dim_in = in_channels
        self.num_joints, self.max_frames = num_joints, None

    def example_input(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """A (B, in_channels, 8, 8) map: PCT's 256 x 256 crop seen at stride 32."""
        return torch.randn(batch, self.in_channels, 8, 8, generator=generator)

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim < 4 or x.shape[-3] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected an image feature map (B, {self.in_channels}, H/32, W/32), got {shape}")
        if not x.is_floating_point() or not bool(torch.isfinite(x).all()):
            raise ValueError(f"expected a finite floating point feature map, got dtype {x.dtype} with NaN/inf")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


# ------------------------------------------------------------------------------------------- heads
@HEADS.register_module(name=["PCTTokenizerHead", "pct-tokenizer"])
class PCTTokenizerHead(nn.Module):
    """The PCT tokenizer as a head: features (..., K, joint_dim + 1 [+ guide_channels]) =
    (coordinates, visibility[, image features at the joint]) -> recovered joints (..., K, joint_dim).

    Arguments are :class:`PCTTokenizer`'s; ``in_channels`` (the backbone's ``dim_in``) must equal
    joint_dim + 1 + guide_channels. ``tokenize`` gives the official triple (with EMA updates in
    training); ``loss`` the official tokenizer losses of one batch.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, feature_layout: str = "joint",
                 encoder: dict | None = None, decoder: dict | None = None, codebook: dict | None = None,
                 guide_ratio: float = 0.0, guide_channels: int = 0, loss_keypoint: dict | None = None,
                 joint_dim: int = 2):
        super().__init__()
        want = joint_dim + 1 + (guide_channels if guide_ratio > 0 else 0)
        if feature_layout != "joint" or in_channels != want:
            raise ValueError(f"the PCT tokenizer head takes poses (..., K, {want}) = joint_dim {joint_dim} + "
                             f"visibility + guide_channels; the backbone gives {feature_layout!r} features with "
                             f"{in_channels} channels (pass dim_in={want})")
        self.tokenizer = PCTTokenizer(encoder, decoder, codebook, num_joints, guide_ratio, guide_channels,
                                      loss_keypoint, joint_dim)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        d = self.tokenizer.joint_dim + 1
        return x[..., :d], (x[..., d:] if self.tokenizer.guide_ratio > 0 else None)

    def tokenize(self, x: torch.Tensor, keep: torch.Tensor | None = None):
        """x (..., K, C) -> (recovered (..., K, joint_dim), ids (..., M), e_latent_loss or None)."""
        lead, x = _fold(x, 2)
        joints, guide = self._split(x)
        keep = None if keep is None else keep.reshape(-1, keep.shape[-1])
        recovered, ids, e_loss = self.tokenizer(joints, guide, keep)
        return recovered.reshape(*lead, *recovered.shape[1:]), ids.reshape(*lead, -1), e_loss

    def encode_ids(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids (..., M) of poses x (..., K, C), without masking or codebook updates."""
        lead, x = _fold(x, 2)
        features = self.tokenizer.encode(*self._split(x))
        return self.tokenizer.quantize(features.flatten(0, 1))[0].reshape(*lead, -1)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The official tokenizer losses of poses x (..., K, C) (one training step's forward)."""
        recovered, _, e_loss = self.tokenize(x)
        target = self._split(x)[0]
        return self.tokenizer.get_loss(recovered.reshape(-1, *recovered.shape[-2:]),
                                       target.reshape(-1, *target.shape[-2:]), e_loss)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokenize(x)[0]


class TokenClassifier(nn.Module):
    """The stage-2 trunk shared by PCT's classifier and ``token-lift``: a flat feature (N, in_width)
    -> FCBlock to M x hidden_dim -> ``num_blocks`` MixerLayers over the M tokens -> FCBlock ->
    logits (N, M, V); a frozen tokenizer (``self.tokenizer``) decodes softmax(logits) @ codebook."""

    def _build_trunk(self, in_width: int, cls_head: dict, tokenizer: PCTTokenizer) -> None:
        hidden, M = cls_head["hidden_dim"], tokenizer.token_num
        self.mixer_trans = FCBlock(in_width, M * hidden)
        self.mixer_head = nn.ModuleList(
            MixerLayer(hidden, cls_head["hidden_inter_dim"], M, cls_head["token_inter_dim"], cls_head["dropout"])
            for _ in range(cls_head["num_blocks"]))
        self.mixer_norm_layer = FCBlock(hidden, hidden)
        self.cls_pred_layer = nn.Linear(hidden, tokenizer.token_class_num)
        self.tokenizer = tokenizer
        self.tokenizer.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen: no masking, no codebook updates
        return self

    def _logits(self, flat: torch.Tensor) -> torch.Tensor:
        x = self.mixer_trans(flat).reshape(flat.shape[0], self.tokenizer.token_num, -1)
        for layer in self.mixer_head:
            x = layer(x)
        return self.cls_pred_layer(self.mixer_norm_layer(x))

    def decode_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Joints (N, K, joint_dim) from logits (N, M, V), by the soft codebook mix."""
        return self.tokenizer.decode_probs(logits.softmax(-1))


@HEADS.register_module(name=["PCTClassifierHead", "pct-classifier"])
class PCTClassifierHead(TokenClassifier):
    """PCT's stage-2 head (official ``PCT_Head``, stage 'classifier'), official argument names.

    forward: feature map (B, in_channels, H/32, W/32) -> joints (B, K, 2) in pixels of the
    ``image_size`` crop. :meth:`predict` adds the pose score per token (B, M, 1) (top-1 logit);
    :meth:`train_forward` and :meth:`get_loss` are the official training forward and loss.
    """

    def __init__(self, in_channels: int, image_size: tuple[int, int] | list[int] = (256, 256), num_joints: int = 17,
                 cls_head: dict | None = None, tokenizer: dict | None = None, loss_keypoint: dict | None = None,
                 feature_layout: str = "map"):
        super().__init__()
        if feature_layout != "map":
            raise ValueError(f"the PCT classifier head takes image feature maps (feature_layout 'map'), "
                             f"got a backbone with {feature_layout!r} features")
        cfg = _merge(CLS_HEAD, cls_head, "cls_head")
        tok = dict(tokenizer or {})
        tok.pop("ckpt", None)  # the official tokenizer checkpoint path: load weights with a converter
        guide_ratio = tok.pop("guide_ratio", 0.5)
        self.image_size = tuple(image_size)
        self.loss_cfg = _merge(CLASSIFIER_LOSS, loss_keypoint, "loss_keypoint")
        self.map_size = (self.image_size[0] // 32, self.image_size[1] // 32)
        channels = cfg["conv_channels"]
        self.conv_trans = nn.Sequential(nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels),
                                        nn.ReLU())
        self.conv_head = nn.ModuleList([nn.Sequential(*(BasicBlock(channels, cfg["dilation"])
                                                        for _ in range(cfg["conv_num_blocks"])))])
        self._build_trunk(channels * self.map_size[0] * self.map_size[1], cfg,
                          PCTTokenizer(num_joints=num_joints, guide_ratio=guide_ratio, guide_channels=in_channels,
                                       **tok))

    def cls_logits(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Token logits (B, M, V) of a feature map (B, C, H/32, W/32)."""
        if tuple(feature_map.shape[-2:]) != self.map_size:
            raise ValueError(f"image_size {self.image_size} needs feature maps of {self.map_size} cells, "
                             f"got {tuple(feature_map.shape[-2:])}")
        x = self.conv_head[0](self.conv_trans(feature_map))
        return self._logits(x.flatten(2).transpose(2, 1).flatten(1))

    def predict(self, feature_map: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(joints (B, K, 2), encoding scores (B, M, 1)); the pose score is their mean."""
        logits = self.cls_logits(feature_map)
        return self.decode_logits(logits), logits.topk(1, dim=2)[0]

    def train_forward(self, feature_map: torch.Tensor, joints: torch.Tensor,
                      guide_map: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The official training forward: (logits (B * M, V), joints decoded from them (B, K, 2),
        GT token ids (B * M,) of ``joints`` (B, K, 3) by the frozen encoder, guided by the feature
        map of the image-guidance backbone ``guide_map`` (B, C, H/32, W/32) when guide_ratio > 0)."""
        logits = self.cls_logits(feature_map)
        guide = extract_joints_feat(guide_map, joints, self.image_size) if self.tokenizer.guide_ratio > 0 else None
        with torch.no_grad():
            ids, _ = self.tokenizer.quantize(self.tokenizer.encode(joints, guide).flatten(0, 1))
        return logits.flatten(0, 1), self.decode_logits(logits), ids

    def get_loss(self, logits: torch.Tensor, pred_joints: torch.Tensor, target_ids: torch.Tensor,
                 joints: torch.Tensor) -> dict[str, torch.Tensor]:
        """``Classifer_loss``: {"token_loss": CE, "kpt_loss": JointS1Loss}, weighted."""
        cfg = self.loss_cfg
        losses = token_lift_loss(logits, target_ids, pred_joints, joints, cfg["token_loss"], cfg["joint_loss"],
                                 cfg["beta"])
        return {"token_loss": losses["token_loss"], "kpt_loss": losses["joint_loss"]}

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        lead, x = _fold(feature_map, 3)
        joints = self.decode_logits(self.cls_logits(x))
        return joints.reshape(*lead, *joints.shape[1:])


def extract_joints_feat(feature_map: torch.Tensor, joints: torch.Tensor, image_size) -> torch.Tensor:
    """Features (B, K, C) of the map (B, C, h, w) cell nearest each joint (B, K, >= 2) in pixels of
    a square ``image_size`` crop (official ``extract_joints_feat``: int(x / stride + 0.5), clamped)."""
    if image_size[0] != image_size[1]:
        raise ValueError(f"PCT samples guidance features for square crops only, got image_size {image_size}")
    B, _, h, w = feature_map.shape
    stride = image_size[0] / w
    x = (joints[..., 0] / stride + 0.5).int().clamp(0, w - 1)
    y = (joints[..., 1] / stride + 0.5).int().clamp(0, h - 1)
    index = (y * w + x).long()  # the official code multiplies by the map's last dim (square maps)
    return feature_map.flatten(2)[torch.arange(B, device=index.device).unsqueeze(1), :, index]


# 3D tokenizer of the token-lift head when its entry gives none: small, for normalised 3D poses.
TOKEN_LIFT_TOKENIZER = dict(
    encoder=dict(drop_rate=0.2, num_blocks=2, hidden_dim=128, token_inter_dim=64, hidden_inter_dim=128, dropout=0.0),
    decoder=dict(num_blocks=1, hidden_dim=64, token_inter_dim=64, hidden_inter_dim=64, dropout=0.0),
    codebook=dict(token_num=16, token_dim=64, token_class_num=256, ema_decay=0.9),
    joint_dim=3)


@HEADS.register_module(name=["TokenLiftHead", "token-lift"])
class TokenLiftHead(TokenClassifier):
    """Token logits per pose from any backbone's features, decoded to a 3D pose by a frozen PCT
    tokenizer: (..., T, J, C) (``joint`` layout, flattened per frame) or (..., T, C) (``frame``)
    -> (..., T, J, joint_dim).

    Args: ``tokenizer``: :class:`PCTTokenizer` arguments (default: a small 3D tokenizer; load a
    trained one into ``head.tokenizer``); ``hidden_dim``, ``num_blocks``, ``token_inter_dim``,
    ``hidden_inter_dim``, ``dropout``: the classifier trunk (official ``cls_head`` names);
    ``loss_keypoint``: ``token_loss``, ``joint_loss`` weights and ``beta`` of :func:`token_lift_loss`.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, feature_layout: str = "joint",
                 tokenizer: dict | None = None, hidden_dim: int = 64, num_blocks: int = 4, token_inter_dim: int = 64,
                 hidden_inter_dim: int = 256, dropout: float = 0.0, loss_keypoint: dict | None = None):
        super().__init__()
        if feature_layout not in ("joint", "frame"):
            raise ValueError(f"token-lift takes 'joint' or 'frame' features, got {feature_layout!r}")
        self.feature_layout = feature_layout
        self.loss_cfg = _merge(CLASSIFIER_LOSS, loss_keypoint, "loss_keypoint")
        tok = PCTTokenizer(**_deep_merge(TOKEN_LIFT_TOKENIZER, {**(tokenizer or {}), "num_joints": num_joints}))
        if tok.guide_ratio > 0:
            raise ValueError("token-lift decodes without image guidance: use a tokenizer with guide_ratio 0")
        width = in_channels * (num_joints if feature_layout == "joint" else 1)
        cls_head = dict(hidden_dim=hidden_dim, num_blocks=num_blocks, token_inter_dim=token_inter_dim,
                        hidden_inter_dim=hidden_inter_dim, dropout=dropout)
        self._build_trunk(width, cls_head, tok)

    def cls_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Token logits (..., T, M, V) of features (..., T, J, C) or (..., T, C)."""
        if self.feature_layout == "joint":
            features = features.flatten(-2)
        lead, flat = _fold(features, 1)
        logits = self._logits(flat)
        return logits.reshape(*lead, *logits.shape[1:])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.cls_logits(features)
        lead, logits = _fold(logits, 2)
        joints = self.decode_logits(logits)
        return joints.reshape(*lead, *joints.shape[1:])

    def loss(self, features: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """:func:`token_lift_loss` of features against target poses (..., T, J, joint_dim), all
        visible, or (..., T, J, joint_dim + 1) with visibility last; the ids come from the frozen
        tokenizer's encoder."""
        d = self.tokenizer.joint_dim
        if target.shape[-1] == d:
            target = torch.cat((target, torch.ones_like(target[..., :1])), dim=-1)
        logits = self.cls_logits(features)
        flat_logits = logits.reshape(-1, *logits.shape[-2:])
        flat_target = target.reshape(-1, *target.shape[-2:])
        with torch.no_grad():
            ids, _ = self.tokenizer.quantize(self.tokenizer.encode(flat_target).flatten(0, 1))
        pred = self.decode_logits(flat_logits)
        cfg = self.loss_cfg
        return token_lift_loss(flat_logits, ids, pred, flat_target, cfg["token_loss"], cfg["joint_loss"], cfg["beta"])


# -------------------------------------------------------------------------------------- converter
@CONVERTERS.register_module("pct")
def convert_pct(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official PCT weights -> posezoo keys.

    - mmcv checkpoints (``state_dict`` already unwrapped): ``keypoint_head.*`` -> ``head.*``; the
      image backbones ``backbone.*`` / ``extra_backbone.*`` (SwinV2, outside posezoo) are dropped.
      A tokenizer-stage checkpoint has only ``keypoint_head.tokenizer.*`` -> ``head.tokenizer.*``.
    - bare ``PCT_Head`` state dicts (``cls_pred_layer.*``, ``tokenizer.*``) -> ``head.*``; bare
      ``PCT_Tokenizer`` state dicts (``codebook``, ``encoder.*``, ...) -> ``head.tokenizer.*``.
    """
    if any(k.startswith("keypoint_head.") for k in state_dict):
        state_dict = {k[len("keypoint_head."):]: v for k, v in state_dict.items() if k.startswith("keypoint_head.")}
    if "tokenizer.codebook" in state_dict:
        return {f"head.{k}": v for k, v in state_dict.items()}
    if "codebook" in state_dict and "feature_embed.weight" in state_dict:
        return {f"head.tokenizer.{k}": v for k, v in state_dict.items()}
    sample = ", ".join(sorted(state_dict)[:5])
    raise ValueError(f"not a PCT checkpoint: no 'keypoint_head.tokenizer.codebook' / 'codebook' key "
                     f"(keys: {sample}, ...)")


# ---------------------------------------------------------------------- training against collapse
@dataclass
class TokenizerRecipe:
    """How :func:`train_tokenizer` trains a :class:`PCTTokenizer`.

    ``staged`` and ``dead_code_restart`` are posezoo's fixes for codebook collapse; with both off
    this is official PCT's end-to-end training (EMA codebook from N(0, 1), commitment weight
    ``e_loss_w``, joint masking). Staged: ``stage1_steps`` of encoder + decoder without quantisation,
    then the encoder is frozen, the codebook is seeded from encoder outputs on training poses and a
    re-initialised decoder is trained with the codebook for ``steps``. Dead-code restart: every
    ``restart_every`` quantised steps, codes whose EMA cluster size fell below ``restart_fraction``
    of the mean are re-seeded from the batch's encoder outputs.
    """

    staged: bool = True
    dead_code_restart: bool = True
    stage1_steps: int = 1000
    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    restart_every: int = 20
    restart_fraction: float = 0.05
    seed: int = 0

    @classmethod
    def end_to_end(cls, **kw) -> "TokenizerRecipe":
        """Official PCT's recipe: no stages, no restarts."""
        return cls(staged=False, dead_code_restart=False, **kw)


def _reset(modules: list[nn.Module]) -> None:
    for module in modules:
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.LayerNorm)):
                m.reset_parameters()


@torch.no_grad()
def _encode_all(tokenizer: PCTTokenizer, poses: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Encoder outputs (N * M, D) of poses (N, K, d + 1), no masking."""
    return torch.cat([tokenizer.encode(poses[i:i + batch_size]).flatten(0, 1)
                      for i in range(0, len(poses), batch_size)])


@torch.no_grad()
def seed_codebook(tokenizer: PCTTokenizer, features: torch.Tensor, generator: torch.Generator | None = None) -> None:
    """Set the codebook to V distinct random rows of ``features`` (N, D); EMA statistics to match."""
    pick = torch.randperm(len(features), generator=generator)[:tokenizer.token_class_num]
    if len(pick) < tokenizer.token_class_num:
        raise ValueError(f"need >= {tokenizer.token_class_num} encoder outputs to seed the codebook, "
                         f"got {len(features)}")
    tokenizer.codebook.copy_(features[pick])
    tokenizer.ema_cluster_size.fill_(1.0)
    tokenizer.ema_w.copy_(tokenizer.codebook)


class TokenizerTrainer:
    """:class:`TokenizerRecipe`'s schedule one step at a time, for any training loop: the loop of
    :func:`train_tokenizer` and mmengine's (``TokenizerTask`` + ``TokenizerStageHook`` in
    posezoo.engine).

    Per step ``losses(x)`` (stage 1: the joint loss of the unquantised autoencoder; otherwise the
    official tokenizer losses, with EMA codebook updates), then, after the optimiser step,
    ``after_step(x, step)`` (dead-code restart when due). Staged recipes call ``start_stage2(poses)``
    before step ``stage1_steps``: it freezes the encoder, re-initialises the decoder and seeds the
    codebook from encoder outputs of ``poses``; the optimiser must start afresh there. ``stage`` is
    0 (end-to-end recipe), 1 or 2. ``generator`` draws the codebook seeds and restarts.
    """

    def __init__(self, tokenizer: PCTTokenizer, recipe: TokenizerRecipe, generator: torch.Generator | None = None):
        if tokenizer.guide_ratio > 0:
            raise ValueError("the tokenizer recipes train tokenizers without image guidance (guide_ratio 0)")
        self.tokenizer, self.recipe = tokenizer, recipe
        self.generator = generator if generator is not None else torch.Generator().manual_seed(recipe.seed)
        self.stage = 1 if recipe.staged else 0

    @property
    def stage2_step(self) -> int | None:
        """The step at which stage 2 starts (None for the end-to-end recipe)."""
        return self.recipe.stage1_steps if self.recipe.staged else None

    def losses(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses of one batch of poses x (B, K, joint_dim + 1): ``{"joint_loss"}`` in stage 1,
        ``{"joint_loss", "e_latent_loss"}`` (:meth:`PCTTokenizer.get_loss`) otherwise."""
        tok = self.tokenizer
        if self.stage == 1:
            keep = torch.rand(x.shape[:2], device=x.device) > tok.drop_rate
            return {"joint_loss": joint_s1_loss(tok.decode(tok.encode(x, keep=keep)), x, tok.loss_cfg["beta"])}
        recovered, _, e_loss = tok(x)
        return tok.get_loss(recovered, x, e_loss)

    def freeze_encoder(self) -> None:
        """Enter stage 2 without touching the weights (as when resuming a stage-2 run)."""
        for p in self.tokenizer.encoder_parameters():
            p.requires_grad_(False)
        self.stage = 2

    @torch.no_grad()
    def start_stage2(self, poses: torch.Tensor) -> None:
        """Freeze the encoder, re-initialise the decoder, seed the codebook from the encoder outputs
        of poses (N, K, joint_dim + 1) (N * M >= the codebook size)."""
        self.freeze_encoder()
        _reset(self.tokenizer.decoder_modules())
        seed_codebook(self.tokenizer, _encode_all(self.tokenizer, poses), self.generator)

    def after_step(self, x: torch.Tensor, step: int) -> int:
        """After the optimiser step of ``step`` (0-based, counted over both stages) on poses x: every
        ``restart_every`` quantised steps, re-seed the dead codes from x's encoder outputs (under
        torch.distributed, process 0's). Returns how many codes were re-seeded."""
        r = self.recipe
        quantised = step - (r.stage1_steps if r.staged else 0)
        if self.stage == 1 or not r.dead_code_restart or (quantised + 1) % r.restart_every:
            return 0
        with torch.no_grad():
            features = self.tokenizer.encode(x).flatten(0, 1)
        tok = self.tokenizer
        threshold = r.restart_fraction * float(tok.ema_cluster_size.mean())
        restarted = tok.restart_dead_codes(features, threshold, self.generator)
        # The EMA statistics are all-reduced, so every process finds the same dead codes; their new
        # entries come from each process's own batch: take process 0's.
        if restarted and dist.is_available() and dist.is_initialized():
            for buffer in (tok.codebook, tok.ema_cluster_size, tok.ema_w):
                dist.broadcast(buffer, 0)
        return restarted

    def finish(self) -> None:
        """Make every parameter trainable again."""
        self.tokenizer.requires_grad_(True)


def train_tokenizer(tokenizer: PCTTokenizer, poses: torch.Tensor, recipe: TokenizerRecipe | None = None,
                    log_every: int = 0) -> list[dict[str, float]]:
    """Train ``tokenizer`` on poses (N, K, joint_dim + 1) (visibility last; no image guidance) by
    ``recipe`` (AdamW, constant lr, batches drawn with replacement); returns the logged losses
    (every ``log_every`` steps of each stage, none if 0)."""
    recipe = recipe or TokenizerRecipe()
    gen = torch.Generator().manual_seed(recipe.seed)
    trainer = TokenizerTrainer(tokenizer, recipe, gen)
    torch.manual_seed(recipe.seed)  # the training masks
    log: list[dict[str, float]] = []

    def optimiser() -> torch.optim.Optimizer:
        return torch.optim.AdamW([p for p in tokenizer.parameters() if p.requires_grad], lr=recipe.lr,
                                 weight_decay=recipe.weight_decay)

    tokenizer.train()
    opt = optimiser()
    total = recipe.steps + (recipe.stage1_steps if recipe.staged else 0)
    for step in range(total):
        if step == trainer.stage2_step:
            trainer.start_stage2(poses)
            opt = optimiser()
        x = poses[torch.randint(len(poses), (recipe.batch_size,), generator=gen)]
        losses = trainer.losses(x)
        opt.zero_grad()
        sum(losses.values()).backward()
        opt.step()
        trainer.after_step(x, step)
        stage_step = step - (trainer.stage2_step or 0) if trainer.stage == 2 else step
        if log_every and stage_step % log_every == 0:
            log.append({"stage": trainer.stage, "step": stage_step, **{k: v.item() for k, v in losses.items()}})
    trainer.finish()
    return log


@torch.no_grad()
def evaluate_tokenizer(tokenizer: PCTTokenizer, poses: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """Codebook usage (:func:`codebook_usage`) and reconstruction error of poses (N, K, d + 1) in eval
    mode: ``mpjpe`` = mean Euclidean joint error in the poses' units."""
    was_training = tokenizer.training
    tokenizer.eval()
    ids, errors = [], []
    for i in range(0, len(poses), batch_size):
        x = poses[i:i + batch_size]
        recovered, idx, _ = tokenizer(x)
        ids.append(idx)
        errors.append((recovered - x[..., :-1]).norm(dim=-1).mean(dim=-1))
    tokenizer.train(was_training)
    return {**codebook_usage(torch.cat(ids), tokenizer.token_class_num), "mpjpe": float(torch.cat(errors).mean())}
