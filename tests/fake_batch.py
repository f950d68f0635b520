"""A stand-in of OpenAI's Files and Batches endpoints on loopback, for batch runs.

    with FakeBatchAPI(FakeOpenAI(tasks_per_answer=5), polls=2) as server:
        ...   # base_url: server.base_url
        server.uploads      # (file name, custom ids) of every input file uploaded
        server.batches      # every batch created, with its status
        server.served       # (custom_id, batch id, usage) of every line answered: what was billed

A batch goes validating -> in_progress -> finalizing -> its end, one step per `polls` looks.
Its lines are answered by the chat stand-in (`FakeOpenAI.respond`), so answers, usage and
refusals are those of the online tests. `plans` give successive batches their ending:
  {"end": "completed"}                              every line answered (the default)
  {"end": "expired", "answered": 3}                 3 lines answered, the rest never reached
  {"end": "failed"}                                 validation failed: nothing answered
  {"end": "completed", "failed_lines": 2}           2 lines in the error file (HTTP 500)
`endless_files` makes the account's list of files never end, as a busy account's seems to: after
its own files (newest first) come other runs' files, page after page (`file_pages` counts the
pages served; the list ends after `ENDLESS_PAGES`, so a client that walks it fails a test
instead of hanging it).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from fake_openai import FakeOpenAI
from loopback import LoopbackServer

STEPS = ("validating", "in_progress", "finalizing")
ENDLESS_PAGES = 1_000


@dataclass
class FakeBatchAPI(LoopbackServer):
    chat: FakeOpenAI
    polls: int = 1  # looks at a batch in each of its running states
    plans: list[dict] = field(default_factory=list)  # how successive batches end
    files: dict[str, dict] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict] = field(default_factory=dict)
    uploads: list[tuple[str, list[str]]] = field(default_factory=list)
    served: list[tuple[str, str, dict]] = field(default_factory=list)
    endless_files: bool = False
    file_pages: int = 0

    def __post_init__(self):
        self._lock = threading.RLock()  # a batch that ends writes its files under the same lock
        self._looks: dict[str, int] = {}
        self._listen(self._handler_class())

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # ------------------------------------------------------------ files

    def upload(self, name: str, data: bytes, purpose: str) -> dict:
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": name,
                "purpose": purpose,
                "status": "processed",
            }
            self.contents[file_id] = data
            if purpose == "batch":
                self.uploads.append((name, [json.loads(line)["custom_id"] for line in data.decode().splitlines()]))
        return self.files[file_id]

    def file_list(self, purpose: str | None, after: str | None, limit: int) -> dict:
        """A page of the files, newest first, after the file `after`."""
        with self._lock:
            self.file_pages += 1
            ours = [f for f in reversed(self.files.values()) if purpose in (None, f["purpose"])]
            start = next((i + 1 for i, f in enumerate(ours) if f["id"] == after), 0) if after else 0
            if not self.endless_files:
                return {"object": "list", "data": ours[start:], "has_more": False}
            if after and after.startswith("file-other-"):
                start = len(ours) + int(after.removeprefix("file-other-")) + 1
            page = [ours[i] if i < len(ours) else self._other_file(i - len(ours)) for i in range(start, start + limit)]
            return {"object": "list", "data": page, "has_more": self.file_pages < ENDLESS_PAGES}

    @staticmethod
    def _other_file(n: int) -> dict:
        return {
            "id": f"file-other-{n}",
            "object": "file",
            "bytes": 10,
            "created_at": 0,
            "filename": f"selfinstruct-other-b{n:04d}.jsonl",
            "purpose": "batch",
            "status": "processed",
        }

    def _file(self, lines: list[dict], name: str) -> str | None:
        if not lines:
            return None
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        return self.upload(name, data, "batch_output")["id"]

    # ------------------------------------------------------------ batches

    def create(self, body: dict) -> dict:
        with self._lock:
            batch_id = f"batch_{len(self.batches) + 1}"
            plan = self.plans[len(self.batches)] if len(self.batches) < len(self.plans) else {}
            lines = self.contents[body["input_file_id"]].decode().splitlines()
            self.batches[batch_id] = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "errors": None,
                "input_file_id": body["input_file_id"],
                "completion_window": body["completion_window"],
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": body.get("metadata") or {},
                "_plan": plan,
            }
            self._looks[batch_id] = 0
        return self._public(self.batches[batch_id])

    def retrieve(self, batch_id: str) -> dict:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] == "cancelling":
                self._end(batch, "cancelled")
            elif batch["status"] in STEPS:
                self._looks[batch_id] += 1
                step = min(self._looks[batch_id] // self.polls, len(STEPS))
                if step == len(STEPS):
                    self._end(batch, batch["_plan"].get("end", "completed"))
                else:
                    batch["status"] = STEPS[step]
        return self._public(batch)

    def cancel(self, batch_id: str) -> dict:
        with self._lock:
            batch = self.batches[batch_id]
            if batch["status"] in STEPS:
                batch["status"] = "cancelling"
        return self._public(batch)

    def _end(self, batch: dict, status: str) -> None:
        """Answer the lines the plan says were reached; write the output and error files."""
        plan = batch["_plan"]
        lines = [json.loads(line) for line in self.contents[batch["input_file_id"]].decode().splitlines()]
        reached = 0 if status in ("failed", "cancelled") else plan.get("answered", len(lines))
        failing = plan.get("failed_lines", 0)
        output, errors = [], []
        for n, line in enumerate(lines[:reached]):
            if n < failing:
                errors.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": line["custom_id"],
                        "error": None,
                        "response": {
                            "status_code": 500,
                            "body": {"error": {"message": "internal error", "type": "server_error"}},
                        },
                    }
                )
                continue
            call, _, payload = self.chat.respond(line["body"], {"X-Client-Request-Id": line["custom_id"]})
            answer = {
                "id": f"batch_req_{n}",
                "custom_id": line["custom_id"],
                "error": None,
                "response": {
                    "status_code": call.status,
                    "request_id": call.server_request_id,
                    "body": json.loads(payload),
                },
            }
            if call.status == 200:
                output.append(answer)
                self.served.append((line["custom_id"], batch["id"], call.usage))
            else:
                errors.append(answer)
        batch["request_counts"] = {"total": len(lines), "completed": len(output), "failed": len(errors)}
        batch["output_file_id"] = self._file(output, f"{batch['id']}_output.jsonl")
        batch["error_file_id"] = self._file(errors, f"{batch['id']}_error.jsonl")
        batch["status"] = status

    @staticmethod
    def _public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    # ------------------------------------------------------------ HTTP

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, payload, status: int = 200, content_type: str = "application/json"):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_GET(self):
                path, query = urlsplit(self.path).path, parse_qs(urlsplit(self.path).query)
                parts = path.strip("/").split("/")  # v1, files|batches, [id], [content]
                if parts[1] == "files" and len(parts) == 4:
                    return self._send(server.contents[parts[2]], content_type="application/octet-stream")
                if parts[1] == "files":
                    first = lambda name: query.get(name, [None])[0]  # noqa: E731
                    return self._send(server.file_list(first("purpose"), first("after"), int(first("limit") or 100)))
                if parts[1] == "batches" and len(parts) == 3:
                    return self._send(server.retrieve(parts[2]))
                data = [server._public(b) for b in reversed(list(server.batches.values()))]
                return self._send({"object": "list", "data": data, "has_more": False})

            def do_POST(self):
                parts = urlsplit(self.path).path.strip("/").split("/")
                if parts[1] == "files":
                    form = BytesParser(policy=email_policy).parsebytes(
                        b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + self._body()
                    )
                    fields = {p.get_param("name", header="content-disposition"): p for p in form.iter_parts()}
                    file = fields["file"]
                    return self._send(
                        server.upload(
                            file.get_filename(), file.get_payload(decode=True), fields["purpose"].get_content().strip()
                        )
                    )
                if parts[1] == "batches" and len(parts) == 4 and parts[3] == "cancel":
                    return self._send(server.cancel(parts[2]))
                return self._send(server.create(json.loads(self._body())))

            def log_message(self, *args):
                pass

        return Handler
