"""posezoo models on the Hugging Face Hub.

Pull: ``posezoo.create("hf-hub:org/name[@revision]")`` (a branch, tag or commit) and
``posezoo.create("arch.tag", pretrained=True)`` download through huggingface_hub's cache (etags,
revisions, ``HF_HUB_OFFLINE`` / ``local_files_only``), check the files (the sha256 an entry records,
the content hash the Hub sent, the safetensors header) and load strictly. Only ``config.json`` and
weights are fetched: no code from a repo is ever imported or run, a config may only name registered
parts, and a pickle-only repo is refused unless ``allow_pickle=True`` (then read with
``torch.load(weights_only=True)``).

Push: :func:`push_to_hub` writes the upload folder (``model.safetensors``, ``config.json``,
``README.md``) with :func:`export_folder` and uploads it in one commit. A README already on the Hub
is kept unless ``overwrite_card=True``.
"""
from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from posezoo import __version__
from posezoo.entries import ModelEntry, Weights

CARD_NAME = "README.md"
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_HEX = re.compile(r"[0-9a-f]+")


class HubError(ValueError):
    """A Hub repo, revision or file that posezoo cannot use: missing, not cached while offline,
    corrupted, unsafe, or an upload the server refused."""


def parse_repo_spec(spec: str) -> tuple[str, str | None]:
    """``"[hf-hub:]org/name[@revision]"`` -> ``("org/name", revision or None)``."""
    repo_id, _, revision = spec.removeprefix("hf-hub:").partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"{spec!r} is not a Hub model id: expected 'hf-hub:org/name' or 'hf-hub:org/name@revision'")
    return repo_id, revision or None


def _offline(local_files_only: bool) -> bool:
    return local_files_only or constants.HF_HUB_OFFLINE


@contextlib.contextmanager
def _hub_errors(what: str, revision: str | None, local_files_only: bool, hint: str, endpoint: str | None = None):
    """Turn huggingface_hub's exceptions into one :class:`HubError` that says what to do."""
    endpoint = endpoint or constants.ENDPOINT
    try:
        yield
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        if _offline(local_files_only):
            raise HubError(f"{what} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and downloads are "
                           "off (HF_HUB_OFFLINE=1 or local_files_only=True). Download it once with network "
                           f"access: {hint}") from exc
        raise HubError(f"{what} is not cached and {endpoint} could not be reached ({exc}). Check the network "
                       f"(or HF_ENDPOINT) and retry: {hint}") from exc
    except RevisionNotFoundError as exc:
        raise HubError(f"{what}: the repository has no revision {revision!r} (a branch, tag or commit)") from exc
    except RepositoryNotFoundError as exc:
        which = f"repository or revision {revision!r}" if revision else "repository"
        raise HubError(f"{what}: {which} not found on {endpoint} (for a private or gated repo, log in with "
                       "`hf auth login` or pass token=)") from exc
    except EntryNotFoundError as exc:
        raise HubError(f"{what}: file not found in the repository ({exc})") from exc
    except HFValidationError as exc:
        raise HubError(f"{what}: {exc}") from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise HubError(f"{what}: {endpoint} answered HTTP {status}: {exc}") from exc


# Not HfApi.verify_repo_checksums: absent from huggingface_hub 1.0 (our lower bound), it asks the Hub for the
# revision's tree (no use offline) and cannot check a shipped file against the registry's sha256.
def verify_file(path: str | os.PathLike, sha256: str | None = None, what: str | None = None) -> None:
    """Refuse a downloaded file whose content does not match ``sha256`` (when given) or the content
    hash the Hub sent for it. huggingface_hub stores each file as ``blobs/<etag>``: the etag is the
    sha256 for LFS files and git's blob sha1 (of ``"blob <size>\\0" + content``) for small ones."""
    path = Path(path)
    what = what or str(path)
    blob = path.resolve()
    etag = blob.name if blob.parent.name == "blobs" and path.is_symlink() else ""
    if not (sha256 or (_HEX.fullmatch(etag) and len(etag) in (40, 64))):
        return
    digest, git_sha1 = hashlib.sha256(), hashlib.sha1()
    git_sha1.update(f"blob {blob.stat().st_size}\0".encode())
    with open(blob, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            git_sha1.update(chunk)
    fix = f" Delete {blob} from the cache or download it again with force_download=True."
    if sha256 and digest.hexdigest() != sha256.lower():
        raise HubError(f"{what}: sha256 {digest.hexdigest()} does not match the recorded {sha256}; refusing to "
                       f"load it (corrupted, truncated, or not the published file).{fix}")
    expected_etag = digest.hexdigest() if len(etag) == 64 else git_sha1.hexdigest()
    if etag and expected_etag != etag:
        raise HubError(f"{what}: the cached file does not match the content hash the Hub sent ({etag}); it is "
                       f"corrupted or truncated.{fix}")


def download_weights(entry: ModelEntry, weights: Weights, *, cache_dir: str | os.PathLike | None = None,
                     local_files_only: bool = False, force_download: bool = False,
                     token: str | bool | None = None) -> Path:
    """The local path of an entry's published weights (``arch.tag``), downloaded or from the cache,
    checked against the recorded sha256 and the Hub's content hash."""
    name = f"{entry.name}.{weights.tag}"
    if not weights.hf_hub_id:
        raise HubError(f"{name} is not published on the Hub (original: {weights.source or 'unknown'}); convert "
                       "the original with tools/convert_and_push.py --dry-run and pass checkpoint=")
    at = f"@{weights.revision}" if weights.revision else ""
    what = f"{name} (hf-hub:{weights.hf_hub_id}{at}, {weights.filename})"
    hint = f"posezoo.create({name!r}, pretrained=True), or `hf download {weights.hf_hub_id} {weights.filename}`"
    with _hub_errors(what, weights.revision, local_files_only, hint):
        path = hf_hub_download(weights.hf_hub_id, weights.filename, revision=weights.revision, cache_dir=cache_dir,
                               local_files_only=local_files_only, force_download=force_download, token=token,
                               library_name="posezoo", library_version=__version__)
    verify_file(path, weights.sha256, what)
    return Path(path)


def download_repo(repo_id: str, revision: str | None = None, *, allow_pickle: bool = False,
                  cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
                  force_download: bool = False, token: str | bool | None = None,
                  endpoint: str | None = None) -> tuple[Path, Path]:
    """Download ``config.json`` and the weights of a Hub model repo (nothing else: no code).

    Returns (snapshot folder, weights file). ``model.safetensors`` is required unless ``allow_pickle``,
    which accepts a single pickle checkpoint (``pytorch_model.bin`` first) instead.
    """
    from posezoo.factory import CONFIG_NAME, WEIGHTS_NAME

    spec = f"hf-hub:{repo_id}" + (f"@{revision}" if revision else "")
    hint = f"posezoo.create({spec!r}), or `hf download {repo_id}" + (f" --revision {revision}`" if revision else "`")
    patterns = [CONFIG_NAME, WEIGHTS_NAME, *(PICKLE_PATTERNS if allow_pickle else ())]
    with _hub_errors(spec, revision, local_files_only, hint, endpoint):
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, cache_dir=cache_dir,
                                        local_files_only=local_files_only, force_download=force_download,
                                        token=token, endpoint=endpoint, library_name="posezoo",
                                        library_version=__version__))
    if not (folder / CONFIG_NAME).is_file():
        raise HubError(f"{spec} has no {CONFIG_NAME}: not a posezoo model repository")
    if (folder / WEIGHTS_NAME).is_file():
        return folder, folder / WEIGHTS_NAME
    pickles = sorted(p for pattern in PICKLE_PATTERNS for p in folder.glob(pattern))
    if allow_pickle and pickles:
        preferred = [p for p in pickles if p.name == "pytorch_model.bin"] or pickles
        if len(preferred) > 1:
            raise HubError(f"{spec} holds several pickle checkpoints ({', '.join(p.name for p in pickles)}); "
                           "posezoo does not guess which one is the model")
        return folder, preferred[0]
    if not allow_pickle and not _offline(local_files_only):
        with contextlib.suppress(HfHubHTTPError):
            api = HfApi(endpoint=endpoint, token=token, library_name="posezoo", library_version=__version__)
            names = [f for f in api.list_repo_files(repo_id, revision=folder.name)
                     if any(fnmatch.fnmatch(f, p) for p in PICKLE_PATTERNS)]
            if names:
                raise HubError(f"{spec} has no {WEIGHTS_NAME}, only a pickle checkpoint ({', '.join(names)}). posezoo "
                               "does not open pickles from the Hub by default: unpickling can run code. Pass "
                               "allow_pickle=True to read its tensors with torch.load(weights_only=True), or ask "
                               f"the author to publish {WEIGHTS_NAME}")
    raise HubError(f"{spec} has no {WEIGHTS_NAME}" + (" in the cache" if _offline(local_files_only) else ""))


def create_from_hub(spec: str, checkpoint: str | os.PathLike | None = None, *, revision: str | None = None,
                    allow_pickle: bool = False, sha256: str | None = None, cache_dir: str | os.PathLike | None = None,
                    local_files_only: bool = False, force_download: bool = False, token: str | bool | None = None,
                    endpoint: str | None = None, **overrides: Any):
    """A model from a Hub repo ``"org/name[@revision]"`` written by :func:`push_to_hub`.

    ``config.json`` is validated like a local folder's (format version, keys, registered parts), the
    weights are checked (``sha256`` when given, the Hub's content hash, the safetensors header) and
    loaded strictly. ``model.meta["weights"]`` records ``hf-hub:org/name@<commit>``.
    """
    from posezoo.checkpoint import load_strict, read_weights
    from posezoo.factory import build, load_checkpoint, read_config, route_overrides

    repo_id, spec_revision = parse_repo_spec(spec)
    revision = revision or spec_revision
    folder, weights = download_repo(repo_id, revision, allow_pickle=allow_pickle, cache_dir=cache_dir,
                                    local_files_only=local_files_only, force_download=force_download,
                                    token=token, endpoint=endpoint)
    source = f"hf-hub:{repo_id}@{folder.name}"
    try:
        config = read_config(folder)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        raise HubError(f"{source}: {message}") from exc
    verify_file(weights, sha256, f"{source} ({weights.name})")
    model = build(route_overrides(config["model"], overrides), meta=config.get("meta"), device="meta")
    load_strict(model, read_weights(weights), source=f"{source} ({weights.name})")
    model.meta["weights"] = source
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model.eval()


def export_folder(model_or_dir, folder: str | os.PathLike, *, repo_id: str | None = None,
                  card=None, results: str | os.PathLike | dict | None = None) -> Path:
    """Write exactly what :func:`push_to_hub` uploads into ``folder``: ``model.safetensors``,
    ``config.json`` (as :func:`posezoo.save` writes them) and ``README.md``.

    Args:
        model_or_dir: a model made by posezoo, or a folder written by :func:`posezoo.save` (checked
            by loading it strictly; its files are copied unchanged, with its README.md if it has one
            and ``card`` is None, and its ``results.json`` if ``results`` is None).
        repo_id: the target repo, for the card's title and usage snippet.
        card: None (render ``model_cards/default.md``), a template path, or a ``huggingface_hub.ModelCard``.
        results: a results file of ``tools/test.py`` (path or dict) for the card's metrics.
    """
    from huggingface_hub import ModelCard

    from posezoo.cards import model_card
    from posezoo.factory import CONFIG_NAME, WEIGHTS_NAME, load_dir, save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model_or_dir, (str, os.PathLike)):
        source = Path(model_or_dir)
        model = load_dir(source)
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            shutil.copyfile(source / name, folder / name)
        if results is None and (source / "results.json").is_file():
            results = source / "results.json"
        if card is None and (source / CARD_NAME).is_file():
            shutil.copyfile(source / CARD_NAME, folder / CARD_NAME)
            return folder
    else:
        model = model_or_dir
        save(model, folder)
    if not isinstance(card, ModelCard):
        card = model_card(model, repo_id=repo_id, results=results, template=card)
    card.save(folder / CARD_NAME)
    return folder


def card_ignore_patterns(api: HfApi, repo_id: str, revision: str | None, overwrite_card: bool) -> list[str]:
    """``["README.md"]`` when the repo already has a card that must be kept, else ``[]``."""
    if overwrite_card:
        return []
    return [CARD_NAME] if api.file_exists(repo_id, CARD_NAME, revision=revision) else []


# Not ModelHubMixin.push_to_hub: it takes no endpoint and sends no library_name (timm's push is written so too).
def push_to_hub(model_or_dir, repo_id: str, revision: str | None = None, private: bool = False,
                commit_message: str = "Upload posezoo model", card=None, token: str | None = None,
                endpoint: str | None = None, overwrite_card: bool = False,
                results: str | os.PathLike | dict | None = None):
    """Upload a model (or a folder written by :func:`posezoo.save`) to the Hub in one commit.

    The repo is created if needed (``private`` then applies); ``revision`` names a branch, created
    from the default branch if missing. The folder of :func:`export_folder` is uploaded with
    ``HfApi(endpoint, token, library_name="posezoo").upload_folder``; a README already on the Hub is
    kept unless ``overwrite_card``. Returns the ``CommitInfo`` (``.commit_url``, ``.oid``).
    """
    api = HfApi(endpoint=endpoint, token=token, library_name="posezoo", library_version=__version__)
    with tempfile.TemporaryDirectory(prefix="posezoo-push-") as tmp:
        export_folder(model_or_dir, tmp, repo_id=repo_id, card=card, results=results)
        hint = "check the token's write access (HF_TOKEN or token=)"
        with _hub_errors(f"push to {repo_id}", revision, False, hint, endpoint):
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            ignore = card_ignore_patterns(api, repo_id, revision, overwrite_card)
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision,
                                     commit_message=commit_message, ignore_patterns=ignore or None)
