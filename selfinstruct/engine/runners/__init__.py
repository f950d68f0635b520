"""How a job's requests travel: one interface (`base.Runner.run(job) -> StopReason`), the
runner chosen here and nowhere else.

    online.py  OnlineRunner: HTTP, many requests at once, within the rate limits and the budget
    batch.py   BatchRunner: the provider's Batch API, in rounds, at its batch price
"""

from __future__ import annotations

from .base import Runner


def runner_for(config, endpoint, progress: bool = True) -> Runner:
    """The runner for a job's `config` (a `JobConfig`) and its `teacher.endpoint.Endpoint`."""
    if config.batch:
        from .batch import BatchRunner

        return BatchRunner(endpoint.settings, progress=progress, poll_s=config.batch_poll_s)
    from .online import OnlineRunner

    return OnlineRunner(endpoint.settings, progress=progress, client=endpoint.client, watch=endpoint.watch)
