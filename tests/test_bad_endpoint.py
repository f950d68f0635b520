"""A wrong --base-url is named at once, with the URL and the cause: a scheme other than http(s)
before any request, a refused connection or an answer that is not an API's at the first one.
Once the endpoint has answered like an API, the same failures are transient and retried, and
retries show in the progress bar."""

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler

import pytest
from click.testing import CliRunner
from fake_openai import FakeOpenAI
from loopback import LoopbackServer

from selfinstruct.cli import main
from selfinstruct.engine.job import StopReason
from selfinstruct.records import read_jsonl
from selfinstruct.tasks.bootstrap import GenerateConfig, generate
from selfinstruct.teacher.client import RequestFailed, TeacherClient, TeacherSettings
from selfinstruct.teacher.dialect import Ask

WELCOME = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"


class WebServer(LoopbackServer):
    """Not an API: answers every request with `status` and an HTML page (python -m http.server
    answers a POST with 501; a web server or a single-page app with its page), noting the
    X-Client-Request-Id of each POST."""

    def __init__(self, status: int):
        self.posted: list[str] = []
        server, lock = self, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    server.posted.append(self.headers.get("X-Client-Request-Id"))
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(WELCOME)))
                self.end_headers()
                self.wfile.write(WELCOME)

            def log_message(self, *args):
                pass

        self._listen(Handler)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


def nothing_listening() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


def cli_generate(base_url: str, out, *extra):
    args = ["generate", "--base-url", base_url, "--model", "m", "-n", "5", "--out", str(out), "--quiet", *extra]
    return CliRunner().invoke(main, args, catch_exceptions=False)


def ledger(out) -> list[dict]:
    return [e for _, e in read_jsonl(out / "ledger.jsonl")]


@pytest.mark.parametrize(
    "base_url",
    ["htp://127.0.0.1:8000/v1", "ftp://127.0.0.1:8000/v1", "127.0.0.1:8000/v1", "localhost:8000/v1", "http:///v1"],
)
def test_a_base_url_that_is_not_http_is_refused_before_any_request(tmp_path, base_url):
    result = cli_generate(base_url, tmp_path / "run")
    assert result.exit_code == 1
    assert "--base-url must be an http:// or https:// URL" in result.output and repr(base_url) in result.output
    assert not (tmp_path / "run").exists()  # refused with the settings, before a run directory or a request


@pytest.mark.parametrize(
    "server, cause",
    [
        (None, "cannot be reached: connection refused"),  # a port with nothing listening
        (lambda: WebServer(200), "answered with something that is not JSON"),
        (
            lambda: FakeOpenAI(faults=["bad_body"] * 8),
            "answered with something that is not JSON",
        ),  # HTML as application/json
        (lambda: WebServer(500), "answered HTTP 500 with a body that is not JSON"),
        (lambda: WebServer(501), "refused the request with HTTP 501 (the server does not implement chat completions"),
    ],
    ids=["refused", "html-200", "html-as-json", "html-500", "501"],
)
def test_a_wrong_endpoint_is_named_at_its_first_answer_without_retries(tmp_path, server, cause):
    if server is None:
        url, sent = nothing_listening(), []
        result = cli_generate(url, tmp_path, "--concurrency", "4")
    else:
        with server() as web:
            url = web.base_url
            result = cli_generate(url, tmp_path, "--concurrency", "4")
        sent = web.posted if isinstance(web, WebServer) else [call.client_request_id for call in web.calls]
        assert sent and len(sent) == len(set(sent))  # each request was sent once: no retry hid the cause
    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert message.startswith(f"Error: The teacher at {url} ") and cause in message and "--base-url" in message
    failures = [e for e in ledger(tmp_path) if e["event"] == "failure"]
    assert failures and all(e["attempts"] == 1 and "retry_errors" not in e for e in failures)


def test_a_gateway_error_page_at_the_start_is_retried(tmp_path):
    """A proxy answers 502 in HTML while the API behind it starts: that is not a wrong URL."""
    with FakeOpenAI(faults=["gateway", "gateway"]) as server:
        config = GenerateConfig(
            base_url=server.base_url,
            model="gpt-4o-mini",
            preset="alpaca",
            tasks_per_request=5,
            num_instructions=5,
            concurrency=1,
            max_tokens=400,
        )
        result = generate(config, tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    first = next(e for e in ledger(tmp_path) if e["event"] == "response")
    assert first["attempts"] == 3 and first["retry_errors"] == ["HTTP 502: Error code: 502"] * 2


def test_failures_after_the_endpoint_has_answered_are_retried(tmp_path):
    with FakeOpenAI(faults=["ok", "bad_body", "bad_body"]) as server:
        config = GenerateConfig(
            base_url=server.base_url,
            model="gpt-4o-mini",
            preset="alpaca",
            tasks_per_request=5,
            num_instructions=10,
            concurrency=1,
            max_tokens=400,
        )
        result = generate(config, tmp_path, progress=False)
    assert result.stop_reason is StopReason.TARGET_REACHED
    second = [e for e in ledger(tmp_path) if e["event"] == "response"][1]
    assert second["attempts"] == 3 and all("JSONDecodeError" in error for error in second["retry_errors"])


def test_a_connection_refused_after_the_endpoint_has_answered_is_retried_and_named():
    """The server goes away mid-run: a transient failure, retried until the attempts run out."""
    ask = Ask(lambda fmt: [{"role": "user", "content": "Name a sea animal."}], None, 50, 1.0, 1.0)

    async def ask_twice(server: FakeOpenAI):
        client = TeacherClient(TeacherSettings(base_url=server.base_url, model="m", api_key="EMPTY", max_attempts=3))
        try:
            first = await client.complete(ask, "r000000")
            server.__exit__(None, None, None)
            with pytest.raises(RequestFailed) as failed:
                await client.complete(ask, "r000001")
            return first, failed.value
        finally:
            await client.close()

    first, failed = asyncio.run(
        ask_twice(FakeOpenAI(extra_headers={"Connection": "close"}).__enter__())
    )  # none kept alive
    assert first.attempts == 1
    assert failed.attempts == 3 and "Connect call failed" in str(failed)  # the cause, not "Connection error."


def test_retries_and_429s_show_in_the_progress_bar_as_they_happen(tmp_path, capsys):
    with FakeOpenAI(faults=["429", "500"]) as server:
        config = GenerateConfig(
            base_url=server.base_url,
            model="gpt-4o-mini",
            preset="alpaca",
            tasks_per_request=5,
            num_instructions=5,
            concurrency=1,
            max_tokens=400,
        )
        result = generate(config, tmp_path, progress=True)
    assert result.stop_reason is StopReason.TARGET_REACHED
    frames = capsys.readouterr().err.split("\r")
    waiting = next(frame for frame in frames if "retried" in frame)
    assert " 0/5 " in waiting and "retried HTTP 429 1" in waiting  # drawn while nothing had come back
    assert "retried HTTP 429 1, HTTP 500 1" in frames[-1] or "retried HTTP 429 1, HTTP 500 1" in frames[-2]
