"""What every HTTP stand-in of the tests shares: a server on a free loopback port, served from
a thread while in a `with` block.

    class FakeThing(LoopbackServer):
        def __init__(self):
            self._listen(self._handler_class())    # a BaseHTTPRequestHandler subclass
    with FakeThing() as thing:
        thing.url                                 # http://127.0.0.1:PORT
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer


class LoopbackServer:
    def _listen(self, handler_class) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
