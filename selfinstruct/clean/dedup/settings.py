"""The dedup settings of a preset's `[dedup]` table, shared by every dedup path."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DedupSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    fields: tuple[str, ...] = Field(
        ("instruction",),
        min_length=1,
        description="record fields compared, joined by a newline (Alpaca: the instruction)",
    )
    exact: bool = Field(True, description="first drop exact duplicates of the compared text after normalisation")
    method: Literal["minhash", "embedding"] = Field(
        "minhash",
        description="near duplicates by ROUGE-L (found with MinHash LSH) or by the cosine of sentence embeddings",
    )
    rouge_threshold: float = Field(0.7, gt=0, le=1, description="duplicate when ROUGE-L F > this")
    cosine_threshold: float = Field(
        0.85, gt=0, le=1, description="method = 'embedding': duplicate when the cosine > this"
    )
    min_jaccard: float = Field(
        0.35, ge=0, le=1, description="candidates whose MinHash-estimated Jaccard is lower skip the exact ROUGE-L"
    )
    max_bucket: int = Field(
        50, ge=1, description="a band bucket already holding this many kept texts stops proposing candidates"
    )
    num_perm: int = Field(128, ge=16, le=1024)
    bands: int = Field(32, ge=1)
    rows: int = Field(4, ge=1)
    seed: int = 1

    @model_validator(mode="after")
    def _bands_fit(self):
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} is more than num_perm = {self.num_perm}")
        if self.method == "embedding":
            from ..embedding import model_dir

            model_dir()  # a missing wordllama fails when the preset loads, with the pip command
        return self

    def text(self, record: dict) -> str:
        return "\n".join(record.get(field) or "" for field in self.fields)
