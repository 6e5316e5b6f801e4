"""The mesh head of MotionBERT (``lib/model/model_mesh.py``: ``SMPLRegressor``): SMPL parameters per frame.

From the backbone's features (..., T, J, C) the head regresses, as the official one does,

- the pose of each frame: dropout -> ``fc1`` -> ``bn1`` -> ReLU -> ``head_pose`` + ``init_pose``, 24
  joint rotations in the 6D representation (two columns of the rotation matrix), turned into rotation
  matrices by Gram-Schmidt and into axis-angle through a quaternion;
- the shape of each sequence from the features averaged over T: dropout -> ``fc2`` -> ``bn2`` ->
  ReLU -> ``head_shape`` + ``init_shape``, 10 SMPL betas, repeated over T.

The SMPL body model itself is licensed and never shipped: official mesh checkpoints carry it under
``head.smpl.*`` and the ``dstformer`` converter drops those keys. Give your own model file
(``smpl_model_path=``) to get vertices and joints, posed with the ``smplx`` package
(``pip install posezoo[mesh]``).
"""
from __future__ import annotations

import contextlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from posezoo.data.layouts import get_layout
from posezoo.models.action import check_feature_layout, frame_features
from posezoo.registry import HEADS

NUM_SMPL_JOINTS = 24
NUM_BETAS = 10
# SMPL joints that swap places when a body is mirrored left-right (official flip_thetas_batch).
SMPL_MIRROR_PAIRS = ((1, 2), (4, 5), (7, 8), (10, 11), (13, 14), (16, 17), (18, 19), (20, 21), (22, 23))
BODY_MODEL_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D rotations (..., 6) -> rotation matrices (..., 3, 3), as the official ``rot6d_to_rotmat``.

    The 6 values are a row-major 3x2 matrix whose columns a1, a2 span the rotation; Gram-Schmidt
    (normalisation eps 1e-6) gives the columns b1, b2 and b3 = b1 x b2 of the result.
    """
    a = x.unflatten(-1, (3, 2))
    b1 = nn.functional.normalize(a[..., 0], dim=-1, eps=1e-6)
    a2 = a[..., 1]
    b2 = nn.functional.normalize(a2 - (b1 * a2).sum(dim=-1, keepdim=True) * b1, dim=-1, eps=1e-6)
    return torch.stack([b1, b2, torch.linalg.cross(b1, b2, dim=-1)], dim=-1)


def rotmat_to_quaternion(rotmat: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (w, x, y, z).

    The case analysis of the official (kornia-derived) code: which of the four candidate
    quaternions is used depends on R22 < eps and on the signs of R00 - R11 and R00 + R11.
    """
    r = rotmat
    r00, r01, r02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    r10, r11, r12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    r20, r21, r22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    traces = torch.stack([1 + r00 - r11 - r22, 1 - r00 + r11 - r22,
                          1 - r00 - r11 + r22, 1 + r00 + r11 + r22], dim=-1)
    t0, t1, t2, t3 = traces.unbind(-1)
    candidates = torch.stack([
        torch.stack([r21 - r12, t0, r10 + r01, r02 + r20], dim=-1),  # x is largest
        torch.stack([r02 - r20, r10 + r01, t1, r21 + r12], dim=-1),  # y is largest
        torch.stack([r10 - r01, r02 + r20, r21 + r12, t2], dim=-1),  # z is largest
        torch.stack([t3, r21 - r12, r02 - r20, r10 - r01], dim=-1),  # w is largest
    ], dim=-2)
    low_z = r22 < eps
    case = torch.where(low_z, torch.where(r00 > r11, 0, 1), torch.where(r00 < -r11, 2, 3))
    q = candidates.gather(-2, case[..., None, None].expand(*case.shape, 1, 4)).squeeze(-2)
    t = traces.gather(-1, case[..., None])
    return q / torch.sqrt(t) * 0.5


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Quaternions (..., 4) as (w, x, y, z) -> axis-angle (..., 3), angle in radians (official)."""
    xyz = q[..., 1:]
    sin_sq = (xyz[..., 0] * xyz[..., 0] + xyz[..., 1] * xyz[..., 1] + xyz[..., 2] * xyz[..., 2])
    sin = torch.sqrt(sin_sq)
    cos = q[..., 0]
    two_theta = 2.0 * torch.where(cos < 0.0, torch.atan2(-sin, -cos), torch.atan2(sin, cos))
    k = torch.where(sin_sq > 0.0, two_theta / sin, torch.full_like(sin, 2.0))
    return xyz * k[..., None]


def rotmat_to_axis_angle(rotmat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) through a quaternion; NaN -> 0 (official)."""
    aa = quaternion_to_axis_angle(rotmat_to_quaternion(rotmat))
    return aa.masked_fill(aa.isnan(), 0.0)


def axis_angle_to_rotmat(aa: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3), radians -> rotation matrices (..., 3, 3), through a unit quaternion as
    the official ``batch_rodrigues`` (the angle is the norm of ``aa + 1e-8``, so 0 gives identity)."""
    angle = torch.linalg.vector_norm(aa + 1e-8, dim=-1, keepdim=True)
    half = angle * 0.5
    w, (x, y, z) = torch.cos(half)[..., 0], (aa / angle * torch.sin(half)).unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1).unflatten(-1, (3, 3))


def flip_thetas(pose: torch.Tensor) -> torch.Tensor:
    """Mirror SMPL axis-angle poses (..., 72) left-right (official ``flip_thetas_batch``).

    Negates the y and z components of every joint rotation and swaps the left/right SMPL joints.
    """
    order = list(range(NUM_SMPL_JOINTS))
    for a, b in SMPL_MIRROR_PAIRS:
        order[a], order[b] = b, a
    sign = pose.new_tensor([1.0, -1.0, -1.0])
    return (pose.unflatten(-1, (NUM_SMPL_JOINTS, 3))[..., order, :] * sign).flatten(-2)


def _read_body_model(path: Path) -> dict[str, Any]:
    """The arrays of an SMPL model file: ``.npz`` (read without pickle) or the official ``.pkl``,
    read with a restricted unpickler (numpy arrays; chumpy arrays and scipy sparse matrices become
    numpy arrays without importing either; nothing in the file can run code)."""
    from posezoo.data.readers import DataFormatError, load_body_model_pickle

    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = dict(data)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataFormatError(f"{path}: not a plain-array SMPL .npz ({exc})") from exc
    else:
        arrays = load_body_model_pickle(path)
    missing = [k for k in BODY_MODEL_KEYS if k not in arrays]
    if missing:
        raise DataFormatError(f"{path} is not an SMPL model file: it lacks {missing} (expected {list(BODY_MODEL_KEYS)})")
    return arrays


class SMPLBody:
    """A user's SMPL model (and optional 17-joint H36M regressor), posed with ``smplx``.

    Deliberately not an ``nn.Module`` of the head: the licensed arrays never enter a state dict, a
    saved model or a checkpoint. The ``smplx`` layer is built on first use, once per device and dtype.
    ``__call__(betas (N, 10), pose)`` with pose rotation matrices (N, 24, 3, 3) or axis-angle (N, 72)
    returns ``verts`` (N, V, 3), ``joints`` (N, 24, 3) (the SMPL skeleton) and, with a regressor,
    ``kp_3d`` (N, 17, 3), all in mm.
    """

    def __init__(self, model_path: str | os.PathLike, j_regressor_path: str | os.PathLike | None = None):
        self.model_path = Path(model_path)
        self.j_regressor_path = Path(j_regressor_path) if j_regressor_path else None
        for p in (self.model_path, self.j_regressor_path):
            if p is not None and not p.is_file():
                raise FileNotFoundError(f"SMPL file not found: {p} (SMPL files are licensed and not shipped)")
        self._arrays: dict[str, Any] | None = None
        self._regressor: np.ndarray | None = None
        self._layers: dict[tuple, Any] = {}

    def _layer(self, device: torch.device, dtype: torch.dtype):
        key = (device, dtype)
        if key not in self._layers:
            try:
                import smplx
            except ImportError as exc:
                raise ImportError("vertices need the smplx package: pip install 'posezoo[mesh]'") from exc
            if self._arrays is None:
                self._arrays = _read_body_model(self.model_path)
                if self.j_regressor_path is not None:
                    self._regressor = np.load(self.j_regressor_path, allow_pickle=False)
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a note about 10 betas
                layer = smplx.SMPL(str(self.model_path), data_struct=smplx.utils.Struct(**self._arrays),
                                   create_betas=False, create_global_orient=False, create_body_pose=False,
                                   create_transl=False, dtype=dtype)
            regressor = None
            if self._regressor is not None:
                if self._regressor.ndim != 2 or self._regressor.shape[1] != layer.get_num_verts():
                    raise ValueError(f"{self.j_regressor_path}: J_regressor shape {self._regressor.shape} does not "
                                     f"fit a body model of {layer.get_num_verts()} vertices")
                regressor = torch.as_tensor(self._regressor, dtype=dtype, device=device)
            self._layers[key] = (layer.to(device), regressor)
        return self._layers[key]

    def __call__(self, betas: torch.Tensor, pose: torch.Tensor) -> dict[str, torch.Tensor]:
        from smplx.lbs import lbs

        layer, regressor = self._layer(betas.device, betas.dtype)
        betas, pose = betas.contiguous(), pose.contiguous()
        pose2rot = pose.shape[-1] == NUM_SMPL_JOINTS * 3
        verts, joints = lbs(betas, pose, layer.v_template, layer.shapedirs, layer.posedirs, layer.J_regressor,
                            layer.parents, layer.lbs_weights, pose2rot=pose2rot)
        out = {"verts": verts * 1000.0, "joints": joints * 1000.0}
        if regressor is not None:
            out["kp_3d"] = torch.matmul(regressor, out["verts"])
        return out


@HEADS.register_module(name=["SMPLRegressor", "mesh"])
class SMPLRegressor(nn.Module):
    """SMPL pose and shape from features (..., T, J, C) (or per-frame features (..., T, C)).

    forward returns a dict, leading dims kept:

    - ``theta`` (..., T, 82): axis-angle pose (24 joints x 3, radians) then the 10 betas;
    - ``pose6d`` (..., T, 144), ``rotmat`` (..., T, 24, 3, 3), ``betas`` (..., T, 10);
    - with ``smpl_model_path``: ``verts`` (..., T, V, 3) and ``joints`` (..., T, 24, 3) in mm, and
      with ``j_regressor_path`` (MotionBERT's ``J_regressor_h36m_correct.npy``, 17 x V) ``kp_3d``
      (..., T, 17, 3) in mm.

    ``init_pose`` (1, 144) and ``init_shape`` (1, 10) are persistent buffers. The official values
    are SPIN's ``smpl_mean_params.npz``, which posezoo does not ship: they default to the identity
    rotation (6D ``[1, 0, 0, 1, 0, 0]`` per joint) and zero betas, a loaded checkpoint brings its
    own, and ``mean_params_path`` reads a local ``smpl_mean_params.npz`` (keys ``pose``, ``shape``).
    Official configs use hidden_dim 1024 and dropout_ratio 0.1.
    """

    def __init__(self, in_channels: int, num_joints: int = 17, hidden_dim: int = 2048,
                 dropout_ratio: float = 0.0, feature_layout: str = "joint",
                 smpl_model_path: str | None = None, j_regressor_path: str | None = None,
                 mean_params_path: str | None = None):
        super().__init__()
        check_feature_layout(feature_layout)
        self.in_channels, self.num_joints, self.feature_layout = in_channels, num_joints, feature_layout
        width = in_channels * (num_joints if feature_layout == "joint" else 1)
        self.dropout = nn.Dropout(p=dropout_ratio)
        self.fc1 = nn.Linear(width, hidden_dim)
        self.fc2 = nn.Linear(width, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim, momentum=0.1)
        self.bn2 = nn.BatchNorm1d(hidden_dim, momentum=0.1)
        self.relu1 = nn.ReLU(inplace=True)
        self.relu2 = nn.ReLU(inplace=True)
        self.head_pose = nn.Linear(hidden_dim, NUM_SMPL_JOINTS * 6)
        self.head_shape = nn.Linear(hidden_dim, NUM_BETAS)
        nn.init.xavier_uniform_(self.head_pose.weight, gain=0.01)
        nn.init.xavier_uniform_(self.head_shape.weight, gain=0.01)
        init_pose, init_shape = torch.tensor([1.0, 0, 0, 1, 0, 0]).repeat(NUM_SMPL_JOINTS), torch.zeros(NUM_BETAS)
        if mean_params_path is not None:
            with np.load(mean_params_path, allow_pickle=False) as mean:
                init_pose = torch.as_tensor(mean["pose"], dtype=torch.float32)
                init_shape = torch.as_tensor(mean["shape"], dtype=torch.float32)
        self.register_buffer("init_pose", init_pose.reshape(1, NUM_SMPL_JOINTS * 6))
        self.register_buffer("init_shape", init_shape.reshape(1, NUM_BETAS))
        self.body = SMPLBody(smpl_model_path, j_regressor_path) if smpl_model_path else None

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        x = frame_features(features, self.in_channels, self.num_joints, self.feature_layout,
                           lead="...,", max_lead=None, head=type(self).__name__)
        *lead, T, D = x.shape
        x = x.reshape(-1, T, D)
        N = x.shape[0]
        feat_pose = self.relu1(self.bn1(self.fc1(self.dropout(x.reshape(N * T, D)))))  # (NT, hidden)
        feat_shape = self.relu2(self.bn2(self.fc2(self.dropout(x.mean(dim=1)))))  # (N, hidden)
        pose6d = self.head_pose(feat_pose) + self.init_pose  # (NT, 144)
        betas = (self.head_shape(feat_shape) + self.init_shape)[:, None].expand(N, T, NUM_BETAS).reshape(N * T, -1)
        rotmat = rot6d_to_rotmat(pose6d.unflatten(-1, (NUM_SMPL_JOINTS, 6)))  # (NT, 24, 3, 3)
        pose = rotmat_to_axis_angle(rotmat).flatten(-2)  # (NT, 72)
        out = {"theta": torch.cat([pose, betas], dim=-1), "pose6d": pose6d, "rotmat": rotmat, "betas": betas}
        if self.body is not None:
            out.update(self.body(betas, rotmat))
        return {k: v.reshape(*lead, T, *v.shape[1:]) for k, v in out.items()}


def mesh_flip_test(model: nn.Module, x: torch.Tensor, layout: str = "h36m-17") -> dict[str, torch.Tensor]:
    """The official mesh flip test: average the outputs on ``x`` and on its mirror image.

    The mirrored input's pose is mirrored back with :func:`flip_thetas`; ``theta`` and, when the
    head has a body model, ``verts``, ``joints`` and ``kp_3d`` (re-posed from the flipped-back
    axis-angle, as the official test does) are averaged. x: (B, T, J, 3) in ``layout`` order.
    """
    out, mirrored = model(x), model(get_layout(layout).flip(x))
    theta = torch.cat([flip_thetas(mirrored["theta"][..., :72]), mirrored["theta"][..., 72:]], dim=-1)
    flipped_back = {"theta": theta}
    if model.head.body is not None:
        body = model.head.body(theta[..., 72:].flatten(0, -2), theta[..., :72].flatten(0, -2))
        flipped_back.update({k: v.reshape(*theta.shape[:-1], *v.shape[1:]) for k, v in body.items()})
    return {k: (out[k] + v) * 0.5 for k, v in flipped_back.items()}
