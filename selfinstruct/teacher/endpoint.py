"""Where a job's requests go: the configured endpoint with its key, or the embedded teacher.

    with teacher_endpoint(config, log_path=run.teacher_log) as endpoint:
        client = TeacherClient(endpoint.settings, limiter)
        ... endpoint.watch()  # awaited beside the requests: raises TeacherDied if the embedded teacher dies

The key is read from the environment variable the config names, never from a flag or a
file, and loopback servers (vLLM, Ollama, llama.cpp) need none.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import SettingError
from .client import TeacherSettings
from .embedded import EmbeddedTeacher


@dataclass(frozen=True)
class Endpoint:
    settings: TeacherSettings
    watch: Callable[[], Awaitable[None]] | None = None  # for a teacher process of ours: see EmbeddedTeacher.watch
    client: object | None = None  # a teacher in this process (the `TeacherClient` interface) instead of HTTP


@contextmanager
def teacher_endpoint(config, log_path: Path | None = None):
    """The `Endpoint` for a job's `config` (a `JobConfig`); starts and finally stops the
    embedded teacher when no endpoint is configured."""
    if config.embedded:
        with EmbeddedTeacher(log_path=log_path, n_ctx=config.context_tokens) as teacher:
            yield Endpoint(
                _settings(config, teacher.base_url, "embedded", first_format="json_object", reached=True), teacher.watch
            )
        return
    api_key = os.environ.get(config.api_key_env)
    if not api_key:
        if not is_loopback(config.base_url):
            raise SettingError(
                f"No API key: set the {config.api_key_env} environment variable (or name another variable "
                "with {api_key_env})",
                "api_key_env",
            )
        api_key = "EMPTY"
    yield Endpoint(_settings(config, config.base_url, api_key, first_format="json_schema"))


def _settings(config, base_url: str, api_key: str, first_format: str, reached: bool = False) -> TeacherSettings:
    return TeacherSettings(
        base_url=base_url,
        model=config.model,
        api_key=api_key,
        key_env=config.api_key_env,
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
