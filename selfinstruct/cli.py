"""The `selfinstruct` command line: thin click wrappers over the library.

Each command fills in a typed config from its flags and calls one library function;
`SelfInstructError` becomes a clean one-line error, and so does a failed file operation. The
teacher jobs' commands are built from the task registry (`tasks/registry.py`), their options
from the fields of the job's config: its defaults and descriptions are the flags'.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Literal, Union, get_args, get_origin

import click

from .errors import SelfInstructError, SettingError
from .tasks.registry import MODULES, TaskEntry, task_entry

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .engine.config import JobConfig


def user_errors(fn):
    """Show a SelfInstructError or an OSError as a one-line click error instead of a traceback; a
    setting the library names by its field is named by the flag that sets it."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SettingError as e:
            raise click.ClickException(e.render(_flag_of(click.get_current_context()))) from e
        except SelfInstructError as e:
            raise click.ClickException(str(e)) from e
        except OSError as e:  # an unwritable directory, a full disk: what the user can fix, so no traceback
            raise click.ClickException(_os_error(e)) from e

    return wrapper


def _os_error(e: OSError) -> str:
    """'PATH: cause'. mkdir reports a file in the way as 'File exists', which reads as no problem."""
    if e.filename is None:
        return str(e)
    if isinstance(e, FileExistsError) and not os.path.isdir(e.filename):
        return f"{e.filename}: exists and is not a directory"
    return f"{e.filename}: {e.strerror}"


def _flag_of(ctx: click.Context):
    flags = {p.name: max(p.opts, key=len) for p in ctx.command.params if isinstance(p, click.Option)}
    return lambda field: flags.get(field, repr(field))


class Commands(click.Group):
    """The commands, the teacher jobs' among them: those are built from the task registry when
    one is used (a task module brings the engine, which the other commands do without)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *MODULES, "eval"])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "eval":  # built from its config's fields, like the teacher jobs'
            return eval_command()
        return teacher_command(task_entry(name)) if name in MODULES else super().get_command(ctx, name)


@click.group(cls=Commands)
@click.version_option(package_name="selfinstruct")
def main():
    """Make Alpaca-style instruction datasets, clean them, export them, train on them."""


# ---------------------------------------------------------------- teacher jobs (generate, answer, judge...)

# JobConfig fields whose flag is not --field-name
TEACHER_FLAGS = {"batch_poll_s": ("--batch-poll",)}


def teacher_command(entry: TaskEntry) -> click.Command:
    """`selfinstruct NAME` for a registered task: an option for each field of its config (its own
    fields first, then the teacher's), `--out`, `--overwrite`, `--quiet` and `--dry-run`."""
    from .engine.config import JobConfig

    own = [name for name in entry.config.model_fields if name not in JobConfig.model_fields]
    params: list[click.Parameter] = []
    if entry.argument is not None:
        params.append(click.Argument([entry.argument], type=click.Path(exists=True)))
    out = Path("outputs") / entry.default_out.format(model="<model>")
    params.append(click.Option(["--out"], type=click.Path(file_okay=False), help=f"Run directory [default: {out}]."))
    for name in [*own, *JobConfig.model_fields]:
        if name != entry.argument:
            flags = entry.flags.get(name) or TEACHER_FLAGS.get(name) or (f"--{name.replace('_', '-')}",)
            params.append(field_option(entry.config, name, flags, file=name in entry.files))
    params += _run_options()

    @user_errors
    def command(out, dry_run, overwrite, quiet, **settings):
        _teacher_job(entry, settings, out, dry_run=dry_run, overwrite=overwrite, quiet=quiet)

    return click.Command(entry.name, callback=command, params=params, help=entry.about)


def _run_options() -> list[click.Option]:
    overwrite = "Start over in an existing run directory with other settings (its ledger is kept aside, its paid answers not reused)."
    return [
        click.Option(["--overwrite"], is_flag=True, help=overwrite),
        click.Option(["--quiet"], is_flag=True, help="No progress bar."),
        click.Option(["--dry-run"], is_flag=True, help="Print the estimated cost of the run and exit."),
    ]


def field_option(config: type[BaseModel], name: str, flags: tuple[str, ...], *, file: bool = False) -> click.Option:
    """An option that sets the config field `name`: its type from the field's, its help the field's
    description and the config's default. Not given, it is None, and the config's default applies."""
    field = config.model_fields[name]
    kind = _click_type(field.annotation)
    if kind is bool:
        return click.Option([*flags, name], is_flag=True, default=None, help=field.description)
    default = _default_text(config, name)
    help = f"{field.description}  [default: {default}]" if default is not None else field.description
    if list[kind] in get_args(field.annotation):  # `str | list[str]`: the flag may be given several times
        return click.Option([*flags, name], type=kind, multiple=True, callback=_one_or_many, help=help)
    return click.Option(
        [*flags, name], type=click.Path(exists=True, dir_okay=False) if file else kind, default=None, help=help
    )


def _one_or_many(ctx, param, values: tuple):
    """A repeatable flag's values as its field takes them: None (not given), one value, or a list."""
    return None if not values else values[0] if len(values) == 1 else list(values)


def _click_type(annotation):
    """`int | None` -> int, `Literal["a", "b"] | None` -> a choice of "a" and "b"."""
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    return click.Choice(get_args(annotation)) if get_origin(annotation) is Literal else annotation


def _default_text(config: type[JobConfig], name: str) -> str | None:
    """A field's default as help shows it; a field left to None may take the embedded or an API
    teacher's default (`3072; embedded: 1024`)."""
    default = config.model_fields[name].default
    if default is not None:
        return str(default)
    api, embedded = config.API_DEFAULTS.get(name), config.EMBEDDED_DEFAULTS.get(name)
    if api == embedded:
        return None if api is None else str(api)
    parts = [str(api)] if api is not None else []
    if embedded is not None:
        parts.append(f"embedded: {embedded}")
    return "; ".join(parts)


def _teacher_job(
    entry: TaskEntry, settings: dict, out: str | None, *, dry_run: bool, overwrite: bool, quiet: bool
) -> None:
    """The body of every teacher job command: its settings validated once, then a dry-run
    estimate, or the run and the lines that sum it up."""
    from .engine.config import make_config

    config = make_config(entry.config, **settings).resolved()
    out = Path(out or Path("outputs") / entry.default_out.format(model=config.model.replace("/", "_")))
    if dry_run:
        _print_estimate(entry.estimate(config, out if out.exists() else None), config.batch)
        return
    result = _run_job(lambda: entry.run(config, out, overwrite=overwrite, progress=not quiet), out, config)
    _echo_result(result, entry.kept.format(**config.model_dump()))
    for line in entry.summary(result) if entry.summary else ():
        click.echo(line)


def _run_job(run, out: Path, config: JobConfig):
    """Run a job, turning Ctrl-C into the message that says how to resume; with batches
    running at the provider, ask whether to cancel them."""
    from .engine.runners.batch import BatchesLeftRunning

    try:
        return run()
    except BatchesLeftRunning as e:
        batches = ", ".join(e.batch_ids)
        if click.get_text_stream("stdin").isatty() and click.confirm(
            f"\nCancel batch {batches} at the provider? What it finished is billed and collected on the next run, "
            "the rest is not sent",
            default=False,
        ):
            from .engine.runners.batch import cancel_batches

            cancel_batches(config, e.batch_ids)
            raise click.ClickException(
                f"Cancelled {batches}. The run is saved in {out}; rerun the same command to go on."
            ) from None
        raise click.ClickException(
            f"Interrupted. Batch {batches} goes on at the provider; rerun the same command to collect it (the run is saved in {out})."
        ) from None
    except KeyboardInterrupt:
        raise click.ClickException(
            f"Interrupted. The run is saved in {out}; rerun the same command to resume."
        ) from None


def _echo_result(result, noun: str) -> None:
    stats, cost = result.stats, result.cost
    rate = stats["acceptance_rate"]
    target = f"/{stats['target']}" if stats.get("target") is not None else ""
    click.echo(
        f"{result.stop_reason.value}: {result.accepted}{target} {noun} "
        f"({'n/a' if rate is None else f'{rate:.1%}'} of {stats['candidates']} candidates, "
        f"{stats['responses']} answers)"
    )
    click.echo(
        f"tokens: {cost['prompt_tokens']} prompt, {cost['completion_tokens']} completion; cost {_dollars(cost['cost_usd'])}"
    )
    click.echo(f"records: {result.out_dir / 'data.jsonl'}")
    if stats.get("surplus"):
        click.echo(
            f"surplus: {stats['surplus']} more record{'s' if stats['surplus'] != 1 else ''}, paid for and kept past the target in "
            f"{result.out_dir / 'surplus.jsonl'}; a higher --num-instructions takes them first"
        )


def _dollars(value: float | None) -> str:
    from .engine.costs import usd

    return usd(value) + (" (no price for this model)" if value is None else "")


def _print_estimate(estimate, batch: bool) -> None:
    click.echo(f"model: {estimate.model} ({estimate.basis}{'; at the Batch API price' if batch else ''})")
    click.echo(
        f"records still wanted: {estimate.records_wanted}, about {estimate.requests} request{'s' if estimate.requests != 1 else ''}"
    )
    click.echo(
        f"per request: ~{estimate.prompt_tokens_per_request} prompt + ~{estimate.completion_tokens_per_request} "
        f"completion tokens, ~{estimate.accepted_per_request:g} accepted"
        + (f" (assumed: {estimate.yield_note})" if estimate.yield_note else "")
    )
    spread = ""
    if estimate.expected_usd_range:
        (least, most), (low, high) = estimate.accepted_per_request_range, estimate.expected_usd_range
        spread = f" (range: {_dollars(low)} at {most:g} accepted per request to {_dollars(high)} at {least:g})"
    click.echo(
        f"expected cost: {_dollars(estimate.expected_usd)}{spread}; worst case (every answer at max tokens): {_dollars(estimate.worst_case_usd)}"
    )
    if estimate.endpoint_usd:  # several endpoints: the figures above are at the dearest's price
        shares = ", ".join(f"{name} {_dollars(usd)}" for name, usd in estimate.endpoint_usd.items())
        click.echo(
            f"by endpoint, if every request went there: {shares} (the figures above are at the dearest "
            "endpoint's price, which the cost cap reserves)"
        )
    cap = f"--max-cost {_dollars(estimate.max_cost_usd)} cuts the run short"
    if estimate.records_within_cap is not None:
        click.echo(
            f"{cap}: it pays for about {estimate.records_within_cap:,} of the {estimate.records_wanted:,} records wanted"
        )
    elif estimate.cap_short_below is not None:
        click.echo(f"{cap} if fewer than {estimate.cap_short_below:g} records are accepted per request")


# ---------------------------------------------------------------- eval


def eval_command() -> click.Command:
    """`selfinstruct eval SET [MODEL...]`: an option for each field of `EvalConfig`."""
    from .engine.config import JobConfig
    from .eval.run import EvalConfig

    own = [name for name in EvalConfig.model_fields if name not in JobConfig.model_fields and name != "set"]
    params: list[click.Parameter] = [
        click.Argument(["set"], type=click.Path(exists=True)),
        click.Argument(["models"], nargs=-1),
        click.Option(["--out"], type=click.Path(file_okay=False), help="Eval directory [default: outputs/eval-SET]."),
        click.Option(["--compare"], is_flag=True, help="Several models in one table: `eval SET --compare A B`."),
    ]
    for name in [*own, *JobConfig.model_fields]:
        params.append(field_option(EvalConfig, name, TEACHER_FLAGS.get(name) or (f"--{name.replace('_', '-')}",)))
    params += _run_options()

    @user_errors
    def command(models, out, compare, dry_run, overwrite, quiet, **settings):
        _evaluate(settings, list(models), out, compare=compare, dry_run=dry_run, overwrite=overwrite, quiet=quiet)

    about = """Score models on an evaluation set: verified accuracy, pairwise win rate, imitation NLL.

    MODEL is NAME@URL (an OpenAI-compatible endpoint), `embedded`, or a local checkpoint that
    `finetune` wrote (served on loopback meanwhile); or name one with --base-url and --model.
    SET is any file or run directory with `answer` / `solution` or `output`. Each model answers
    on the job engine: rerunning the same command resumes, and nothing is asked twice.
    """
    return click.Command("eval", callback=command, params=params, help=about)


def _evaluate(settings: dict, models: list[str], out, *, compare: bool, dry_run: bool, overwrite: bool, quiet: bool):
    from .engine.config import make_config
    from .eval.run import EvalConfig, estimate_eval_cost, evaluate

    config = make_config(EvalConfig, **settings)
    if compare and len(models) < 2:
        raise SettingError("{compare} needs two models or more: eval SET --compare A B", "compare")
    out = Path(out or Path("outputs") / f"eval-{Path(config.set).stem}")
    if dry_run:
        for what, estimate in estimate_eval_cost(config, models, out):
            click.echo(f"{what}:")
            _print_estimate(estimate, config.batch)
        return
    result = evaluate(config, models, out, progress=not quiet, overwrite=overwrite)
    click.echo(result.table)
    for line in result.notes:
        click.echo(line)
    click.echo(f"scores: {out / 'eval.json'}")


# ---------------------------------------------------------------- filter


def _list_rules(ctx, _param, value):
    if not value or ctx.resilient_parsing:
        return
    from .clean.rules import RULES

    for name, rule in sorted(RULES.items()):
        click.echo(f"{name:22} {rule.reason}")
    ctx.exit()


@main.command("filter")
@click.argument("src", type=click.Path(exists=True))
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for data.jsonl, rejected.jsonl, stats.json.",
)
@click.option(
    "--preset", help="Filter preset name (alpaca, default, ...) or .toml path [default; judge with --min-score]."
)
@click.option(
    "--min-score",
    type=float,
    help="Re-select records a judge rated (`selfinstruct judge`): keep those scored at least this; asks nothing.",
)
@click.option(
    "--decontaminate",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Benchmark file (JSONL/JSON prompts) to decontaminate against; repeatable.",
)
@click.option(
    "--lsh-storage", help="redis://HOST:PORT[/DB][?index=NAME]: share the duplicate index with other workers."
)
@click.option(
    "--list-rules",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_rules,
    help="List the rules presets can use, and exit.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: the same decisions on a Ray cluster, the records streamed through it, so a JSONL input may be "
    "larger than this machine's memory (pip install 'selfinstruct[ray]').",
)
@click.option("--ray-address", envvar="RAY_ADDRESS", help="--engine ray: join this cluster [a local one].")
@click.option("--num-cpus", type=click.IntRange(min=1), help="--engine ray: cores of the local cluster [all].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def filter_command(src, out, preset, min_score, decontaminate, lsh_storage, engine, ray_address, num_cpus, quiet):
    """Clean an instruction dataset: rules, exact and near-duplicates, decontamination.

    SRC is Alpaca JSON, JSONL (either gzipped), Parquet, a run directory or a saved Hugging Face dataset. With
    --min-score, SRC is a judge run (its kept and low-scored records) or any scored dataset.
    """
    from .clean import clean_dataset

    result = clean_dataset(
        src,
        out,
        preset=preset,
        decontaminate=decontaminate,
        lsh_storage=lsh_storage,
        min_score=min_score,
        progress=not quiet,
        engine=engine,
        ray_address=ray_address,
        num_cpus=num_cpus,
    )
    stats = result.stats
    reasons = ", ".join(f"{reason} {count}" for reason, count in stats["rejected"].items()) or "none"
    click.echo(f"kept {stats['kept']} of {stats['seen']} records in {stats['seconds']} s; rejected: {reasons}")
    if stats["fixed"]:
        click.echo("repaired: " + ", ".join(f"{rule} {count}" for rule, count in stats["fixed"].items()))
    click.echo(f"records: {result.out_dir / 'data.jsonl'}")


# ---------------------------------------------------------------- export and cost


@main.command()
@click.argument("src", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--format",
    type=click.Choice(["alpaca", "jsonl", "sharegpt", "openai", "messages", "dpo"]),
    help="Row shape [alpaca for a .json file, else jsonl]; dpo: preference pairs from judged answers.",
)
@click.option("--chat", is_flag=True, default=None, help="dpo: trl's conversational rows (message lists).")
@click.option("--min-margin", type=float, help="dpo: least score difference of chosen over rejected [1].")
@click.option(
    "--to",
    type=click.Path(path_type=Path),
    help="A .json, .jsonl or .parquet file, or a directory (datasets.save_to_disk).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --to (an earlier export) and its card.")
@click.option("--push-to-hub", metavar="OWNER/NAME", help="Publish to this Hub dataset repository (token: HF_TOKEN).")
@click.option("--public", is_flag=True, help="Create the Hub repository public [private].")
@click.option(
    "--split-test", type=float, help="Share of records in a test split, e.g. 0.05 (datasets directory or Hub)."
)
@click.option("--seed", type=int, help="Seed of the train/test shuffle [42].")
@click.option("--system-prompt", help="System turn of the chat formats [none].")
@click.option(
    "--reasoning",
    type=click.Choice(["inline", "field", "drop"]),
    help="Reasoning traces: inline in the output (<think>...</think>), a column of their own, or dropped [field].",
)
@click.option("--license", help="License in the card's header [other: the teacher's terms apply].")
@click.option("--language", help="Language code in the card's header [en].")
@click.option("--name", help="Title of the dataset card [the repository or source name].")
@click.option(
    "--run-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The generate run the records came from, for the card, when SRC is a filter output or a file.",
)
@user_errors
def export(src, **options):
    """Export records for training, with a dataset card.

    SRC is a run or filter directory, a JSONL or Alpaca JSON file. The card goes inside a
    datasets directory (README.md), beside a file (FILE.README.md), and to the Hub repository.
    With --format dpo, SRC is one or more judged answer runs, pooled: one pair per prompt.
    """
    from .export.exporter import export_dataset, make_options

    result = export_dataset(list(src), make_options(**options))
    if result.pairing:
        from .export.pairs import describe_drops

        click.echo(describe_drops(result.pairing))
    if result.written:
        click.echo(f"{result.records} records in {result.format} rows: {result.written} (card: {result.card})")
    if result.hub_url:
        click.echo(f"{result.records} records in {result.format} rows: {result.hub_url}")


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The merged run directory.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier merge in --out.")
@user_errors
def merge(run_dirs, out, overwrite):
    """Combine the run directories of one run's workers (--shard i/N) into one run directory:
    the records with the duplicates across shards removed, one ledger, cost report and card."""
    from .merge import merge as merge_runs

    result = merge_runs(list(run_dirs), out, overwrite=overwrite)
    shards = ", ".join(
        f"{label}: {figures['records']} records, {figures['duplicate_across_shards']} duplicates"
        for label, figures in result.stats["shards"].items()
    )
    click.echo(
        f"{result.records} records ({result.surplus} surplus) in {result.out_dir}, {result.duplicates} duplicates "
        f"across shards removed ({shards})"
    )


@main.command()
@click.argument("src", type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Also draw the 52K projection as a PNG bar chart.")
@user_errors
def cost(src, as_json, plot):
    """Tokens and dollars of a run, from its ledger, and what 52,000 records would cost per model."""
    from .report.cost import cost_report
    from .report.table import render_table

    report = cost_report(src)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else render_table(report), nl=as_json)
    if plot:
        from .report.plot import plot_projection

        click.echo(f"chart: {plot_projection(report, plot)}", err=True)


@main.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@user_errors
def batches(src, as_json):
    """List the Batch API batches of a run: status, requests, answers and their cost."""
    from .engine.costs import usd
    from .report.batches import batch_rows

    rows = batch_rows(src)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"{src}: no batches (the run did not use --batch)")
    for row in rows:
        click.echo(
            f"{row['key']}  {row['batch_id'] or '(not created)':24} {row['status']:10} {row['answered']:>6}/{row['requests']:<6} "
            f"answered  {usd(row['cost_usd'])}"
        )


@main.command("report")
@click.argument("src", type=click.Path(exists=True))
@click.option(
    "--out", type=click.Path(dir_okay=False), help="HTML file to write [SRC's name + -report.html, beside SRC]."
)
@click.option("--compare", type=click.Path(exists=True), help="A second run or dataset, shown side by side.")
@click.option(
    "--seeds",
    type=click.Path(exists=True, dir_okay=False),
    help="Seed tasks for the similarity chart [the run's, else the bundled ones].",
)
@user_errors
def report_command(src, out, compare, seeds):
    """One self-contained HTML page about a dataset: verb-noun chart, lengths, diversity, funnel, cost, records.

    SRC is a run or filter directory, or any file `filter` reads. The page opens offline.
    """
    from .report.page import build_report, default_report_path

    result = build_report(src, out or default_report_path(src), compare=compare, seeds=seeds)
    records = " and ".join(f"{n:,}" for n in result.records)
    click.echo(f"report: {result.path} ({result.bytes / 1e6:.1f} MB, {records} records, {result.seconds:.1f} s)")


# ---------------------------------------------------------------- teacher


@main.group()
def teacher():
    """The embedded teacher (SmolLM2-135M-Instruct on llama.cpp)."""


@teacher.command("serve")
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--n-ctx", type=int, default=4096, show_default=True, help="Context length.")
@click.option("--gguf", type=click.Path(exists=True, dir_okay=False), help="Another GGUF model to serve.")
@click.option("--parent-pid", type=int, hidden=True, help="Exit when this process is gone.")
@user_errors
def teacher_serve(port, host, n_ctx, gguf, parent_pid):
    """Serve the embedded teacher on an OpenAI-compatible endpoint for other tools."""
    from .teacher.embedded import MODEL_ALIAS, serve

    if parent_pid is None:
        click.echo(f"Serving {MODEL_ALIAS} at http://{host}:{port}/v1 (Ctrl-C stops)", err=True)
    serve(gguf=Path(gguf) if gguf else None, host=host, port=port, n_ctx=n_ctx, parent_pid=parent_pid)


@teacher.command("check")
@user_errors
def teacher_check():
    """Start the embedded teacher, time a short answer, and show what its llama.cpp was built for."""
    import tempfile

    from .teacher.embedded import check

    with tempfile.TemporaryDirectory() as folder:
        result = check(log_path=Path(folder) / "teacher.log")
    click.echo(f"llama.cpp: {result.build}")
    click.echo(
        f"embedded teacher: OK, {result.completion_tokens} tokens in {result.seconds:.2f} s ({result.tokens_per_s:.0f} tokens/s)"
    )


# ---------------------------------------------------------------- finetune


@main.command()
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True),
    help="Records: run directory, JSONL, Alpaca JSON, Parquet or saved dataset; --method dpo: preference pairs.",
)
@click.option(
    "--model",
    required=True,
    help="Base model: local directory, Hub id, .gguf file, or smollm2-135m (the bundled GGUF).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for the adapter (or model), tokenizer, card and metrics.",
)
@click.option(
    "--method",
    type=click.Choice(["lora", "qlora", "full", "dpo"]),
    help="[default: the recipe's; lora when no recipe is named]",
)
@click.option(
    "--recipe", help="Recipe name or .toml path [default by method: lora-7b-24gb, qlora-7b-16gb, alpaca-full-fsdp]."
)
@click.option(
    "--template",
    type=click.Choice(["alpaca", "chat"]),
    help="Alpaca's prompt template or the model's chat template [recipe's: alpaca].",
)
@click.option("--merge", is_flag=True, help="Also write OUT/merged: the base model with the adapter merged in.")
@click.option("--epochs", type=float)
@click.option("--max-steps", type=int, help="Stop after this many optimizer steps (overrides --epochs).")
@click.option("--learning-rate", "--lr", "learning_rate", type=float)
@click.option("--batch-size", "per_device_batch_size", type=int, help="Rows per GPU per forward pass.")
@click.option(
    "--global-batch-size", type=int, help="Rows per optimizer step over all GPUs; sets gradient accumulation."
)
@click.option("--max-length", type=int, help="Tokens per example; with packing, per packed row.")
@click.option("--lora-r", type=int, help="LoRA rank.")
@click.option("--beta", type=float, help="DPO's beta: how far the student may move from the reference.")
@click.option("--packing/--no-packing", default=None)
@click.option("--gradient-checkpointing/--no-gradient-checkpointing", default=None)
@click.option("--seed", type=int)
@click.option(
    "--eval",
    "eval_set",
    type=click.Path(exists=True),
    help="Then evaluate the student (and a local base) on this set: `selfinstruct eval`, into OUT/eval and the card.",
)
@user_errors
def finetune(data, model, out_dir, recipe, merge, lora_r, beta, eval_set, **fields):
    """Train a student on instruction records (LoRA, QLoRA, full) or preference pairs (DPO); needs [train].

    Flags override the recipe's fields. On several GPUs, launch with accelerate:

    \b
    accelerate launch --config_file recipes/accelerate_fsdp.yaml \\
        -m selfinstruct finetune --recipe alpaca-full-fsdp ...
    """
    from .finetune import finetune as run_finetune
    from .finetune import load_recipe

    overrides = {name: value for name, value in fields.items() if value is not None}
    if lora_r is not None:
        overrides["lora.r"] = lora_r
    if beta is not None:
        overrides["dpo.beta"] = beta
    if eval_set is not None:
        from .eval.sets import load_set

        load_set(eval_set)  # a set that cannot be read fails now, not after the training
    result = run_finetune(data, model, out_dir, load_recipe(recipe, overrides), merge=merge)
    if result is None:  # not the main process of a multi-GPU run
        return
    loss = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    click.echo(f"{result.steps} steps; loss {loss(result.first_loss)} -> {loss(result.last_loss)}")
    click.echo(f"student: {result.out}" + (f" (merged model: {result.merged})" if result.merged else ""))
    if eval_set is not None:
        from .eval.finetuned import evaluate_finetuned

        click.echo(evaluate_finetuned(Path(result.out), model, eval_set, merged=result.merged).table)
