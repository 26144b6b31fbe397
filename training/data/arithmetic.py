"""Generated column arithmetic with worked steps (2-3 digit addition and subtraction).

Why worked steps: a tiny model cannot add 3-digit numbers in one token, but it can copy one digit per
line and look up single-digit sums. Every generated answer is checked against Python's arithmetic
before it is written, so the training data cannot teach a wrong sum.
"""

from __future__ import annotations

import random
import re

PLACES = ["ones", "tens", "hundreds", "thousands"]


def worked(a: int, op: str, b: int) -> tuple[str, int]:
    """Column arithmetic written one digit per step, the format a tiny model can learn."""
    width = max(len(str(a)), len(str(b)))
    da, db = str(a).zfill(width), str(b).zfill(width)
    steps, digits, c = [], [], 0
    for i in range(width):
        x, y = int(da[-1 - i]), int(db[-1 - i])
        if op == "+":
            s = x + y + c
            steps.append(f"{PLACES[i]} {x}+{y}+{c}={s} put {s % 10} carry {s // 10}")
            digits.append(s % 10)
            c = s // 10
        else:
            s = x - y - c
            if s < 0:
                steps.append(f"{PLACES[i]} {x}-{y}-{c}={s} +10={s + 10} put {s + 10} borrow 1")
                digits.append(s + 10)
                c = 1
            else:
                steps.append(f"{PLACES[i]} {x}-{y}-{c}={s} put {s} borrow 0")
                digits.append(s)
                c = 0
    if op == "+" and c:
        steps.append(f"{PLACES[width]} {c} put {c}")
        digits.append(c)
    ans = int("".join(str(d) for d in reversed(digits)))
    body = f" {da}{op}{db}\n" + "\n".join(steps) + f"\nanswer {ans}\n"
    verify(a, op, b, body)
    return body, ans


def verify(a: int, op: str, b: int, body: str) -> None:
    """Raise unless the digits put down and the answer line both equal Python's result.

    The data must never teach a wrong sum (the v1 baselines' `495+114 -> answer 1359` was the model's
    own mistake, but a silent bug in this generator would produce the same)."""
    true = a + b if op == "+" else a - b
    digits = re.findall(r" put (\d)", body)
    answer = re.search(r"\nanswer (-?\d+)\n$", body)
    put = int("".join(reversed(digits))) if digits else None
    if answer is None or int(answer.group(1)) != true or put != true:
        raise ArithmeticError(
            f"worked solution of {a}{op}{b} is wrong (digits {put}, answer line "
            f"{answer.group(1) if answer else 'missing'}, true {true}): {body!r}"
        )


def arith_prompt(a: int, op: str, b: int) -> str:
    return f"Q: {a}{op}{b}=?\nA:"


def arith_problems(rng: random.Random, n: int) -> list[tuple[int, str, int]]:
    out = []
    for _ in range(n):
        da, db = rng.choice([2, 3]), rng.choice([1, 2, 3])
        a = rng.randint(10 ** (da - 1), 10**da - 1)
        b = rng.randint(10 ** (db - 1) if db > 1 else 0, 10**db - 1)
        op = rng.choice("+-")
        if op == "-" and b > a:
            a, b = b, a
        out.append((a, op, b))
    return out
