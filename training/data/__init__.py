"""Corpus building blocks: one module per kind of source (see training/build_corpus.py for the order)."""
