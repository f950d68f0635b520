"""Publishing an export to the Hugging Face Hub as a dataset repository.

The repository is created private unless asked otherwise, the card is committed first, then
`push_to_hub` uploads the Parquet shards and adds its `configs` / `dataset_info` to the
card's YAML, keeping the card's text. The token comes from HF_TOKEN (or `hf auth login`);
HF_ENDPOINT points everything at another Hub, as the tests do.
"""

from __future__ import annotations

import os
import re

from ..errors import SelfInstructError, SettingError

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def hub_token() -> str:
    from huggingface_hub import get_token

    token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise SelfInstructError(
            "No Hugging Face token: set HF_TOKEN to a token with write access (https://huggingface.co/settings/tokens), "
            "or run `hf auth login`"
        )
    return token


def push(dataset, repo_id: str, card: str, private: bool, token: str) -> str:
    """Upload `dataset` (a Dataset or DatasetDict) and its card; returns the repo's URL."""
    from datasets import DatasetDict
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    # A DatasetDict push replaces every split in the repository; a lone Dataset would replace
    # only its own split and leave the test split of an earlier export behind.
    dataset = dataset if isinstance(dataset, DatasetDict) else DatasetDict({"train": dataset})
    api = HfApi(token=token)
    try:
        try:
            info = api.repo_info(repo_id, repo_type="dataset")
        except RepositoryNotFoundError:
            url = str(api.create_repo(repo_id, repo_type="dataset", private=private))
        else:
            if private and not info.private:
                raise SettingError(
                    f"{repo_id}: the dataset repository exists and is public; pass {{public}} to push to it anyway, "
                    "or make it private on the Hub first",
                    "public",
                )
            url = f"{api.endpoint}/datasets/{repo_id}"
        api.upload_file(
            path_or_fileobj=card.encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="Dataset card (selfinstruct export)",
        )
        dataset.push_to_hub(repo_id, token=token, commit_message="Upload dataset (selfinstruct export)")
    except HfHubHTTPError as e:
        # The message names the status and the Hub's reason; the token is never part of it.
        raise SelfInstructError(
            f"{repo_id}: the Hub refused the upload ({e}); check that the token may write there"
        ) from None
    return url
