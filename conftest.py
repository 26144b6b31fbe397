"""Root conftest: pytester for the plugin's own tests, and one torch thread (see BRIEF: 2 loaded cores)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

pytest_plugins = ["pytester"]


def pytest_configure(config):  # noqa: ARG001 - pytest hook signature
    import torch

    torch.set_num_threads(1)
