"""A tiny BERT (random weights, 2 layers, width 32) and its WordPiece tokenizer, written as
a Hugging Face model directory in seconds: config.json, model.safetensors, tokenizer.json."""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?:'-")
WORDS = ["the", "was", "and", "film", "great", "bad", "good", "food", "service", "hotel",
         "quick", "brown", "fox", "very", "not", "is", "a", "of", "to", "in"]
LABELS = ["negative", "neutral", "positive"]


def build(directory: Path, task: str) -> Path:
    """Write a tiny BERT for ``task`` (feature-extraction | text-classification)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertModel,
        PreTrainedTokenizerFast,
    )

    vocab = SPECIALS + CHARS + [f"##{c}" for c in CHARS] + WORDS
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=64).save_pretrained(directory)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64, initializer_range=0.2,
                        id2label=dict(enumerate(LABELS)),
                        label2id={name: i for i, name in enumerate(LABELS)})
    torch.manual_seed(0)
    cls = BertForSequenceClassification if task == "text-classification" else BertModel
    cls(config).eval().save_pretrained(directory)
    return directory
