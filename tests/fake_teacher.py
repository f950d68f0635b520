"""An in-process teacher for engine tests: no HTTP, the answer to each request decided by its id.

    teacher = FakeTeacher(lambda request_id: tasks_answer(5, request_id))
    generate(config, out, teacher=teacher)      # run_job's `teacher=`: the TeacherClient interface
    teacher.calls                               # request ids in the order they were asked

An answer is a content string, or an exception to raise (RequestFailed, TeacherRefused).
`delay(request_id)` gives how long the answer takes, so tests can order completions.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable

from fake_openai import make_task

from selfinstruct.teacher.client import TeacherSettings
from selfinstruct.teacher.dialect import Ask, Completion, Usage


def tasks_answer(n: int, request_id: str) -> str:
    """n distinct tasks, the same for the same request id."""
    rng = random.Random(request_id)
    return json.dumps({"tasks": [make_task(rng) for _ in range(n)]})


class FakeTeacher:
    def __init__(
        self,
        answer: Callable[[str], str | BaseException],
        delay: Callable[[str], float] | float = 0.0,
        model: str = "fake-teacher",
    ):
        self.answer = answer
        self.delay = delay if callable(delay) else (lambda _: delay)
        self.settings = TeacherSettings(base_url="in-process", model=model, api_key="")
        self.calls: list[str] = []

    async def complete(self, ask: Ask, request_id: str) -> Completion:
        self.calls.append(request_id)
        await asyncio.sleep(self.delay(request_id))
        answer = self.answer(request_id)
        if isinstance(answer, BaseException):
            raise answer
        output_format = "json" if ask.schema is not None else "text"
        return Completion(
            content=answer,
            finish_reason="stop",
            usage=Usage(prompt_tokens=100, completion_tokens=len(answer) // 4),
            output_format=output_format,
            response_format="json_schema" if ask.schema is not None else "text",
            messages=ask.messages(output_format),
            latency_s=0.0,
            attempts=1,
        )

    async def close(self) -> None:
        pass
