"""The `messages` export goes through trl's own SFTTrainer data preparation (needs the [train]
extra). (ShareGPT rows are for FastChat / LLaMA-Factory / axolotl: trl renames their keys but keeps
the roles human/gpt, which chat templates do not know.)

A tiny random Llama and a word-level tokenizer built here stand in for a real student, so
nothing is downloaded; trl applies the chat template, tokenizes and masks the prompt.
"""

import datasets
import pytest
from fake_run import records, write_run

from selfinstruct.export.exporter import export_dataset, make_options

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|> {{ m['role'] }} "
    "{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }} <|im_end|>{% endgeneration %}"
    "{% else %}{{ m['content'] }} <|im_end|>{% endif %} {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}"
)


def tiny_student(texts: list[str]):
    from tokenizers import Tokenizer, models, pre_tokenizers

    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>", "system", "user", "assistant"]
    words = sorted({w for text in texts for w in text.split()} - set(specials))
    vocab = {w: i for i, w in enumerate(specials + words)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = transformers.LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    return transformers.LlamaForCausalLM(config), tokenizer


def test_sft_trainer_prepares_the_messages_export(tmp_path):
    run = write_run(tmp_path / "run")
    export_dataset(run, make_options(format="messages", to=tmp_path / "data", system_prompt="Be brief."))
    dataset = datasets.load_from_disk(str(tmp_path / "data"))
    texts = [r["instruction"] + " " + r["input"] + " " + r["output"] + " Be brief." for r in records()]
    model, tokenizer = tiny_student(texts)

    args = trl.SFTConfig(
        output_dir=str(tmp_path / "trainer"),
        report_to=[],
        max_length=256,
        assistant_only_loss=True,
        use_cpu=True,
        bf16=False,
    )
    prepared = trl.SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train_dataset

    assert len(prepared) == len(records())
    first, record = prepared[0], records()[0]
    assert (
        tokenizer.decode(first["input_ids"]).split()
        == (
            f"<|im_start|> system Be brief. <|im_end|> <|im_start|> user {record['instruction']} {record['input']} "
            f"<|im_end|> <|im_start|> assistant {record['output']} <|im_end|>"
        ).split()
    )
    # The loss falls on the answer only: trl masked the system and user turns.
    learned = [t for t, label in zip(first["input_ids"], first["labels"]) if label != -100]
    assert tokenizer.decode(learned).split() == f"{record['output']} <|im_end|>".split()
