"""Where a job's requests go: the configured endpoints with their keys, or the embedded teacher.

    with teacher_endpoints(config, log_path=run.teacher_log) as endpoints:
        client = TeacherClient(endpoints[0].settings, limiter)
        ... endpoints[0].watch()  # awaited beside the requests: raises TeacherDied if the embedded teacher dies

Each key is read from the environment variable the config (or the endpoint's table in an
endpoints file) names, never from a flag or a file, and loopback servers (vLLM, Ollama,
llama.cpp) need none. A missing key stops the run before any request, naming the endpoint.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..engine.endpoints import EndpointSpec
from ..errors import SettingError
from .client import TeacherSettings
from .embedded import EmbeddedTeacher


@dataclass(frozen=True)
class Endpoint:
    settings: TeacherSettings
    watch: Callable[[], Awaitable[None]] | None = None  # for a teacher process of ours: see EmbeddedTeacher.watch
    client: object | None = None  # a teacher in this process (the `TeacherClient` interface) instead of HTTP
    spec: EndpointSpec | None = None  # as the user gave it: its name, bounds, weight and price (None: embedded)

    @property
    def name(self) -> str:
        """How the ledger names it: the endpoint's own name or host:port/path."""
        if self.spec is not None:
            return self.spec.label
        return "embedded" if self.client is None else "in-process"


@contextmanager
def teacher_endpoints(config, log_path: Path | None = None):
    """The `Endpoint`s for a job's `config` (a `JobConfig`); starts and finally stops the
    embedded teacher when no endpoint is configured."""
    if config.embedded:
        with EmbeddedTeacher(log_path=log_path, n_ctx=config.context_tokens) as teacher:
            yield [
                Endpoint(
                    _settings(config, teacher.base_url, "embedded", first_format="json_object", reached=True),
                    teacher.watch,
                )
            ]
        return
    specs = config.endpoint_specs()
    yield [
        Endpoint(
            _settings(config, spec.url, _api_key(config, spec, len(specs) > 1), "json_schema", spec=spec), spec=spec
        )
        for spec in specs
    ]


@contextmanager
def teacher_endpoint(config, log_path: Path | None = None):
    """The one endpoint of a run that has one (a batch, or the embedded teacher)."""
    with teacher_endpoints(config, log_path) as endpoints:
        yield endpoints[0]


def _api_key(config, spec: EndpointSpec, several: bool) -> str:
    key_env = spec.api_key_env or config.api_key_env
    api_key = os.environ.get(key_env)
    if api_key:
        return api_key
    if not is_loopback(spec.url):
        where = f" for endpoint {spec.label}" if several else ""
        raise SettingError(
            f"No API key{where}: set the {key_env} environment variable (or name another variable "
            "with {api_key_env}" + (", or the endpoint's api_key_env" if several else "") + ")",
            "api_key_env",
        )
    return "EMPTY"


def _settings(
    config, base_url: str, api_key: str, first_format: str, reached: bool = False, spec: EndpointSpec | None = None
) -> TeacherSettings:
    return TeacherSettings(
        base_url=base_url,
        model=(spec and spec.model) or config.model,
        api_key=api_key,
        key_env=(spec and spec.api_key_env) or config.api_key_env,
        timeout_s=config.timeout,
        max_attempts=config.max_attempts,
        response_format=config.response_format,
        first_format=first_format,
        reached=reached,
    )


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
