"""A stand-in Hugging Face Hub on loopback: the endpoints `huggingface_hub` calls to create a
dataset repository, commit a card and push a dataset with `Dataset.push_to_hub`.

    with FakeHub(token="hf_test") as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test", "HF_HUB_DISABLE_XET": "1"}
        ...  # run the upload
        hub.repos["alice/data"].files  # {path: bytes} as committed
        hub.repos["alice/data"].private

It keeps repositories in memory and checks what a client sends as the Hub would: the token
on every API call, LFS objects by sha256 and size before a commit may name them, a commit's
parent commit, the YAML of a README.md. Large files go through the LFS "basic" transfer
(batch, PUT, verify): the Xet protocol (chunked uploads to a CAS server) is not emulated,
so clients run with HF_HUB_DISABLE_XET=1. Unknown routes answer 501 and are listed in
`unhandled`, so a test fails loudly when huggingface_hub starts calling something new.

Endpoints (repo = OWNER/NAME of a dataset repository):
    GET  /api/agent-harnesses                         registry for huggingface_hub's user agent
    GET  /api/datasets/{repo}[/revision/{rev}]        repo info (404 RepoNotFound)
    POST /api/repos/create                            {name, organization, type, visibility}
    POST /api/validate-yaml                           README.md metadata check
    POST /api/datasets/{repo}/preupload/{rev}         regular or lfs, per file
    POST /datasets/{repo}.git/info/lfs/objects/batch  LFS upload actions
    PUT  /lfs/{oid}  and  POST /lfs/verify            the basic transfer
    POST /api/datasets/{repo}/commit/{rev}            NDJSON: header, file, lfsFile, deletedFile
    GET  /api/datasets/{repo}/tree/{rev}[/{path}]     listing (HfFileSystem.glob / ls)
    POST /api/datasets/{repo}/paths-info/{rev}        entries of given paths (HfFileSystem.info)
    GET  /datasets/{repo}/resolve/{rev}/{path}        file content (HfFileSystem.open)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse

import yaml
from loopback import LoopbackServer

REPO = r"(?P<repo>[^/]+/[^/]+?)"
REV = r"(?P<rev>[^/]+)"


@dataclass
class Repo:
    repo_id: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: dict[str, str] = field(default_factory=dict)  # path -> sha256 of files stored through LFS
    commits: list[dict] = field(default_factory=list)  # {"oid", "summary", "paths"}

    @property
    def head(self) -> str:
        return self.commits[-1]["oid"] if self.commits else "0" * 40


class FakeHub(LoopbackServer):
    def __init__(self, token: str):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}  # sha256 -> content
        self.calls: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._listen(self._handler_class())

    # ------------------------------------------------------------ routes

    def routes(self):
        return [
            ("GET", r"/api/agent-harnesses", self.agent_harnesses),
            ("GET", rf"/api/datasets/{REPO}/revision/{REV}", self.repo_info),
            ("GET", rf"/api/datasets/{REPO}", self.repo_info),
            ("POST", r"/api/repos/create", self.create_repo),
            ("POST", r"/api/validate-yaml", self.validate_yaml),
            ("POST", rf"/api/datasets/{REPO}/preupload/{REV}", self.preupload),
            ("POST", rf"/datasets/{REPO}\.git/info/lfs/objects/batch", self.lfs_batch),
            ("PUT", r"/lfs/(?P<oid>[0-9a-f]{64})", self.lfs_put),
            ("POST", r"/lfs/verify", self.lfs_verify),
            ("POST", rf"/api/datasets/{REPO}/commit/{REV}", self.commit),
            ("GET", rf"/api/datasets/{REPO}/tree/{REV}(?:/(?P<path>.*))?", self.tree),
            ("POST", rf"/api/datasets/{REPO}/paths-info/{REV}", self.paths_info),
            ("GET", rf"/datasets/{REPO}/resolve/{REV}/(?P<path>.+)", self.resolve),
            ("HEAD", rf"/datasets/{REPO}/resolve/{REV}/(?P<path>.+)", self.resolve),
        ]

    def agent_harnesses(self, req):
        return 200, {"standardEnvVars": [], "harnesses": {}}  # huggingface_hub's user-agent telemetry

    def _repo(self, repo: str) -> Repo:
        if repo not in self.repos:
            raise HubError(404, "Repository not found", "RepoNotFound")
        return self.repos[repo]

    def repo_info(self, req, repo, rev=None):
        r = self._repo(repo)
        return 200, {"id": repo, "private": r.private, "sha": r.head, "siblings": [{"rfilename": p} for p in r.files]}

    def create_repo(self, req):
        body = req.json()
        repo = f"{body['organization']}/{body['name']}"
        if body.get("type") != "dataset":
            raise HubError(400, f"expected a dataset repository, got type {body.get('type')!r}")
        if repo in self.repos:
            raise HubError(409, "You already created this dataset repo")
        self.repos[repo] = Repo(repo, private=body.get("visibility") == "private")
        return 200, {"url": f"{self.url}/datasets/{repo}", "name": repo}

    def validate_yaml(self, req):
        content = req.json()["content"]
        match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
        try:
            metadata = yaml.safe_load(match.group(1)) if match else {}
        except yaml.YAMLError as e:
            return 400, {"errors": [{"message": f"YAML: {e}"}], "warnings": []}
        if not isinstance(metadata, dict):
            return 400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}
        return 200, {"errors": [], "warnings": []}

    def preupload(self, req, repo, rev):
        self._repo(repo)
        files = req.json()["files"]
        # The Hub stores data files and anything large through LFS, small text files in git.
        mode = lambda f: "lfs" if f["path"].endswith((".parquet", ".arrow")) or f["size"] > 10_000_000 else "regular"  # noqa: E731
        return 200, {"files": [{"path": f["path"], "uploadMode": mode(f), "shouldIgnore": False} for f in files]}

    def lfs_batch(self, req, repo):
        self._repo(repo)
        body = req.json()
        if body.get("operation") != "upload" or "basic" not in body.get("transfers", []):
            raise HubError(400, f"unsupported LFS request {body.get('operation')} {body.get('transfers')}")
        objects = []
        for obj in body["objects"]:
            actions = None
            if obj["oid"] not in self.lfs_objects:
                actions = {
                    "upload": {"href": f"{self.url}/lfs/{obj['oid']}"},
                    "verify": {"href": f"{self.url}/lfs/verify"},
                }
            objects.append({"oid": obj["oid"], "size": obj["size"], **({"actions": actions} if actions else {})})
        return 200, {"transfer": "basic", "objects": objects}

    def lfs_put(self, req, oid):
        data = req.body
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, "content does not match its sha256")
        self.lfs_objects[oid] = data
        return 200, {}

    def lfs_verify(self, req):
        body = req.json()
        data = self.lfs_objects.get(body["oid"])
        if data is None or len(data) != body["size"]:
            raise HubError(404, f"LFS object {body['oid']} was not uploaded")
        return 200, {}

    def commit(self, req, repo, rev):
        r = self._repo(repo)
        lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
        header = lines[0]
        if header["key"] != "header":
            raise HubError(400, "the first line of a commit must be its header")
        parent = header["value"].get("parentCommit")
        if parent is not None and parent != r.head:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        paths = []
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            path = value["path"]
            if key == "file":
                r.files[path] = base64.b64decode(value["content"])
                r.lfs.pop(path, None)
            elif key == "lfsFile":
                if value["oid"] not in self.lfs_objects:
                    raise HubError(400, f"{path}: LFS object {value['oid']} was never uploaded")
                r.files[path] = self.lfs_objects[value["oid"]]
                r.lfs[path] = value["oid"]
            elif key in ("deletedFile", "deletedFolder"):
                for existing in [p for p in r.files if p == path or p.startswith(path.rstrip("/") + "/")]:
                    del r.files[existing]
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
            paths.append(path)
        oid = hashlib.sha1(f"{r.head}{len(r.commits)}{paths}".encode()).hexdigest()
        r.commits.append({"oid": oid, "summary": header["value"]["summary"], "paths": paths})
        return 200, {"commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}", "commitOid": oid, "pullRequestUrl": None}

    def _entry(self, r: Repo, path: str) -> dict:
        if path in r.files:
            data = r.files[path]
            entry = {"type": "file", "path": path, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            if path in r.lfs:
                entry["lfs"] = {"oid": r.lfs[path], "size": len(data), "pointerSize": 130}
            return entry
        return {"type": "directory", "path": path, "size": 0, "oid": hashlib.sha1(path.encode()).hexdigest()}

    def _children(self, r: Repo, folder: str, recursive: bool) -> list[str]:
        prefix = folder.rstrip("/") + "/" if folder else ""
        found = set()
        for path in r.files:
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix) :].split("/")
            for depth in range(1, len(parts) + 1 if recursive else 2):
                found.add(prefix + "/".join(parts[:depth]))
        return sorted(found)

    def tree(self, req, repo, rev, path=None):
        r = self._repo(repo)
        path = unquote(path or "").strip("/")
        if path and not any(p.startswith(path + "/") for p in r.files):
            raise HubError(404, f"{path}: no such folder", "EntryNotFound")
        recursive = req.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        return 200, [self._entry(r, p) for p in self._children(r, path, recursive)]

    def paths_info(self, req, repo, rev):
        r = self._repo(repo)
        paths = req.form_or_json().get("paths", [])
        known = [p for p in paths if p in r.files or any(f.startswith(p.rstrip("/") + "/") for f in r.files)]
        return 200, [self._entry(r, p) for p in known]

    def resolve(self, req, repo, rev, path):
        r = self._repo(repo)
        path = unquote(path)
        if path not in r.files:
            raise HubError(404, f"{path}: no such file", "EntryNotFound")
        return 200, r.files[path]

    # ------------------------------------------------------------ HTTP plumbing

    def _handler_class(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                request = Request(self)
                with hub._lock:
                    hub.calls.append((self.command, request.path))
                    status, body, error_code = hub._dispatch(request)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header(
                    "Content-Type", "application/octet-stream" if isinstance(body, bytes) else "application/json"
                )
                self.send_header("Content-Length", str(len(payload)))
                if isinstance(body, bytes):
                    self.send_header("ETag", f'"{hashlib.sha1(payload).hexdigest()}"')
                    self.send_header("Accept-Ranges", "bytes")
                if error_code:
                    self.send_header("X-Error-Code", error_code)
                    self.send_header("X-Error-Message", json.loads(payload)["error"])
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = _serve

            def log_message(self, *args):
                pass

        return Handler

    def _dispatch(self, request: "Request") -> tuple[int, object, str | None]:
        for method, pattern, handler in self.routes():
            match = re.fullmatch(pattern, request.path)
            if method == request.method and match:
                needs_token = not request.path.startswith("/lfs/")  # storage URLs are pre-signed
                if needs_token and request.headers.get("authorization") != f"Bearer {self.token}":
                    return 401, {"error": "Invalid credentials in Authorization header"}, "Unauthorized"
                try:
                    status, body = handler(request, **{k: v for k, v in match.groupdict().items()})
                except HubError as e:
                    return e.status, {"error": e.message}, e.code
                if isinstance(body, bytes) and request.range:
                    start, end = request.range
                    return 206, body[start : (end + 1 if end is not None else None)], None
                return status, body, None
        self.unhandled.append((request.method, request.path))
        return 501, {"error": f"the fake Hub has no {request.method} {request.path}"}, "NotImplemented"


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        self.status, self.message, self.code = status, message, code


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler):
        parsed = urlparse(handler.path)
        self.method = handler.command
        self.path = parsed.path
        self.query = parse_qs(parsed.query)
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.body = self._read_body(handler)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("range", ""))
        self.range = (int(match.group(1)), int(match.group(2)) if match.group(2) else None) if match else None

    def _read_body(self, handler) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(handler.rfile.readline().strip(), 16)
                if size == 0:
                    handler.rfile.readline()
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline()
        return handler.rfile.read(int(self.headers.get("content-length", 0) or 0))

    def json(self) -> dict:
        return json.loads(self.body or b"{}")

    def form_or_json(self) -> dict:
        if self.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return parse_qs(self.body.decode())
        return self.json()
