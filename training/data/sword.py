"""Read SWORD Bible modules (Debian `sword-text-*`) without libsword: zText blocks + verse index.

Layout of a zText module folder (per testament `ot`/`nt`): `.bzv` holds one 10-byte record per verse
slot of the versification (block number u32, offset u32, size u16), `.bzs` one 12-byte record per
block (offset u32, compressed size u32, raw size u32) into `.bzz`, whose blocks are zlib streams.
Two modules with the same `Versification=` have the same slots, so slot i of each is the same verse:
that is what makes them parallel text.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from pathlib import Path

SWORD = Path("/usr/share/sword")

_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TITLE = re.compile(r"<title\b.*?</title>", re.S)
_TAG = re.compile(r"<[^>]+>")


def module_conf(name: str, root: Path = SWORD) -> dict[str, str]:
    """Key=value pairs of mods.d/<name>.conf (the first value of a repeated key wins)."""
    conf: dict[str, str] = {}
    for line in (root / "mods.d" / f"{name}.conf").read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            conf.setdefault(key.strip(), value.strip())
    return conf


def _testament(folder: Path, testament: str) -> list[str]:
    index = (folder / f"{testament}.bzv").read_bytes()
    blocks_index = (folder / f"{testament}.bzs").read_bytes()
    data = (folder / f"{testament}.bzz").read_bytes()
    blocks: dict[int, bytes] = {}
    out = []
    for pos in range(0, len(index) - 9, 10):
        block, offset, size = struct.unpack("<IIH", index[pos : pos + 10])
        if size == 0:
            out.append("")
            continue
        if block not in blocks:
            start, length, _raw = struct.unpack("<III", blocks_index[12 * block : 12 * block + 12])
            blocks[block] = zlib.decompress(data[start : start + length])
        out.append(blocks[block][offset : offset + size].decode("utf-8", "replace"))
    return out


def osis_to_text(raw: str) -> str:
    """Plain verse text: footnotes and headings dropped, word/lemma markup removed."""
    text = _TAG.sub("", _TITLE.sub("", _NOTE.sub("", raw)))
    return " ".join(html.unescape(text).split())


def verses(name: str, root: Path = SWORD) -> tuple[str, list[str]]:
    """(versification, plain text of every verse slot, Old then New Testament; '' for empty slots)."""
    conf = module_conf(name, root)
    if conf.get("ModDrv", "").lower() != "ztext":
        raise ValueError(f"{name}: ModDrv={conf.get('ModDrv')!r}; only zText modules are read")
    folder = root / conf["DataPath"].lstrip("./")
    raw = [v for t in ("ot", "nt") if (folder / f"{t}.bzv").exists() for v in _testament(folder, t)]
    return conf.get("Versification", "KJV"), [osis_to_text(v) for v in raw]


def parallel_verses(source: str, target: str, root: Path = SWORD) -> list[tuple[int, str, str]]:
    """(slot, source verse, target verse) for slots where both modules have text."""
    v1, a = verses(source, root)
    v2, b = verses(target, root)
    if v1 != v2 or len(a) != len(b):
        raise ValueError(f"{source} ({v1}, {len(a)} slots) and {target} ({v2}, {len(b)} slots) are not aligned")
    return [(i, x, y) for i, (x, y) in enumerate(zip(a, b, strict=True)) if x and y]
