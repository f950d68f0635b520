"""The OpenAI Batch API (served by other providers too): upload a JSONL of requests, create a
batch, poll it, read its output and error files.

    api = BatchAPI(settings)
    file_id = api.upload("selfinstruct-b0001.jsonl", data)    # a file of that name is reused
    batch = api.create(file_id, {"selfinstruct_batch": "..."})
    batch = api.find({"selfinstruct_batch": "..."})           # one created before a crash recorded it
    batch = api.retrieve(batch.id)                            # status, request counts, file ids
    lines = api.lines(batch.output_file_id)

Limits (OpenAI's): at most 50,000 requests and 200 MB in one input file; `completion_window`
is 24h. A batch that ends `expired`, `failed` or `cancelled` still returns (and bills) what it
completed; a `completed` batch can have failed lines in its error file.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import openai

from .client import TeacherSettings
from .dialect import CHAT_COMPLETIONS

MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 2**20
ENDPOINT = f"/v1{CHAT_COMPLETIONS}"  # the Batch API names it from the host, not the base URL
TERMINAL = ("completed", "failed", "expired", "cancelled")
# Newest batches (and batch files) looked through for one made before a crash recorded it: an
# account's lists have no end we can count on, and ours is among the newest.
FIND_LIMIT = 1_000
PAGE = 100  # items asked for per page of a list


@dataclass(frozen=True)
class RemoteBatch:
    id: str
    status: str  # validating, failed, in_progress, finalizing, completed, expired, cancelling, cancelled
    total: int
    completed: int
    failed: int
    input_file_id: str
    output_file_id: str | None
    error_file_id: str | None
    metadata: dict

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def of(cls, batch) -> "RemoteBatch":
        counts = batch.request_counts
        return cls(
            batch.id,
            batch.status,
            counts.total if counts else 0,
            counts.completed if counts else 0,
            counts.failed if counts else 0,
            batch.input_file_id,
            batch.output_file_id,
            batch.error_file_id,
            dict(batch.metadata or {}),
        )


class BatchAPI:
    def __init__(self, settings: TeacherSettings):
        # These are few, small calls: the client's own retries (backoff on 429/5xx) suffice.
        self._client = openai.OpenAI(
            base_url=settings.base_url, api_key=settings.api_key, timeout=settings.timeout_s, max_retries=6
        )

    def upload(self, name: str, data: bytes) -> str:
        """The id of the batch input file called `name`: uploaded now, or earlier (a restart)."""
        return (
            self.find_file(name)
            or self._client.files.create(file=(name, data, "application/jsonl"), purpose="batch").id
        )

    def find_file(self, name: str) -> str | None:
        """The newest batch input file called `name`, among the newest `FIND_LIMIT`."""
        files = self._client.files.list(purpose="batch", order="desc", limit=PAGE)
        return next((f.id for f in itertools.islice(files, FIND_LIMIT) if f.filename == name), None)

    def create(self, file_id: str, metadata: dict) -> RemoteBatch:
        batch = self._client.batches.create(
            input_file_id=file_id, endpoint=ENDPOINT, completion_window="24h", metadata=metadata
        )
        return RemoteBatch.of(batch)

    def find(self, metadata: dict) -> RemoteBatch | None:
        """The newest batch whose metadata holds `metadata`, among the newest `FIND_LIMIT`."""
        for batch in itertools.islice(self._client.batches.list(limit=PAGE), FIND_LIMIT):
            if metadata.items() <= dict(batch.metadata or {}).items():
                return RemoteBatch.of(batch)
        return None

    def retrieve(self, batch_id: str) -> RemoteBatch:
        return RemoteBatch.of(self._client.batches.retrieve(batch_id))

    def cancel(self, batch_id: str) -> RemoteBatch:
        return RemoteBatch.of(self._client.batches.cancel(batch_id))

    def lines(self, file_id: str | None) -> list[dict]:
        """The JSON lines of an output, error or input file (none for no file)."""
        if file_id is None:
            return []
        text = self._client.files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]
