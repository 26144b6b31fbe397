"""Scripts that build, train and evaluate evalsuite's embedded default model (not part of the package).

Run them as modules from the repository root, e.g. ``python -m training.build_corpus``; see README.md.
"""
