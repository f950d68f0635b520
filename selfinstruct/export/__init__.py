"""Turning records into the dataset a training script wants, with an honest card.

    formats.py       the row shape of each format: alpaca, jsonl, sharegpt, openai, messages
    destinations.py  where rows go: a .json / .jsonl / .parquet file or a `save_to_disk` directory
    provenance.py    what the source says about how its records were made
    pairs.py         preference pairs for DPO: the best and worst rated answer of each prompt
    card.py          the dataset card (README.md) rendered from that provenance
    hub.py           publishing to the Hugging Face Hub
    exporter.py      `export_dataset(src, ExportOptions)`: all of the above, for the CLI

A record as a chat (and back) is `selfinstruct.chat`, which the loader uses too.
"""
