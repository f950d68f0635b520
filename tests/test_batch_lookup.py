"""Looking up a batch or its input file after a crash: bounded, like any walk of an account's lists."""

import time

from fake_batch import FakeBatchAPI
from fake_openai import FakeOpenAI
from test_batch import config, events, start_until_batch_created

from selfinstruct.engine.job import StopReason
from selfinstruct.tasks.bootstrap import generate
from selfinstruct.teacher.batch import FIND_LIMIT, PAGE, BatchAPI
from selfinstruct.teacher.client import TeacherSettings

MOST_PAGES = -(-FIND_LIMIT // PAGE)  # pages of the newest FIND_LIMIT files


def settings(server) -> TeacherSettings:
    return TeacherSettings(base_url=server.base_url, model="gpt-4o-mini", api_key="sk-test", timeout_s=10)


def test_a_file_lookup_in_a_list_that_never_ends_stops_after_the_newest_files():
    with FakeBatchAPI(FakeOpenAI(), endless_files=True) as server:
        api = BatchAPI(settings(server))
        file_id = api.upload("selfinstruct-run-b0001.jsonl", b'{"custom_id": "r000000"}\n')
        assert server.file_pages == MOST_PAGES  # the name was looked up among the newest files, and was not there
        assert (
            api.find_file("selfinstruct-run-b0001.jsonl") == file_id and server.file_pages == MOST_PAGES + 1
        )  # the newest
        started = time.monotonic()
        assert api.find_file("selfinstruct-run-b0002.jsonl") is None
        assert server.file_pages == 2 * MOST_PAGES + 1 and time.monotonic() - started < 10


def test_a_rerun_after_a_crash_before_the_upload_looks_through_a_bounded_list(tmp_path):
    """The run died after recording its batch and before its input file was uploaded: the
    rerun looks for the batch, then for the file, among the newest only of a list that never
    ends, then asks those requests again."""
    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), polls=1000, endless_files=True) as server:
        process = start_until_batch_created(server, tmp_path)
        process.kill()
        process.wait()
        ledger = tmp_path / "ledger.jsonl"
        lines = ledger.read_text().splitlines(keepends=True)
        ledger.write_text(
            "".join(line for line in lines if '"batch_created"' not in line and '"batch_file"' not in line)
        )
        server.batches.clear()
        server.files.clear()
        first = server.uploads.pop()[1]
        server.polls, server.file_pages = 1, 0

        started = time.monotonic()
        result = generate(config(server), tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED and time.monotonic() - started < 30
    assert server.file_pages <= MOST_PAGES * (1 + len(server.uploads))  # the recovery's look, and one per upload
    given_up = {e["request_id"] for e in events(tmp_path, "failure") if "before its batch was uploaded" in e["error"]}
    assert given_up == set(first)
