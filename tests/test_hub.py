"""`export --push-to-hub` against a local Hub (tests/fake_hub.py), as a user runs it: the CLI in
a subprocess, pointed at the server with HF_ENDPOINT, the token in HF_TOKEN."""

import os
import subprocess
import sys

import pytest
from conftest import FAKE_KEY
from fake_hub import FakeHub
from fake_run import SECRET, records, write_run
from huggingface_hub import DatasetCard

from selfinstruct.export.card import MARKER
from selfinstruct.records import read_records

TOKEN = "hf_test_0123456789TOKEN"


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run")


@pytest.fixture
def hub():
    with FakeHub(token=TOKEN) as server:
        yield server
    assert server.unhandled == [], "huggingface_hub called endpoints the fake Hub does not know"


def export(hub, tmp_path, *args, token=TOKEN):
    env = {
        **os.environ,  # with the fake OpenAI key, to check that it never travels
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(tmp_path / "hf_home"),  # no cached login or registry from this machine
        "HF_HUB_DISABLE_XET": "1",  # the fake Hub speaks LFS, not the Xet protocol
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_OFFLINE": "0",  # loopback is all there is, and it must be reached
        "HF_DATASETS_OFFLINE": "0",
    }
    env.pop("HF_TOKEN", None)
    if token:
        env["HF_TOKEN"] = token
    command = [sys.executable, "-m", "selfinstruct", "export", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_push_creates_a_private_repo_with_the_card_and_the_data(hub, run, tmp_path):
    result = export(hub, tmp_path, run, "--push-to-hub", "alice/instructions", "--split-test", "0.25")
    assert result.returncode == 0, result.stderr
    assert f"{hub.url}/datasets/alice/instructions" in result.stdout

    repo = hub.repos["alice/instructions"]
    assert repo.private is True
    assert sorted(repo.files) == ["README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    assert set(repo.lfs) == {"data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"}
    assert [c["summary"] for c in repo.commits] == [
        "Dataset card (selfinstruct export)",
        "Upload dataset (selfinstruct export)",
    ]

    readme = repo.files["README.md"].decode()
    card = DatasetCard(readme)
    assert card.data.license == "other" and "selfinstruct" in card.data.tags
    assert card.data.configs == [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": "data/train-*"}, {"split": "test", "path": "data/test-*"}],
        }
    ]
    assert MARKER in readme and "api.example-llm.com:8443" in readme and "$6.8700" in readme
    assert "train 15, test 5" in readme and 'load_dataset("alice/instructions")' in readme

    pushed = []
    for path in ("data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"):
        (tmp_path / "shard.parquet").write_bytes(repo.files[path])
        pushed += read_records(tmp_path / "shard.parquet")
    assert sorted(pushed, key=lambda r: r["id"]) == sorted(records(), key=lambda r: r["id"])
    for content in repo.files.values():
        assert TOKEN.encode() not in content and FAKE_KEY.encode() not in content and SECRET.encode() not in content

    # Pushing again replaces the data: the test split of the first push is gone.
    result = export(hub, tmp_path, run, "--push-to-hub", "alice/instructions", "--format", "messages")
    assert result.returncode == 0, result.stderr
    assert sorted(repo.files) == ["README.md", "data/train-00000-of-00001.parquet"]
    assert "`messages`" in repo.files["README.md"].decode()


def test_public_only_when_asked_and_never_by_accident(hub, run, tmp_path):
    result = export(hub, tmp_path, run, "--push-to-hub", "alice/open", "--public", "--to", tmp_path / "local")
    assert result.returncode == 0, result.stderr
    assert hub.repos["alice/open"].private is False
    assert (tmp_path / "local" / "README.md").exists()

    commits = len(hub.repos["alice/open"].commits)
    result = export(hub, tmp_path, run, "--push-to-hub", "alice/open")
    assert result.returncode == 1
    assert "Error: alice/open: the dataset repository exists and is public; pass --public" in result.stderr
    assert len(hub.repos["alice/open"].commits) == commits


def test_a_bad_or_missing_token_is_a_clear_error(hub, run, tmp_path):
    result = export(hub, tmp_path, run, "--push-to-hub", "alice/x", token="hf_wrong_token_0123456789")
    assert result.returncode == 1
    assert "Error: alice/x: the Hub refused the upload" in result.stderr and "Traceback" not in result.stderr
    assert "hf_wrong_token_0123456789" not in result.stderr + result.stdout

    result = export(hub, tmp_path, run, "--push-to-hub", "alice/x", token=None)
    assert result.returncode == 1 and "Error: No Hugging Face token: set HF_TOKEN" in result.stderr
    assert hub.repos == {}
