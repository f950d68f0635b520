import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import their helpers (fake_openai)

# The project's read-only data lives in ../shared/ beside the checkout. A missing file is a
# broken setup, so tests fail on it rather than skip.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SEED_TASKS = SHARED / "self-instruct" / "seed_tasks.jsonl"
USER_ORIENTED = SHARED / "self-instruct" / "user_oriented_instructions.jsonl"
T0_PROMPTS = SHARED / "t0_prompts_50k.jsonl.gz"
GSM8K = SHARED / "gsm8k" / "train.jsonl"


def pytest_sessionstart(session):
    missing = [p for p in (SEED_TASKS, USER_ORIENTED, T0_PROMPTS, GSM8K) if not p.exists()]
    if missing:
        raise pytest.UsageError(f"shared data missing (expected ../shared/ beside the checkout): {missing}")


FAKE_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture(autouse=True)
def fake_api_key(monkeypatch):
    """Every test runs with a recognisable fake key, so tests can check it never leaks."""
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return FAKE_KEY


def assert_no_key_in(directory: Path, key: str = FAKE_KEY) -> None:
    for path in Path(directory).rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), f"API key leaked into {path}"


@pytest.fixture(scope="session")
def redis_url():
    """A redis-server on loopback for the whole session (see redis_server.py)."""
    from redis_server import redis_server

    with redis_server() as url:
        if url is None:
            pytest.skip("redis-server is not installed (make redis-server)")
        yield url


# ---------------------------------------------------------------- report (built once per session)


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    from report_runs import write_small_run

    return write_small_run(tmp_path_factory.mktemp("report") / "small-run")


@pytest.fixture(scope="session")
def big_run(tmp_path_factory) -> Path:
    from big_run import write_big_run

    return write_big_run(tmp_path_factory.mktemp("report") / "big-run", T0_PROMPTS)


@pytest.fixture(scope="session")
def big_report(big_run, tmp_path_factory):
    """The 52K run's page, with its size and build time (printed by the test that checks them)."""
    from selfinstruct.report.page import build_report

    return build_report(big_run, tmp_path_factory.mktemp("report") / "big-report.html")
