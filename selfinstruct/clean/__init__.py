"""The cleaning stage: a preset's rules, then exact and near-duplicate removal.

    rules/       named rules with reasons (the checks), registered by name
    presets.py   filters/*.toml: which rules run, their thresholds, the dedup settings
    dedup/       exact and MinHash-LSH near-duplicates, decided by ROUGE-L like Alpaca
    decontam.py  n-grams of benchmark prompts, for the `contaminated` rule
    cleaner.py   `Cleaner`: rules then duplicates, one record at a time or a dataset at once
    stage.py     `clean_dataset(src, out)`: the `filter` command's library call

The generate loop and the `filter` command make the same decisions through `Cleaner`.
"""

from .cleaner import Cleaner, Verdict, rejected_record
from .presets import Preset, available_presets, load_preset
from .stage import CleanResult, clean_dataset

__all__ = [
    "CleanResult",
    "Cleaner",
    "Preset",
    "Verdict",
    "available_presets",
    "clean_dataset",
    "load_preset",
    "rejected_record",
]
