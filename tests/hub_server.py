"""A real Hub-compatible HTTP server for tests: olah serving local git repos, read-only.

Tests "publish" by committing a folder into olah's mirror with plain git (branches, tags, further
commits) and pull it back with the real huggingface_hub client. Import the fixtures into a test
module (``from tests.hub_server import hub, olah_server``). The server is skipped, with the
reason, when ``olah-cli`` is not installed (``pip install olah``; ``$OLAH_CLI`` names another one).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

GIT_ENV = {"GIT_AUTHOR_NAME": "posezoo tests", "GIT_AUTHOR_EMAIL": "tests@posezoo.invalid",
           "GIT_COMMITTER_NAME": "posezoo tests", "GIT_COMMITTER_EMAIL": "tests@posezoo.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def _olah_cli() -> str | None:
    if os.environ.get("OLAH_CLI"):
        return os.environ["OLAH_CLI"]
    beside_python = Path(sys.executable).parent / "olah-cli"
    return str(beside_python) if beside_python.is_file() else shutil.which("olah-cli")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


@dataclass
class OlahServer:
    """A running olah process: ``endpoint`` to point huggingface_hub at, ``mirrors`` to publish into."""

    endpoint: str
    mirrors: Path
    process: subprocess.Popen
    log: Path
    started_in_s: float

    def publish(self, repo_id: str, folder: str | os.PathLike | None = None, message: str = "publish",
                branch: str = "main", tag: str | None = None, files: dict[str, bytes] | None = None) -> str:
        """Commit ``folder``'s files (and/or ``files``: name -> bytes) to ``branch`` of model repo
        ``repo_id``; optionally tag the commit. Returns the commit sha. Files already in the branch
        and not given again are kept, as on the Hub."""
        repo = self.mirrors / "models" / repo_id
        if not (repo / ".git").is_dir():
            repo.mkdir(parents=True)
            _git(repo, "init", "-q", "-b", branch)
        else:
            exists = bool(_git(repo, "branch", "--list", branch))
            _git(repo, "checkout", "-q", *([] if exists else ["-b"]), branch)
        if folder is not None:
            for path in Path(folder).iterdir():
                if path.is_file():
                    shutil.copyfile(path, repo / path.name)
        for name, data in (files or {}).items():
            (repo / name).write_bytes(data)
        _git(repo, "add", "-A")
        _git(repo, "commit", "-q", "--allow-empty", "-m", message)
        if tag:
            _git(repo, "tag", "-f", tag)
        return _git(repo, "rev-parse", "HEAD")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_olah(root: Path, timeout: float = 60.0) -> OlahServer:
    """Start olah on a free 127.0.0.1 port, serving ``root/mirrors`` offline; wait for the port."""
    cli = _olah_cli()
    if cli is None:
        pytest.skip("olah-cli not found (pip install olah, or set OLAH_CLI): no local Hub server")
    port = _free_port()
    (root / "mirrors" / "models").mkdir(parents=True, exist_ok=True)
    (root / "repos").mkdir(exist_ok=True)
    config = root / "olah.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f'repos-path = "{root / "repos"}"\nmirrors-path = ["{root / "mirrors"}"]\n'
        f'mirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
        "[accessibility]\noffline = true\n")
    log = root / "olah.log"
    start = time.monotonic()
    with open(log, "wb") as out:
        process = subprocess.Popen([cli, "-c", str(config)], cwd=root, stdout=out, stderr=subprocess.STDOUT)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"olah exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() - start > timeout:
            process.kill()
            raise RuntimeError(f"olah did not open port {port} in {timeout} s:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return OlahServer(f"http://127.0.0.1:{port}", root / "mirrors", process, log, time.monotonic() - start)


@pytest.fixture(scope="module")
def olah_server(tmp_path_factory):
    """One olah server per test module (start-up takes seconds on a loaded machine)."""
    server = start_olah(tmp_path_factory.mktemp("olah"))
    yield server
    server.stop()


@pytest.fixture
def hub(olah_server, monkeypatch, tmp_path):
    """huggingface_hub pointed at the olah server, with a fresh cache and downloads allowed."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", olah_server.endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        olah_server.endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    return olah_server
