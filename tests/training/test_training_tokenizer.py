"""The embedded tokenizer starts every encoded prompt where training documents start: after <|endoftext|>."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from evalsuite.model.generation import encode_prompt
from training.train_tokenizer import to_hf, train_bpe

TEXTS = ["Q: 347+58=?\nA: 347+058\nanswer 405\n", "English: Open file\nGerman: Datei öffnen\n"] * 20


def test_prompts_start_with_end_of_text_after_a_save_load_round_trip(tmp_path: Path) -> None:
    to_hf(train_bpe(TEXTS, 300)).save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    eos = tok.eos_token_id
    prompt = encode_prompt(tok, "Q: 12+3=?\nA:")
    assert prompt[0] == eos and eos not in prompt[1:]
    body = tok("Q: 12+3=?\nA:", add_special_tokens=False)["input_ids"]
    assert body == prompt[1:]  # training streams are encoded without it (eos is appended per document)
    assert tok.decode(prompt, skip_special_tokens=True) == "Q: 12+3=?\nA:"
    assert [t for t in tok.convert_ids_to_tokens(body) if t.isdigit()] == ["1", "2", "3"]  # digits split
