"""Train the embedded model's byte-level BPE tokenizer on the training split only.

python -m training.train_tokenizer [--vocab-size 8192]
Reads training/corpus/train-*.jsonl (an equal character budget per file, so that small languages get
merges too), writes training/tokenizer/ in Hugging Face format (tokenizer.json + tokenizer_config.json).
Digits are split one per token so that column arithmetic is learnable digit by digit.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "training" / "corpus"
OUT = ROOT / "training" / "tokenizer"
SPECIAL = ["<|endoftext|>", "<|pad|>"]


def sample_texts(chars_per_file: int, seed: int):
    rng = random.Random(seed)
    for path in sorted(CORPUS.glob("train-*.jsonl")):
        rows = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]
        rng.shuffle(rows)
        budget = chars_per_file
        for t in rows:
            if budget <= 0:
                break
            budget -= len(t)
            yield t


def to_hf(tok: Tokenizer):  # -> PreTrainedTokenizerFast
    """The Hugging Face wrapper. Encoding with special tokens (what evalsuite's `encode_prompt` does)
    puts <|endoftext|> first: every training document follows one, so a prompt then starts where a
    document starts instead of at an arbitrary position of the stream (v1 lacked this)."""
    from transformers import PreTrainedTokenizerFast

    eos = SPECIAL[0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{eos} $A", pair=f"{eos} $A {eos} $B", special_tokens=[(eos, tok.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=eos,
        eos_token=eos,
        pad_token="<|pad|>",
        unk_token=None,
        padding_side="left",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocab-size", type=int, default=8192)
    ap.add_argument("--chars-per-file", type=int, default=1_200_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    hf = to_hf(train_bpe(sample_texts(args.chars_per_file, args.seed), args.vocab_size))
    OUT.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(OUT)
    print("vocab", len(hf), "->", OUT)
    for s in [
        "Q: 347+58=?\nA: 347+058",
        "English: Open file\nGerman: Datei öffnen",
        "def f(x):\n    return x + 1",
        "Привет, мир",
        "今日は良い天気です。",
        "你好，世界",
    ]:
        ids = hf(s)["input_ids"]
        print(len(ids), hf.convert_ids_to_tokens(ids)[:16], hf.decode(ids, skip_special_tokens=True) == s)


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Byte-level BPE with digits split one per token (column arithmetic is learnt digit by digit)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


if __name__ == "__main__":
    main()
