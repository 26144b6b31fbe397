"""Shared tokenisation for the text metrics (collapse, diversity, drift).

Why a custom tokenizer: the checks must work on any language without a model tokenizer. Words are
``\\w+`` runs, punctuation marks are single tokens, and scripts written without spaces (Han, kana,
Hangul, Thai) are split per character so a Chinese loop is as visible as an English one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHAR_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\uac00-\ud7af"  # Hangul syllables
    "\U00020000-\U0002ffff"  # Han extensions
)
_TOKEN_RE = re.compile(rf"[{_CHAR_SCRIPTS}]|[^\W{_CHAR_SCRIPTS}]+|[^\w\s]")


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


def tokens_with_spans(text: str) -> list[Token]:
    """Tokens with their character offsets (for mapping a loop back to the text)."""
    return [Token(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]


def tokenize(text: str, *, lower: bool = True) -> list[str]:
    """Language-agnostic word/punctuation tokens."""
    toks = [m.group(0) for m in _TOKEN_RE.finditer(text)]
    return [t.lower() for t in toks] if lower else toks


# A code identifier written in prose: dotted.names / a::b, snake_case, camelCase, PascalCase with an
# inner capital (JavaScript), calls f(x), paths a/b/c, command-line flags. ASCII only, so abbreviations
# such as Russian "т.е." stay prose.
CODE_IDENTIFIER = re.compile(
    r"(?<![\w/$-])(?:"
    r"[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)+(?:\([^()\s]*\))?"
    r"|[A-Za-z$]\w*_\w*(?:\([^()\s]*\))?|_\w+(?:\([^()\s]*\))?"
    r"|[a-z]+[A-Z][A-Za-z0-9]*(?:\([^()\s]*\))?"
    r"|[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*(?:\([^()\s]*\))?"
    r"|[A-Za-z_]\w*\([^()\s]*\)"
    r"|(?:\.{1,2}/|~/|/)?[\w.-]+(?:/[\w.-]+)+/?"
    r"|--?[a-z][\w-]*"
    r")"
)


def strip_code(text: str) -> str:
    """Remove fenced code blocks and inline code, which are not natural language."""
    text = re.sub(r"```.*?(```|$)", " ", text, flags=re.S)
    text = re.sub(r"~~~.*?(~~~|$)", " ", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", " ", text)


def strip_code_and_identifiers(text: str) -> str:
    """:func:`strip_code`, then code identifiers written in prose without backticks (get_user_id)."""
    return CODE_IDENTIFIER.sub(" ", strip_code(text))
