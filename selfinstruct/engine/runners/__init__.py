"""How a job's requests travel: one interface (`base.Runner.run(job) -> StopReason`), the
runner chosen here and nowhere else.

    online.py  OnlineRunner: HTTP, many requests at once, within the rate limits and the budget
    multi.py   MultiRunner: the online runner over several endpoints, each at its own adaptive pace
    batch.py   BatchRunner: the provider's Batch API, in rounds, at its batch price
"""

from __future__ import annotations

from .base import Runner


def runner_for(config, endpoints: list, progress: bool = True) -> Runner:
    """The runner for a job's `config` (a `JobConfig`) and its `teacher.endpoint.Endpoint`s."""
    if config.batch:  # on one endpoint: the config refuses a batch with several
        from .batch import BatchRunner

        return BatchRunner(endpoints[0].settings, progress=progress, poll_s=config.batch_poll_s)
    if len(endpoints) > 1:
        from .multi import MultiRunner

        return MultiRunner(endpoints, progress=progress)
    from .online import OnlineRunner

    (endpoint,) = endpoints
    return OnlineRunner(
        endpoint.settings, progress=progress, client=endpoint.client, watch=endpoint.watch, name=endpoint.name
    )
