"""A stand-in for `selfinstruct teacher serve` in a process of its own: FakeOpenAI's answers,
`GET /v1/models`, and a death on cue, as llama.cpp dies where its kernels were miscompiled
(the AMX crash: `/v1/models` answers, the first real completion kills the server).

    python tests/fake_teacher_server.py PORT --die-at 1   # killed by SIGSEGV at the 1st completion (the probe)
    python tests/fake_teacher_server.py PORT --die-at 3   # the probe and one answer, then SIGSEGV
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--die-at", type=int, help="kill this process with --signal at the Nth chat completion")
    parser.add_argument("--signal", default="SIGSEGV")
    args = parser.parse_args()
    faulthandler.enable()  # as `python -X faulthandler`: the stack goes to the teacher's log
    fake = FakeOpenAI()
    completions = 0
    lock = threading.Lock()

    class Handler(fake._handler_class()):
        def do_GET(self):
            payload = json.dumps(
                {"object": "list", "data": [{"id": "smollm2-135m-instruct", "object": "model"}]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            nonlocal completions
            with lock:
                completions += 1
                if completions == args.die_at:
                    print(f"ggml_backend_amx_mul_mat: completion {completions}, dying", flush=True)
                    # to this thread: it dies here, before it could answer (os.kill may reach another thread)
                    signal.pthread_kill(threading.get_ident(), signal.Signals[args.signal])
            super().do_POST()

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"serving on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
