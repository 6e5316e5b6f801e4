"""Hub push and pull: the upload folder and its card (no server), pulls from a real Hub-compatible
HTTP server (olah serving local git repos; tests/hub_server.py) with the real huggingface_hub client,
and an opt-in upload to a real Hub (POSEZOO_HUB_ENDPOINT + HF_TOKEN)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants

import posezoo
from posezoo import entries
from posezoo.cards import load_results
from posezoo.checkpoint import CheckpointError
from posezoo.cli import main as cli_main
from posezoo.factory import read_config
from posezoo.hub import (
    HubError,
    card_ignore_patterns,
    export_folder,
    parse_repo_spec,
    push_to_hub,
)
from tests.hub_server import hub, olah_server, start_olah  # noqa: F401  (fixtures)

TINY = dict(depth=1, dim_feat=16, dim_rep=16, num_heads=2, maxlen=9)
RESULTS = {"model": "dstformer-lift", "command": "tools/test.py dstformer-lift --checkpoint best",
           "metrics": {"mpjpe": {"value": 37.2, "unit": "mm", "protocol": "h36m-p1", "dataset": "h36m"},
                       "pmpjpe": {"value": 31.6, "unit": "mm", "protocol": "h36m-p2", "dataset": "h36m"}}}
X = torch.randn(2, 9, 17, 3, generator=torch.Generator().manual_seed(0))


def tiny_model(seed: int = 0):
    torch.manual_seed(seed)
    return posezoo.create("dstformer-lift", **TINY)


def same_outputs(a, b) -> bool:
    with torch.no_grad():
        return torch.equal(a(X), b(X))


@pytest.fixture
def tiny_entry(tmp_path, monkeypatch):
    """An extra registry file with a tiny entry whose published weights live at posezoo/tiny-lift.test."""
    folder = tmp_path / "registry"
    folder.mkdir()
    real = entries.entry_dirs()
    monkeypatch.setattr(entries, "entry_dirs", lambda: [*real, folder])
    entries.all_entries.cache_clear()

    def write(sha256: str | None = None, license: str = "CC-BY-NC-4.0", key: str = "license") -> None:
        backbone = ", ".join(f"{k} = {v}" for k, v in {**TINY, "dim_in": 3, "num_joints": 17}.items())
        (folder / "tiny.toml").write_text(
            f'["tiny-lift"]\nfamily = "dstformer"\nbackbone = {{ type = "DSTformer", {backbone} }}\n'
            'head = { type = "LiftHead", dim_out = 3 }\nlayout = "h36m-17"\nmax_frames = 9\nparams = 1\n'
            f'{key} = "Apache-2.0"\ncitation = "Tiny et al."\n'
            'input = { normalisation = "motionbert-screen" }\n'
            'output = { units = "normalised", frame = "camera" }\n'
            f'["tiny-lift".weights.test]\nhf_hub_id = "posezoo/tiny-lift.test"\n{key} = "{license}"\n'
            'source = "tiny release v0"\ndescription = "tiny weights for tests"\ndatasets = ["amass"]\n'
            + (f'sha256 = "{sha256}"\n' if sha256 else ""))
        entries.all_entries.cache_clear()

    yield write
    entries.all_entries.cache_clear()


# --- the upload folder and its card (no server) -------------------------------------------------

def test_parse_repo_spec():
    assert parse_repo_spec("hf-hub:org/name") == ("org/name", None)
    assert parse_repo_spec("org/name@v1.0") == ("org/name", "v1.0")
    with pytest.raises(HubError, match="not a Hub model id"):
        parse_repo_spec("hf-hub:name-only")


def test_export_folder_is_a_loadable_model_with_its_card(tmp_path):
    model = tiny_model()
    out = export_folder(model, tmp_path / "up", repo_id="posezoo/tiny", results=RESULTS)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert read_config(out)["model"] == model.config
    assert same_outputs(posezoo.create(str(out)), model)

    card = ModelCard.load(out / "README.md")  # huggingface_hub's own parser
    data = card.data.to_dict()
    assert data["library_name"] == "posezoo" and data["license"] == "apache-2.0"
    assert data["pipeline_tag"] == "graph-ml"  # nearest Hub task for skeleton in, joints out (posezoo.cards.TASKS)
    assert {"posezoo", "3d-human-pose-estimation", "dstformer"} <= set(data["tags"])
    assert "datasets" not in data  # Hub dataset ids only: Human3.6M has none
    assert "posezoo" not in data  # no custom top-level key: the contract is in the body and config.json
    metrics = {r.metric_type: r for r in card.data.eval_results}
    assert metrics["mpjpe"].metric_value == 37.2 and metrics["mpjpe"].metric_config == "h36m-p1"
    assert metrics["pmpjpe"].metric_config == "h36m-p2"
    assert metrics["mpjpe"].dataset_type == "h36m" and metrics["mpjpe"].dataset_name == "Human3.6M"
    assert metrics["mpjpe"].task_type == "graph-ml"
    params = sum(p.numel() for p in model.parameters())
    assert f"| Parameters | {params:,} |" in card.text and "GMACs per clip of shape (1, 9, 17, 3)" in card.text
    assert "`h36m-17` (17 joints, in this order): 0 pelvis," in card.text and "**Max frames** T: 9." in card.text
    config = json.loads((out / "config.json").read_text())
    assert config["architecture"] == "dstformer-lift"  # the name it is rebuilt from, as timm's config.json
    assert config["meta"]["layout"] == "h36m-17" and config["meta"]["input"]["normalisation"] == "motionbert-screen"
    assert "| mpjpe | 37.2 | mm | `h36m-p1` | h36m |" in card.text
    assert 'posezoo.create("hf-hub:posezoo/tiny")' in card.text
    assert "MotionBERT: A Unified Perspective" in card.text


def test_results_need_value_unit_and_protocol(tmp_path):
    bad = {"metrics": {"mpjpe": {"value": 37.2, "unit": "mm", "protocol": ""}}}
    with pytest.raises(ValueError, match="lacks \\['protocol'\\]"):
        load_results(bad)
    with pytest.raises(ValueError, match="numeric 'value'"):
        load_results({"metrics": {"mpjpe": {"value": "37.2 mm", "unit": "mm", "protocol": "h36m-p1"}}})
    with pytest.raises(ValueError, match="no 'metrics'"):
        export_folder(tiny_model(), tmp_path / "up", results={"model": "x"})


def test_export_from_saved_folder_copies_files_and_results(tmp_path):
    model = tiny_model()
    saved = posezoo.save(model, tmp_path / "saved")
    (saved / "results.json").write_text(json.dumps(RESULTS))
    out = export_folder(saved, tmp_path / "up")
    for name in ("model.safetensors", "config.json"):
        assert (out / name).read_bytes() == (saved / name).read_bytes()
    assert "| pmpjpe | 31.6 | mm | `h36m-p2` | h36m |" in (out / "README.md").read_text()
    (saved / "README.md").write_text("---\nlicense: mit\n---\nhand-written card\n")
    assert "hand-written card" in (export_folder(saved, tmp_path / "up2") / "README.md").read_text()


def test_card_template_and_weights_license(tmp_path, tiny_entry):
    tiny_entry(license="CC-BY-NC-4.0")
    model = posezoo.create("tiny-lift")
    model.meta["weights"] = "tiny-lift.test"
    out = export_folder(model, tmp_path / "up")
    card = ModelCard.load(out / "README.md")
    assert card.data.license == "cc-by-nc-4.0"  # the weights' license, not the code's
    assert "| Code license | posezoo: Apache-2.0; original implementation: Apache-2.0 |" in card.text
    assert card.data.datasets is None and "[AMASS](https://amass.is.tue.mpg.de)" in card.text
    assert "tiny release v0" in card.text
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n# {{ title }}: {{ params }} parameters, layout {{ layout }}\n")
    text = (export_folder(model, tmp_path / "up2", card=template) / "README.md").read_text()
    assert f"# tiny-lift.test: {sum(p.numel() for p in model.parameters()):,} parameters, layout h36m-17" in text


def test_files_of_an_earlier_posezoo_read_as_today(tmp_path, tiny_entry):
    """Registry files and config.json written with ``licence`` / ``code_licence`` and the class name
    as ``architecture`` read with today's keys (posezoo.entries.current_keys, the one mapping)."""
    tiny_entry(license="MIT", key="licence")
    info = posezoo.model_info("tiny-lift.test")
    assert info["license"] == "Apache-2.0" and info["weights"]["tiny-lift.test"]["license"] == "MIT"
    saved = posezoo.save(tiny_model(), tmp_path / "old")
    config = json.loads((saved / "config.json").read_text())
    meta = config["meta"]
    meta["licence"], meta["code_licence"] = meta.pop("license"), "MIT"
    meta["data"] = {"sources": [{"file": "a.npz", "licence": "CC0-1.0"}], "licence": "CC0-1.0"}
    (saved / "config.json").write_text(json.dumps({**config, "architecture": "PoseModel"}))
    read = read_config(saved)
    assert read["architecture"] == "dstformer-lift"
    assert read["meta"]["license"] == "Apache-2.0" and read["meta"]["code_license"] == "MIT"
    assert read["meta"]["data"] == {"sources": [{"file": "a.npz", "license": "CC0-1.0"}], "license": "CC0-1.0"}
    assert "licence" not in json.dumps(read) and posezoo.create(str(saved)).meta["code_license"] == "MIT"


def test_hub_license_fields():
    from posezoo.cards import hub_license

    assert hub_license("Apache-2.0") == {"license": "apache-2.0"}
    assert hub_license("MIT (the repository's license); trained on Human3.6M, whose license restricts use") == \
        {"license": "other", "license_name": "mit"}
    assert hub_license("Human3.6M license (research only)") == {"license": "other", "license_name": "human3.6m-license"}
    assert hub_license(None) == {"license": "other", "license_name": "unknown"}


def test_cli_push_export(tmp_path, capsys):
    saved = posezoo.save(tiny_model(), tmp_path / "saved")
    assert cli_main(["push", str(saved), "org/tiny", "--export", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert cli_main(["push", str(tmp_path / "nothing"), "org/tiny", "--export", str(tmp_path / "o2")]) == 2
    assert "has no config.json" in capsys.readouterr().err


# --- pulls from a real HTTP server --------------------------------------------------------------

def publish_model(server, repo_id: str, model, tmp_path: Path, **kw) -> str:
    """Publish exactly what push_to_hub would upload."""
    folder = export_folder(model, tmp_path / f"export-{uuid.uuid4().hex}", repo_id=repo_id, results=RESULTS)
    return server.publish(repo_id, folder, **kw)


def test_server_starts(olah_server):
    assert olah_server.started_in_s < 60


def test_pull_by_id_tag_branch_and_commit(hub, tmp_path):
    v1, v2, dev = tiny_model(1), tiny_model(2), tiny_model(3)
    sha1 = publish_model(hub, "org/lift", v1, tmp_path, message="v1", tag="v1.0")
    sha2 = publish_model(hub, "org/lift", v2, tmp_path, message="v2")
    publish_model(hub, "org/lift", dev, tmp_path, message="dev", branch="dev")

    latest = posezoo.create("hf-hub:org/lift")
    assert same_outputs(latest, v2) and not same_outputs(latest, v1)
    assert latest.meta["weights"] == f"hf-hub:org/lift@{sha2}"
    assert same_outputs(posezoo.create("hf-hub:org/lift@v1.0"), v1)
    assert same_outputs(posezoo.create(f"hf-hub:org/lift@{sha1}"), v1)
    assert same_outputs(posezoo.create("hf-hub:org/lift@dev"), dev)
    info = HfApi(endpoint=hub.endpoint).model_info("org/lift", revision="main")
    assert info.sha == sha2 and info.card_data.library_name == "posezoo"
    card = ModelCard.load("org/lift")
    assert card.data.eval_results[0].metric_config == "h36m-p1"


def test_offline_reuses_the_cache_with_the_server_stopped(tmp_path, monkeypatch):
    server = start_olah(tmp_path / "own-server")
    try:
        monkeypatch.setattr(constants, "ENDPOINT", server.endpoint)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            server.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        model = tiny_model(4)
        sha = publish_model(server, "org/offline", model, tmp_path, tag="v1")
        publish_model(server, "org/uncached", model, tmp_path)
        posezoo.create("hf-hub:org/offline")
        posezoo.create("hf-hub:org/offline@v1")
    finally:
        server.stop()
    # server gone: local_files_only needs no network at all
    assert same_outputs(posezoo.create("hf-hub:org/offline", local_files_only=True), model)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for spec in ("hf-hub:org/offline", "hf-hub:org/offline@v1", f"hf-hub:org/offline@{sha}"):
        assert same_outputs(posezoo.create(spec), model)
    start = time.monotonic()
    with pytest.raises(HubError, match="not in the Hugging Face cache .*HF_HUB_OFFLINE=1.*Download it once") as err:
        posezoo.create("hf-hub:org/uncached")
    assert "posezoo.create('hf-hub:org/uncached')" in str(err.value)
    assert time.monotonic() - start < 2


def test_missing_repo_and_revision(hub, tmp_path):
    publish_model(hub, "org/exists", tiny_model(), tmp_path)
    with pytest.raises(HubError, match="hf-hub:org/missing: repository not found on http://127.0.0.1"):
        posezoo.create("hf-hub:org/missing")
    # olah answers RepoNotFound for a missing revision too; the real Hub raises RevisionNotFoundError
    with pytest.raises(HubError, match="revision 'no-such-tag'"):
        posezoo.create("hf-hub:org/exists@no-such-tag")


def test_pretrained_entry_downloads_and_checks_sha256(hub, tmp_path, tiny_entry):
    model = tiny_model(5)
    folder = export_folder(model, tmp_path / "up")
    hub.publish("posezoo/tiny-lift.test", folder)
    good = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    tiny_entry(sha256="0" * 64)
    with pytest.raises(HubError, match="sha256 .* does not match the recorded 0000"):
        posezoo.create("tiny-lift.test", pretrained=True)

    tiny_entry(sha256=good)
    pulled = posezoo.create("tiny-lift.test", pretrained=True)
    assert same_outputs(pulled, model) and pulled.meta["weights"] == "tiny-lift.test"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(constants, "HF_HUB_OFFLINE", True)
        assert same_outputs(posezoo.create("tiny-lift.test", pretrained=True), model)


def test_pretrained_entry_uncached_offline_says_what_to_download(hub, tiny_entry, monkeypatch):
    tiny_entry()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError, match=r"tiny-lift.test .* not in the Hugging Face cache.*"
                                       r"posezoo.create\('tiny-lift.test', pretrained=True\)"):
        posezoo.create("tiny-lift.test", pretrained=True)


class Payload:
    """Unpickling this would import and run code from this module."""


def test_pickle_only_repo_needs_opt_in(hub, tmp_path):
    model = tiny_model(6)
    folder = export_folder(model, tmp_path / "up")
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict()}, buffer)
    hub.publish("org/pickled", files={"config.json": (folder / "config.json").read_bytes(),
                                      "pytorch_model.bin": buffer.getvalue()})
    with pytest.raises(HubError, match=r"only a pickle checkpoint \(pytorch_model.bin\).*allow_pickle=True"):
        posezoo.create("hf-hub:org/pickled")
    assert same_outputs(posezoo.create("hf-hub:org/pickled", allow_pickle=True), model)

    evil = io.BytesIO()
    torch.save({"model": model.state_dict(), "payload": Payload()}, evil)
    hub.publish("org/evil", files={"config.json": (folder / "config.json").read_bytes(),
                                   "pytorch_model.bin": evil.getvalue()})
    with pytest.raises(CheckpointError, match="not safe to unpickle"):
        posezoo.create("hf-hub:org/evil", allow_pickle=True)


def test_truncated_and_corrupted_downloads_are_not_loaded(hub, tmp_path):
    folder = export_folder(tiny_model(7), tmp_path / "up")
    data = (folder / "model.safetensors").read_bytes()
    hub.publish("org/truncated", files={"config.json": (folder / "config.json").read_bytes(),
                                        "model.safetensors": data[: len(data) // 2]})
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        posezoo.create("hf-hub:org/truncated")

    hub.publish("org/ok", folder)
    posezoo.create("hf-hub:org/ok")
    blob = next(Path(constants.HF_HUB_CACHE).glob("models--org--ok/snapshots/*/model.safetensors")).resolve()
    blob.write_bytes(data[:-64] + bytes(64))  # same size, damaged tail: still parses as safetensors
    with pytest.raises(HubError, match="does not match the content hash the Hub sent"):
        posezoo.create("hf-hub:org/ok")
    assert same_outputs(posezoo.create("hf-hub:org/ok", force_download=True), tiny_model(7))


@pytest.mark.parametrize("change, message", [
    (lambda c: c["model"]["backbone"].update(type="NotRegistered"), "no backbone named 'NotRegistered'"),
    (lambda c: c.update(format_version=99), "format_version 99.*upgrade posezoo"),
])
def test_bad_config_is_a_clear_error(hub, tmp_path, change, message):
    folder = export_folder(tiny_model(), tmp_path / "up")
    config = json.loads((folder / "config.json").read_text())
    change(config)
    repo = f"org/bad-{uuid.uuid4().hex[:8]}"
    hub.publish(repo, folder, files={"config.json": json.dumps(config).encode()})
    with pytest.raises(HubError, match=f"hf-hub:{repo}@[0-9a-f]{{40}}: .*{message}"):
        posezoo.create(f"hf-hub:{repo}")


def test_code_in_a_repo_is_never_fetched_or_run(hub, tmp_path):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\n".encode()
    folder = export_folder(tiny_model(), tmp_path / "up")
    hub.publish("org/with-code", folder, files={"modeling_posezoo.py": code, "posezoo_plugin.py": code})
    model = posezoo.create("hf-hub:org/with-code")
    snapshot = Path(constants.HF_HUB_CACHE) / "models--org--with-code" / "snapshots"
    assert sorted(p.name for p in next(snapshot.iterdir()).iterdir()) == ["config.json", "model.safetensors"]
    assert not marker.exists() and same_outputs(model, tiny_model())


def test_existing_card_is_kept_unless_asked(hub, tmp_path):
    api = HfApi(endpoint=hub.endpoint)
    hub.publish("org/carded", files={"README.md": b"---\nlicense: mit\n---\nhand-edited\n"})
    hub.publish("org/cardless", files={"config.json": b"{}"})
    assert card_ignore_patterns(api, "org/carded", None, overwrite_card=False) == ["README.md"]
    assert card_ignore_patterns(api, "org/carded", None, overwrite_card=True) == []
    assert card_ignore_patterns(api, "org/cardless", None, overwrite_card=False) == []


def test_push_reaches_the_endpoint_and_reports_refusal(hub):
    # olah is read-only: create_repo answers 405, which must come back as one clear error
    with pytest.raises(HubError, match="push to org/new: .* answered HTTP 405"):
        posezoo.push_to_hub(tiny_model(), "org/new", endpoint=hub.endpoint, token="hf_dummy")


# --- opt-in: a real upload ----------------------------------------------------------------------

@pytest.mark.skipif(not (os.environ.get("POSEZOO_HUB_ENDPOINT") and os.environ.get("HF_TOKEN")),
                    reason="real upload: set POSEZOO_HUB_ENDPOINT and HF_TOKEN (and optionally POSEZOO_HUB_ORG)")
def test_push_to_a_real_hub(tmp_path):
    endpoint, token = os.environ["POSEZOO_HUB_ENDPOINT"], os.environ["HF_TOKEN"]
    api = HfApi(endpoint=endpoint, token=token)
    org = os.environ.get("POSEZOO_HUB_ORG") or api.whoami()["name"]
    repo_id = f"{org}/posezoo-test-{uuid.uuid4().hex[:8]}"
    model = tiny_model(8)
    try:
        info = push_to_hub(model, repo_id, private=True, token=token, endpoint=endpoint, results=RESULTS)
        assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "README.md", "config.json",
                                                        "model.safetensors"]
        (tmp_path / "cache").mkdir()
        pulled = posezoo.create(f"hf-hub:{repo_id}@{info.oid}", endpoint=endpoint, token=token,
                                cache_dir=tmp_path / "cache")
        assert same_outputs(pulled, model)
        api.upload_file(path_or_fileobj=b"---\nlicense: mit\n---\nhand-edited\n", path_in_repo="README.md",
                        repo_id=repo_id)
        push_to_hub(tiny_model(9), repo_id, token=token, endpoint=endpoint)
        card = api.hf_hub_download(repo_id, "README.md", cache_dir=tmp_path / "cache", force_download=True)
        assert "hand-edited" in Path(card).read_text()
    finally:
        api.delete_repo(repo_id, missing_ok=True)


# --- official weights and the conversion tool ---------------------------------------------------

def test_official_weights_are_complete():
    """Every published (not shipped) weight set names its source, license, Hub repo and a converter."""
    from posezoo.registry import CONVERTERS

    all_entries = entries.all_entries()
    published = {f"{arch}.{tag}": w for arch, entry in all_entries.items() for tag, w in entry.weights.items()
                 if "embedded" not in w.extra}
    assert len(published) >= 17  # MotionBERT x6, VideoPose3D, PoseFormer x2, PoseFormerV2 x6, PCT, ...
    assert "dstformer-lite-lift.pretrain" in published and "pct-tokenizer.coco-swin-base" in published
    for name, w in published.items():
        assert w.hf_hub_id == f"posezoo/{name}", name
        assert w.source and w.license, name
        converter = w.extra.get("converter", all_entries[name.split(".")[0]].family)
        assert CONVERTERS.get(converter) is not None, name


def run_tool(*args: str) -> int:
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "tools" / "convert_and_push.py"
    spec = importlib.util.spec_from_file_location("convert_and_push", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(list(args))


def test_convert_and_push_dry_run_with_parity(fixtures_dir, tmp_path, capsys):
    config = json.loads((fixtures_dir / "motionbert" / "dstformer_small_attfuse.json").read_text())["config"]
    overrides = {k: config[k] for k in ("dim_feat", "dim_rep", "depth", "num_heads", "maxlen", "mlp_ratio")}
    overrides["norm_eps"] = config["layernorm_eps"]
    small = [f"--set={k}={json.dumps(v)}" for k, v in overrides.items()]
    ckpt = fixtures_dir / "motionbert" / "dstformer_small_attfuse.official_ckpt.bin"
    fixture = fixtures_dir / "motionbert" / "dstformer_small_attfuse.safetensors"
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    out = tmp_path / "out"
    assert run_tool("dstformer-lite-lift.pretrain", str(ckpt), "--dry-run", "--out", str(out), "--parity",
                    str(fixture), "--results", str(tmp_path / "results.json"), *small) == 0
    printed = capsys.readouterr().out
    assert "parity against" in printed and "max abs error" in printed
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert f'sha256 = "{digest}"' in printed
    card = ModelCard.load(out / "README.md")
    assert card.data.model_name == "posezoo/dstformer-lite-lift.pretrain"
    assert "MB_lite" in card.text and card.data.eval_results[0].metric_config == "h36m-p1"
    assert posezoo.create(str(out)).meta["weights"] == "dstformer-lite-lift.pretrain"

    # a checkpoint that is not the fixture's weights fails parity and writes nothing
    other = tmp_path / "other.safetensors"
    posezoo.save(posezoo.create("dstformer-lite-lift", **overrides), tmp_path / "o")
    (tmp_path / "o" / "model.safetensors").rename(other)
    assert run_tool("dstformer-lite-lift.pretrain", str(other), "--dry-run", "--out", str(tmp_path / "bad"),
                    "--parity", str(fixture), *small) == 2
    assert "parity failed" in capsys.readouterr().err and not (tmp_path / "bad" / "README.md").exists()
