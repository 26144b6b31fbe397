"""The `evalsuite` command line."""


def main() -> int:
    raise SystemExit("evalsuite CLI: not yet wired")
