"""Key terms for Chinese/Japanese/Korean: the old character bigrams vs script-run terms (+ jieba for
Chinese). Prints, side by side, the retention each rule gives on hand-written benign rewrites (same
content, other wording; the gate's threshold is 0.5) and what jieba costs (load time, memory, speed).

Run: .venv/bin/python benchmarks/cjk_terms.py
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter

from evalsuite.metrics.drift import term_retention

# baseline, benign rewrite (the content kept: a brand name for a word, other particles, reordering)
PAIRS = [
    ("ja", "このアプリはスマートフォンで動きます。スマートフォンの設定画面を開いて、通知を有効にしてください。",
     "このアプリはiPhoneで動きます。iPhoneの設定画面を開いて、通知を有効にしてください。"),
    ("ja", "コンピューターのメモリーが足りないときは、ブラウザーのタブを閉じてください。",
     "PCのRAMが足りないときは、Chromeのタブを閉じてください。"),
    ("ja", "東京は日本の首都です。東京には多くの美術館と公園があります。",
     "日本の首都は東京で、美術館や公園がたくさんあります。"),
    ("zh", "机器学习是人工智能的一个分支，它让计算机从数据中学习规律。机器学习需要大量数据。",
     "机器学习属于人工智能领域，让计算机从数据里学习规律，也需要大量数据。"),
    ("zh", "我用苹果手机拍照，然后把照片上传到微信朋友圈。",
     "我用iPhone拍照，然后把照片上传到WeChat朋友圈。"),
    ("ko", "컴퓨터는 데이터를 처리합니다. 컴퓨터의 메모리는 프로그램을 저장합니다.",
     "컴퓨터가 데이터를 처리하고 메모리에 프로그램을 저장해요."),
    ("ko", "스마트폰으로 사진을 찍어서 인스타그램에 올렸습니다.",
     "iPhone으로 사진을 찍어서 Instagram에 올렸습니다."),
]
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def bigram_retention(new: str, base: str, top_n: int = 12) -> float:
    """The rule before: every pair of adjacent CJK characters is a term."""
    chars = [c for c in base if _CJK.fullmatch(c) or c == " "]
    grams = Counter(a + b for a, b in zip(chars, chars[1:], strict=False) if " " not in a + b)
    terms = [t for t, _ in grams.most_common(top_n)]
    return 1.0 - sum(t not in new for t in terms) / len(terms) if terms else 1.0


def jieba_cost() -> dict[str, float]:
    """In a fresh process: import + dictionary load, peak RSS added, time per segmentation."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    from evalsuite.metrics.terms import content_terms

    content_terms("机器学习")
    load = time.perf_counter() - start
    added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    text = PAIRS[3][1]
    start = time.perf_counter()
    for _ in range(200):
        content_terms(text)
    return {"load_s": load, "rss_mb": added, "ms_per_text": (time.perf_counter() - start) / 200 * 1000}


def main() -> None:
    if sys.argv[1:] == ["--jieba-cost"]:
        print(json.dumps(jieba_cost()))
        return
    # first, while this process is small: Linux carries the parent's peak RSS into a forked child
    cost = json.loads(subprocess.run([sys.executable, __file__, "--jieba-cost"], capture_output=True, text=True,
                                     check=True).stdout)
    print(f"{'lang':5s}{'bigrams':>10s}{'script runs':>13s}  benign rewrite (retention; the gate needs 0.5)")
    for lang, base, new in PAIRS:
        ours, _ = term_retention(new, base)
        print(f"{lang:5s}{bigram_retention(new, base):10.2f}{ours:13.2f}  {new[:40]}")
    print(f"jieba (first Chinese text in a process): load {cost['load_s']:.2f} s, +{cost['rss_mb']:.0f} MB peak RSS, "
          f"{cost['ms_per_text']:.2f} ms per 40-character text")


if __name__ == "__main__":
    main()
