"""Readers of the motion-data files posezoo trains and evaluates on, with checks that fail early.

Every reader raises ``FileNotFoundError`` for a missing file and :class:`DataFormatError` (a
ValueError) naming what was expected for a wrong format or NaN/inf values, before any training.

Pickles: MotionBERT's ``h36m_sh_conf_cam_source_final.pkl``, pyskl's NTU pickles and the object
arrays inside VideoPose3D's npz files are Python pickles of plain containers and numpy arrays.
They are opened with :class:`NumpyUnpickler`, which resolves only numpy's array/dtype/scalar
reconstruction and refuses every other global, so a crafted file cannot run code. ``np.load`` is
always called with ``allow_pickle=False``; VideoPose3D's object arrays (which need pickle by
format) are read from the npz archive through the same restricted unpickler.
"""
from __future__ import annotations

import copyreg
import functools
import io
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posezoo.data.h36m_calibration import INTRINSICS
from posezoo.data.layouts import KEYPOINT_LAYOUTS, KeypointLayout, get_layout, normalise_joint_names
from posezoo.errors import InputError, InputNotFoundError


class DataFormatError(InputError):
    """A data file is not in the expected format (or holds NaN / inf)."""


# --- restricted unpickling ----------------------------------------------------------------------

_NUMPY_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),  # how protocol-2 pickles store bytes (array buffers); encodes text only
}


class NumpyUnpickler(pickle.Unpickler):
    """An unpickler for containers of numpy arrays: only numpy array, dtype and scalar
    reconstruction (and OrderedDict) may be loaded; any other global raises DataFormatError."""

    def find_class(self, module: str, name: str):
        if module.startswith("numpy.core"):  # pickles written by numpy < 2
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) in _NUMPY_GLOBALS or (module == "numpy" and name.endswith("DType")) or \
                (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise DataFormatError(f"refusing to unpickle {module}.{name}: only numpy arrays and plain "
                              "containers are allowed in a data pickle")


class _StandIn:
    """What a body-model pickle's chumpy or scipy.sparse object becomes: its pickled state only (no
    code of theirs is imported or run); :func:`_as_array` turns it into a numpy array."""

    def __init__(self, *args) -> None:
        self.state = None

    def __setstate__(self, state) -> None:
        self.state = state


class _Chumpy(_StandIn):
    pass


class _CSC(_StandIn):
    pass


class _CSR(_StandIn):
    pass


_STAND_INS = {("chumpy.ch", "Ch"): _Chumpy,
              **{(f"scipy.sparse.{m}", f"{fmt}_{kind}"): cls
                 for fmt, cls in (("csc", _CSC), ("csr", _CSR)) for m in (fmt, f"_{fmt}") for kind in ("matrix", "array")}}


class BodyModelUnpickler(NumpyUnpickler):
    """:class:`NumpyUnpickler` for the official SMPL ``.pkl`` files, which also hold chumpy arrays
    (``chumpy.ch.Ch``) and scipy sparse matrices (``J_regressor``): those become stand-ins keeping
    only their state (neither package is imported), turned into numpy arrays by
    :func:`load_body_model_pickle`. Any other chumpy object (a lazy expression) is refused."""

    def find_class(self, module: str, name: str):
        if (module, name) in _STAND_INS:
            return _STAND_INS[module, name]
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":  # protocol 0/1 objects; it
            return copyreg._reconstructor  # only calls what this find_class returned
        if module in ("__builtin__", "builtins") and name in ("object", "set", "frozenset"):
            return {"object": object, "set": set, "frozenset": frozenset}[name]
        if module.startswith("chumpy"):
            raise DataFormatError(f"holds a chumpy {name} expression, which posezoo does not evaluate: convert the "
                                  "file to a plain .npz (smplx's tools/clean_ch.py, then numpy.savez)")
        return super().find_class(module, name)


def _as_array(value, key: str):
    """A stand-in's numpy array: a chumpy array's ``x``, a sparse matrix densified."""
    if not isinstance(value, _StandIn):
        return value
    state = value.state if isinstance(value.state, dict) else {}
    if isinstance(value, _Chumpy):
        array = state.get("x")
        if not isinstance(array, np.ndarray):
            raise DataFormatError(f"{key}: a chumpy object without an array ('x'), cannot read it")
        return array
    data, indices, indptr = (state.get(k) for k in ("data", "indices", "indptr"))
    shape = state.get("_shape", state.get("shape"))
    if not all(isinstance(a, np.ndarray) for a in (data, indices, indptr)) or shape is None or len(shape) != 2:
        raise DataFormatError(f"{key}: a sparse matrix without data/indices/indptr/shape, cannot read it")
    dense = np.zeros(tuple(int(n) for n in shape), dtype=data.dtype)
    major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    try:
        np.add.at(dense, (indices, major) if isinstance(value, _CSC) else (major, indices), data)
    except IndexError as exc:
        raise DataFormatError(f"{key}: sparse indices outside its shape {tuple(shape)}") from exc
    return dense


def load_body_model_pickle(path) -> dict:
    """The arrays of an official SMPL ``.pkl`` read with :class:`BodyModelUnpickler`: chumpy arrays
    and scipy sparse matrices become numpy arrays; nothing from the file is run."""
    path = _check_file(path)
    with open(path, "rb") as fh:
        try:
            data = BodyModelUnpickler(fh, encoding="latin1").load()
        except DataFormatError as exc:
            raise DataFormatError(f"{path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
            raise DataFormatError(f"{path} is not a readable pickle: {exc}") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a dict of arrays, got {type(data).__name__}")
    return {key: _as_array(value, f"{path} {key}") for key, value in data.items()}


def _check_file(path) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputNotFoundError(f"data file not found: {path}")
    return path


def load_pickle(path) -> object:
    """Load a pickle of plain containers and numpy arrays with :class:`NumpyUnpickler`."""
    path = _check_file(path)
    with open(path, "rb") as fh:
        try:
            return NumpyUnpickler(fh, encoding="latin1").load()
        except DataFormatError as exc:
            raise DataFormatError(f"{path}: {exc}") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
            raise DataFormatError(f"{path} is not a readable pickle: {exc}") from None


def _npz_object(archive: zipfile.ZipFile, key: str, path: Path):
    """The object array ``key`` of an npz archive, unpickled with :class:`NumpyUnpickler`."""
    with archive.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        _, _, dtype = header(fh)
        if not dtype.hasobject:
            return np.asarray(np.load(path, allow_pickle=False)[key])
        obj = NumpyUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
    return obj.item() if isinstance(obj, np.ndarray) and obj.shape == () else obj


def _require(mapping, keys, what: str, path) -> None:
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise DataFormatError(f"{path}: {what} lacks {missing}; expected keys {list(keys)}, "
                              f"found {sorted(map(str, mapping))}")


def check_finite(array: np.ndarray, what: str) -> np.ndarray:
    """Raise DataFormatError if ``array`` holds NaN or inf (naming the first bad index)."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataFormatError(f"{what} holds {int(bad.sum())} NaN/inf values (first at index {first})")
    return array


def _open_npz(path) -> tuple[Path, np.lib.npyio.NpzFile]:
    path = _check_file(path)
    try:
        return path, np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataFormatError(f"{path} is not a numpy .npz archive: {exc}") from None


# --- the shared mocap / 2D npz files --------------------------------------------------------------

@dataclass(frozen=True)
class MotionFile:
    """One shared motion file: clips concatenated along frames.

    ``positions`` (N, J, 3): metres Y-up for 3D mocap, (x_px, y_px, confidence) for 2D detections,
    kept in the stored dtype (float16 for Bandai/CMU: cast windows to float32 before arithmetic).
    Clip i is ``positions[offsets[i]:offsets[i + 1]]``.
    """

    path: Path
    positions: np.ndarray
    offsets: np.ndarray
    clip_names: tuple[str, ...]
    layout: KeypointLayout
    fps: np.ndarray  # (n_clips,) frames per second
    labels: dict = field(default_factory=dict)  # name -> (n_clips,) str, e.g. content / style
    meta: dict = field(default_factory=dict)

    @property
    def num_clips(self) -> int:
        return len(self.clip_names)

    @property
    def is_2d(self) -> bool:
        return "pixel" in str(self.meta.get("units", ""))

    def clip(self, i: int) -> np.ndarray:
        return self.positions[self.offsets[i]:self.offsets[i + 1]]

    def clip_length(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])


def layout_of(joint_names) -> KeypointLayout:
    """The registered layout whose joints are ``joint_names`` after :func:`normalise_joint_names`."""
    names = normalise_joint_names(joint_names)
    for layout_name in KEYPOINT_LAYOUTS.names():
        layout = get_layout(layout_name)
        if layout.joints == names:
            return layout
    raise DataFormatError(f"no registered keypoint layout has the joints {list(names)}")


@functools.lru_cache(maxsize=8)
def _read_motion_npz(path: Path, mtime: float) -> MotionFile:
    path, data = _open_npz(path)
    with data:
        _require(data.files, ("positions", "clip_offsets", "clip_names", "joint_names"),
                 "a posezoo motion npz", path)
        positions, offsets = data["positions"], data["clip_offsets"].astype(np.int64)
        names = tuple(str(n) for n in data["clip_names"])
        if positions.ndim != 3 or positions.shape[-1] != 3:
            raise DataFormatError(f"{path}: positions must be (N, J, 3), got {positions.shape}")
        if len(offsets) != len(names) + 1 or offsets[0] != 0 or offsets[-1] != len(positions) \
                or np.any(np.diff(offsets) <= 0):
            raise DataFormatError(f"{path}: clip_offsets must rise from 0 to {len(positions)} with "
                                  f"{len(names) + 1} entries, got {offsets[:5]}... ({len(offsets)})")
        layout = layout_of(data["joint_names"])
        if layout.num_joints != positions.shape[1]:
            raise DataFormatError(f"{path}: {len(data['joint_names'])} joint names, positions have "
                                  f"{positions.shape[1]} joints")
        if "parents" in data.files and layout.parents is not None and \
                tuple(int(p) for p in data["parents"]) != layout.parents:
            raise DataFormatError(f"{path}: parents differ from layout {layout.name}'s")
        check_finite(positions, f"{path} positions")
        meta = json.loads(str(data["meta_json"])) if "meta_json" in data.files else {}
        default_fps = meta.get("fps") or meta.get("fps_assumed")
        if "fps" in data.files:
            fps = data["fps"].astype(np.float64)
        elif default_fps:
            fps = np.full(len(names), float(default_fps))
        else:
            raise DataFormatError(f"{path}: no fps per clip and none in meta_json")
        labels = {k[len("label_"):]: np.asarray(data[k]).astype(str)
                  for k in data.files if k.startswith("label_")}
    positions.setflags(write=False)
    return MotionFile(path, positions, offsets, names, layout, fps, labels, meta)


def read_motion_npz(path) -> MotionFile:
    """Read a shared motion npz (bandai1/2, cmu, deepmimic, treadmill_openpose): ``positions``,
    ``clip_offsets``, ``clip_names``, ``joint_names``, optional ``parents``, ``fps`` (cmu: from
    meta_json's ``fps_assumed``, 120), ``label_*`` and ``meta_json``. Cached per path and mtime."""
    path = _check_file(path).resolve()
    return _read_motion_npz(path, path.stat().st_mtime)


# --- VideoPose3D ------------------------------------------------------------------------------------

# The 17 of Human3.6M's 32 joints that VideoPose3D keeps (h36m_dataset.py remove_joints).
H36M_32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
# VideoPose3D's camera order and the image size (w, h) of each camera.
H36M_CAMERAS = tuple(INTRINSICS)
H36M_RESOLUTION = {cam: size for cam, (*_, size) in INTRINSICS.items()}


def _read_npz_objects(path, keys) -> dict:
    path = _check_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise DataFormatError(f"{path} is not a numpy .npz archive: {exc}") from None
    with archive:
        present = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
        _require(present, keys, "a VideoPose3D npz", path)
        try:
            return {k: _npz_object(archive, k, path) for k in keys}
        except DataFormatError as exc:
            raise DataFormatError(f"{path}: {exc}") from None


def _nested_arrays(tree, path, what, ndim_last: tuple[int, ...], joints: tuple[int, ...]):
    if not isinstance(tree, dict):
        raise DataFormatError(f"{path}: {what} must be a dict subject -> action -> array, got {type(tree).__name__}")
    for subject, actions in tree.items():
        if not isinstance(actions, dict):
            raise DataFormatError(f"{path}: {what}[{subject!r}] must be a dict action -> array")
        for action, value in actions.items():
            views = value if isinstance(value, dict) else dict(enumerate(value)) if isinstance(value, list) else {0: value}
            for i, arr in views.items():
                if arr is None or np.size(arr) == 0:  # a missing camera view (VideoPose3D writes None)
                    continue
                arr = np.asarray(arr)
                if arr.ndim != 3 or arr.shape[1] not in joints or arr.shape[2] not in ndim_last:
                    raise DataFormatError(f"{path}: {what}[{subject!r}][{action!r}]"
                                          f"{f'[{i!r}]' if isinstance(value, (list, dict)) else ''} must be "
                                          f"(T, {'|'.join(map(str, joints))}, {'|'.join(map(str, ndim_last))}), "
                                          f"got {arr.shape}")
                check_finite(arr, f"{path} {what}[{subject!r}][{action!r}]")
    return tree


def read_videopose3d_3d(path) -> dict[str, dict[str, np.ndarray]]:
    """VideoPose3D's ``data_3d_h36m.npz``: ``positions_3d`` = {subject: {action: (T, 32, 3)}},
    world coordinates in metres (Z up). The dict is a pickled 0-d object array (the format needs
    pickle); it is read with :class:`NumpyUnpickler`."""
    tree = _read_npz_objects(path, ("positions_3d",))["positions_3d"]
    return _nested_arrays(tree, path, "positions_3d", (3,), (32, 17))


def read_videopose3d_2d(path) -> tuple[dict[str, dict[str, list[np.ndarray]]], dict]:
    """VideoPose3D's ``data_2d_h36m_<source>.npz``: (``positions_2d``, ``metadata``).

    ``positions_2d`` = {subject: {action: [4 cameras of (T, J, 2 | 3) pixels]}} in
    :data:`H36M_CAMERAS` order, a missing view None or empty (or {camera id: view}); J = 17
    (H36M order, or COCO for ``layout_name`` 'coco') or 16 (Stacked Hourglass, MPII order);
    ``metadata`` = {['layout_name',] 'num_joints', 'keypoints_symmetry'}. Both are pickled object
    arrays, read with :class:`NumpyUnpickler`.
    """
    objs = _read_npz_objects(path, ("positions_2d", "metadata"))
    tree = _nested_arrays(objs["positions_2d"], path, "positions_2d", (2, 3), (16, 17))
    return tree, dict(objs["metadata"])


def read_h36m_cameras(path) -> dict[tuple[str, str], dict]:
    """mmpose's ``cameras.pkl``: {(subject, camera id): {R (3, 3), T (3, 1) metres, f, c (2, 1),
    k (3, 1), p (2, 1), w, h, ...}} (convention ``X_cam = (X_world - T.T) @ R``)."""
    cams = load_pickle(path)
    if not isinstance(cams, dict) or not cams:
        raise DataFormatError(f"{path}: expected a dict (subject, camera id) -> parameters")
    for key, cam in cams.items():
        _require(cam, ("R", "T", "f", "c"), f"camera {key}", path)
    return cams


# --- MotionBERT --------------------------------------------------------------------------------------

MOTIONBERT_H36M_KEYS = ("joint_2d", "confidence", "joint3d_image", "joints_2.5d_image", "2.5d_factor",
                        "camera_name", "action", "source")


def read_motionbert_h36m(path) -> dict[str, dict[str, np.ndarray]]:
    """MotionBERT's preprocessed H36M pickle (``h36m_sh_conf_cam_source_final.pkl``):
    {'train'|'test': {joint_2d (N, 17, 2) px, confidence (N, 17[, 1]), joint3d_image (N, 17, 3)
    (px, px, depth px), joints_2.5d_image (N, 17, 3) mm, 2.5d_factor (N,), camera_name (N,),
    action (N,), source (N,)}} with frames of all videos concatenated. Values become numpy arrays."""
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a dict with 'train' and 'test', got {type(data).__name__}")
    _require(data, ("train", "test"), "a MotionBERT H36M pickle", path)
    out = {}
    for split in ("train", "test"):
        part = data[split]
        _require(part, MOTIONBERT_H36M_KEYS, f"split {split!r}", path)
        part = {k: np.asarray(v) for k, v in part.items()}
        n = len(part["joint_2d"])
        bad = {k: len(part[k]) for k in MOTIONBERT_H36M_KEYS if len(part[k]) != n}
        if bad:
            raise DataFormatError(f"{path}: split {split!r} has {n} frames of joint_2d but {bad}")
        for key in ("joint_2d", "confidence", "joint3d_image", "joints_2.5d_image", "2.5d_factor"):
            check_finite(part[key], f"{path} {split}/{key}")
        if part["joint_2d"].shape[1:] not in ((17, 2), (17, 3)):
            raise DataFormatError(f"{path}: {split}/joint_2d must be (N, 17, 2), got {part['joint_2d'].shape}")
        out[split] = part
    return out


def read_motionbert_noise_params(noise_path, d2c_path) -> dict:
    """MotionBERT's 2D noise statistics (``params/synthetic_noise.pth``: mean, std, weight
    [, uniform_range]; ``params/d2c_params.pkl``: a, b, m, s) as keyword arguments of
    :func:`posezoo.data.transforms.add_noise_2d`."""
    import torch

    noise = torch.load(_check_file(noise_path), map_location="cpu", weights_only=True)
    _require(noise, ("mean", "std", "weight"), "a MotionBERT noise file", noise_path)
    d2c = load_pickle(d2c_path)
    _require(d2c, ("a", "b", "m", "s"), "a MotionBERT d2c file", d2c_path)
    out = dict(mean=np.asarray(noise["mean"], np.float64), std=np.asarray(noise["std"], np.float64),
               weight=np.asarray(noise["weight"], np.float64), d2c={k: float(d2c[k]) for k in "abms"})
    if "uniform_range" in noise:
        out["uniform_range"] = float(noise["uniform_range"])
    return out


# --- pyskl / AMASS ---------------------------------------------------------------------------------

PYSKL_KEYS = ("frame_dir", "label", "img_shape", "keypoint", "total_frames")


def read_pyskl(path) -> dict:
    """pyskl's skeleton pickle (e.g. ``ntu60_hrnet.pkl``): {'split': {name: [frame_dir, ...]},
    'annotations': [{frame_dir, label, img_shape (h, w), total_frames, keypoint (M, T, V, C),
    keypoint_score (M, T, V) for 2D}]}. Checked for keys, shapes and NaN."""
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a dict with 'split' and 'annotations'")
    _require(data, ("split", "annotations"), "a pyskl pickle", path)
    for i, ann in enumerate(data["annotations"]):
        _require(ann, PYSKL_KEYS, f"annotation {i}", path)
        kp = np.asarray(ann["keypoint"])
        if kp.ndim != 4 or kp.shape[1] != ann["total_frames"]:
            raise DataFormatError(f"{path}: annotation {i} ({ann['frame_dir']}) keypoint must be "
                                  f"(M, T={ann['total_frames']}, V, C), got {kp.shape}")
        if "keypoint_score" in ann and np.shape(ann["keypoint_score"]) != kp.shape[:3]:
            raise DataFormatError(f"{path}: annotation {i} keypoint_score must be {kp.shape[:3]}, "
                                  f"got {np.shape(ann['keypoint_score'])}")
        check_finite(kp, f"{path} annotation {i} ({ann['frame_dir']}) keypoint")
    return data


def read_amass_npz(path) -> dict[str, np.ndarray]:
    """One AMASS sequence npz: ``poses`` (T, 156 SMPL-H axis-angle), ``trans`` (T, 3) metres,
    ``betas``, ``mocap_framerate``, ``gender``. Parameters only: joint positions need the SMPL-H
    body model (licensed separately, not shipped), so posezoo does not compute them here."""
    path, data = _open_npz(path)
    with data:
        _require(data.files, ("poses", "trans", "betas", "mocap_framerate"), "an AMASS npz", path)
        out = {k: data[k] for k in data.files}
    if out["poses"].ndim != 2 or out["trans"].shape != (len(out["poses"]), 3):
        raise DataFormatError(f"{path}: poses must be (T, D) and trans (T, 3), got "
                              f"{out['poses'].shape} and {out['trans'].shape}")
    for key in ("poses", "trans", "betas"):
        check_finite(out[key], f"{path} {key}")
    out["mocap_framerate"] = float(out["mocap_framerate"])
    return out
