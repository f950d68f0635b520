"""The job engine: a task's requests sent, paid for, answered and turned into records in a run
directory that resumes from any moment. A task (`selfinstruct/tasks/`) says what to ask and how
to read an answer; everything else is here.

In the order a run goes through it, with the names other packages import from each module:

    config.py      JobConfig: the settings every teacher job shares (teacher, limits, cost cap)
    endpoints.py   EndpointSpec: the endpoints a run may ask (--base-url repeated, --endpoints FILE)
    task.py        Task, ItemTask: what a job asks (Request) and what an answer gives (Parsed)
    run.py         run_job(task, config, out) -> JobResult: the call behind every teacher command;
                   run_task(make_task, config, out): the body of each task's public function
    rundir.py      RunDir: the run directory's lock, identity, format and migration
    replay.py      a resume: the ledger (and the checkpoint) back into the job
    ledger.py      ledger.jsonl, the source of truth: every request and answer with its money (load_ledger)
    job.py         Job: what to ask next, the cost cap, the stop policies (StopPolicy, StopReason);
                   answers into records
    work.py        which work items are in flight, answered or left
    state.py       JobState: the job's figures, changed only through its methods
    runners/       how requests travel, one interface chosen in runners.runner_for: online.py over
                   HTTP, many at once; multi.py over several endpoints, each at its own pace;
                   batch.py through a provider's Batch API
    progress.py    the progress bar
    checkpoint.py  checkpoint.json: how much of the ledger the record files already hold
    stats_json.py  stats.json;  costs.py: cost.json and CostSummary, what a run cost (usd)
    estimate.py    --dry-run: what a job will cost before any request is sent
    view.py        RunView: the read side of a run directory, for filter, export, report and cost

Each name is imported from its module (`from selfinstruct.engine.run import run_job`): this file
imports nothing, so reading a ledger or a cost (`cost`, a dataset card) does not bring the
cleaner and the teacher along.
"""
