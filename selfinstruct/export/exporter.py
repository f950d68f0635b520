"""`export_dataset(src, options)`: records -> rows of a format -> a file, a directory, the Hub.

    options = make_options(format="messages", to="out/train.parquet", push_to_hub="me/my-data")
    export_dataset("outputs/run", options)
    export_dataset(["outputs/a-judged", "outputs/b-judged"], make_options(format="dpo", to="pairs.jsonl"))

`dpo` makes rows of prompts, not of records: one preference pair per prompt from rated answers
(`pairs.py`), the answers of several judged runs pooled.

Every export writes a dataset card: beside a file as FILE.README.md, inside a datasets
directory as README.md, and as the Hub repository's README.md. An existing destination is
replaced only with `overwrite`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import SelfInstructError, SettingError, from_settings
from ..records import read_records
from ..runfiles import folder_of
from .card import CardInfo, check_card_path, render_dataset_card, write_card
from .destinations import (
    DATASETS,
    JSON,
    JSONL,
    PARQUET,
    card_path,
    check_destination,
    destination_kind,
    split_sizes,
    to_dataset,
    write_rows,
)
from .formats import FORMATS, with_reasoning
from .hub import REPO_ID, hub_token, push
from .pairs import DEFAULT_MIN_MARGIN, PairStats, describe_drops, make_pairs, pair_row, scored_answers
from .provenance import gather

PREFERENCE = "dpo"  # the format whose rows are pairs of records, not records

LOAD_CODE = {
    DATASETS: 'from datasets import load_from_disk\n\ndataset = load_from_disk("{path}")',
    JSON: 'from datasets import load_dataset\n\ndataset = load_dataset("json", data_files="{name}")',
    JSONL: 'from datasets import load_dataset\n\ndataset = load_dataset("json", data_files="{name}")',
    PARQUET: 'from datasets import load_dataset\n\ndataset = load_dataset("parquet", data_files="{name}")',
    "hub": 'from datasets import load_dataset\n\ndataset = load_dataset("{name}")',
}


class ExportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["alpaca", "jsonl", "sharegpt", "openai", "messages", "dpo"] | None = Field(
        None, description="row shape; None = alpaca for a .json file, jsonl otherwise"
    )
    chat: bool = Field(False, description="dpo: prompt and answers as message lists (trl's conversational format)")
    min_margin: float = Field(
        DEFAULT_MIN_MARGIN, gt=0, le=5, description="dpo: the least score difference between chosen and rejected"
    )
    to: Path | None = Field(None, description=".json / .jsonl / .parquet file, or a datasets directory")
    overwrite: bool = Field(False, description="replace an existing destination (an earlier export)")
    push_to_hub: str | None = Field(None, description="OWNER/NAME of a Hub dataset repository")
    public: bool = False
    split_test: float | None = Field(None, gt=0, lt=1, description="share of records in a test split")
    seed: int = Field(42, description="shuffles the train/test split")
    system_prompt: str | None = None
    reasoning: Literal["inline", "field", "drop"] = Field(
        "field",
        description="a reasoning trace: inline in the output (<think>...</think>), a column of its own, or dropped",
    )
    license: str = "other"
    language: str = "en"
    name: str | None = Field(None, description="the card's title")
    run_dir: Path | None = Field(None, description="the run the records came from, when the source is not it")

    @property
    def format_name(self) -> str:
        if self.format:
            return self.format
        return "alpaca" if self.to is not None and destination_kind(self.to) == JSON else "jsonl"

    @model_validator(mode="after")
    def _consistent(self):
        # SelfInstructError passes through pydantic untouched: these messages are final.
        kind = destination_kind(self.to) if self.to is not None else None
        preference = self.format_name == PREFERENCE
        fmt = FORMATS.get(self.format_name)
        if kind is None and self.push_to_hub is None:
            raise SettingError(
                "nowhere to export to: set {to} (a file or directory), {push_to_hub} (OWNER/NAME), or both",
                "to",
                "push_to_hub",
            )
        if self.push_to_hub is not None and not REPO_ID.match(self.push_to_hub):
            raise SettingError(
                f"{{push_to_hub}} {self.push_to_hub!r}: expected OWNER/NAME, e.g. alice/my-instructions", "push_to_hub"
            )
        if self.public and self.push_to_hub is None:
            raise SettingError("{public} applies to {push_to_hub} only", "public", "push_to_hub")
        for name in ("chat", "min_margin"):
            if name in self.model_fields_set and not preference:
                raise SettingError(f"{{{name}}} applies to {{format}} dpo only", name, "format")
        if self.system_prompt and not (self.chat if preference else fmt.chat):
            raise SettingError(
                "{system_prompt} applies to the chat formats (sharegpt, openai, messages, dpo with {chat}), "
                f"not {self.format_name}",
                "system_prompt",
            )
        if fmt is not None and fmt.only_jsonl and (kind != JSONL or self.push_to_hub):
            raise SettingError(
                "{format} openai writes OpenAI's fine-tuning file, which is JSONL: use a .jsonl destination "
                "(for Parquet, a datasets directory or the Hub, {format} messages has the same rows)",
                "format",
            )
        if self.split_test is not None and kind in (JSON, JSONL, PARQUET):
            raise SettingError(
                "{split_test} makes train/test splits for a datasets directory or the Hub, not one file", "split_test"
            )
        return self


def make_options(**settings) -> ExportOptions:
    """Options from CLI flags (None = not given), with a validation error as one clear message."""
    return from_settings(ExportOptions, "option", "options", **settings)


@dataclass
class ExportResult:
    records: int  # rows written: records, or preference pairs
    format: str
    written: Path | None
    card: Path | None
    hub_url: str | None
    pairing: PairStats | None = None  # dpo: how the pairs were made


def export_dataset(src: str | Path | list[str | Path], options: ExportOptions) -> ExportResult:
    """Export the records of `src` (dpo: the rated answers of one or more sources, pooled)."""
    sources = [src] if isinstance(src, (str, Path)) else list(src)
    preference = options.format_name == PREFERENCE
    if len(sources) != 1 and not preference:
        raise SettingError(
            f"{len(sources)} sources: only {{format}} dpo pools several (the answers of several judged runs)", "format"
        )
    if options.to is not None:  # before the records are read, and long before anything is written
        check_destination(options.to, options.overwrite)
        check_card_path(card_path(options.to))
    records = scored_answers(sources) if preference else read_records(sources[0])
    if not records:
        raise SelfInstructError(f"{sources[0]}: no records to export")
    fmt = FORMATS.get(options.format_name)
    traced = sum("reasoning" in record for record in records)
    if traced and options.reasoning == "field" and (preference or fmt.only_jsonl):
        where = "trl's preference rows have" if preference else "OpenAI's fine-tuning file has"
        raise SettingError(
            f"{traced} records carry a reasoning trace, and {where} no field for it: set {{reasoning}} to inline or drop",
            "reasoning",
        )
    records = [with_reasoning(record, options.reasoning) for record in records]
    pairing = None
    if preference:
        pairs, pairing = make_pairs(records, options.min_margin, sources)
        if not pairs:
            raise SelfInstructError(f"{sources[0]}: no preference pairs: {describe_drops(pairing)}")
        rows = [pair_row(pair, options.chat, options.system_prompt) for pair in pairs]
    else:
        rows = [fmt.to_row(record, options.system_prompt) for record in records]
    facts = gather(sources[0], records, options.run_dir)
    name = options.name or _default_name(sources[0], options)
    card = lambda load_code, splits: render_dataset_card(  # noqa: E731
        facts,
        CardInfo(
            name,
            options.format_name,
            load_code,
            options.license,
            options.language,
            options.system_prompt,
            splits,
            reasoning=options.reasoning if traced else None,
            pairing=pairing,
            chat=options.chat,
        ),
    )
    token = hub_token() if options.push_to_hub is not None else None  # before anything is written
    card_file = hub_url = None
    if options.to is not None:
        card_file = card_path(options.to)
        splits = write_rows(rows, options.to, options.split_test, options.seed)
        kind = destination_kind(options.to)
        write_card(card_file, card(LOAD_CODE[kind].format(path=options.to, name=options.to.name), splits))
    if options.push_to_hub is not None:
        dataset = to_dataset(rows, options.split_test, options.seed)
        text = card(LOAD_CODE["hub"].format(name=options.push_to_hub), split_sizes(dataset))
        hub_url = push(dataset, options.push_to_hub, text, private=not options.public, token=token)
    return ExportResult(len(rows), options.format_name, options.to, card_file, hub_url, pairing)


def _default_name(src: str | Path, options: ExportOptions) -> str:
    if options.push_to_hub:
        return options.push_to_hub.split("/", 1)[1]
    src = Path(src)
    return (folder_of(src) or src.with_suffix("")).resolve().name
