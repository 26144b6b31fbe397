"""Generated small Python function tasks: signature + docstring as the prompt, the body as the answer.

Why templates: the embedded model must solve held-out tasks greedily (pass@1) after a few million tokens,
so tasks come from ~25 families whose held-out members are unseen combinations of name, constant,
comparison and argument name. Each task carries asserts computed by a reference implementation.
"""

from __future__ import annotations

import random

NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
CMP = {
    ">": ("greater than", "gt"),
    "<": ("less than", "lt"),
    ">=": ("at least", "ge"),
    "<=": ("at most", "le"),
    "==": ("equal to", "eq"),
}


def task_families(rng: random.Random) -> dict:
    """Each family: params sampler -> (name, args, doc, body, reference callable, input sampler)."""
    k = rng.randint(2, 12)
    kw = NUM_WORDS[k]
    op = rng.choice(list(CMP))
    cw, cs = CMP[op]
    v = rng.choice(["xs", "nums", "values", "items"])
    x = rng.choice(["x", "n", "value", "num"])
    s = rng.choice(["s", "text", "word"])
    ch = rng.choice("aeiostrn")
    sep = rng.choice(["-", ", ", " ", "+", "/"])
    lo, hi = sorted(rng.sample(range(-5, 30), 2))
    cmp_fn = {
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "==": lambda a, b: a == b,
    }[op]

    def ints():
        return [rng.randint(-10, 20) for _ in range(rng.randint(1, 7))]

    def num():
        return rng.randint(-20, 50)

    def word():
        return "".join(rng.choice("abcdeinorst") for _ in range(rng.randint(1, 8)))

    fam = {
        "add": (
            rng.choice([f"add_{kw}", f"plus_{kw}", f"add_{k}"]),
            [x],
            f"Return {x} plus {k}.",
            f"return {x} + {k}",
            lambda a: a + k,
            lambda: (num(),),
        ),
        "sub": (
            rng.choice([f"subtract_{kw}", f"minus_{kw}", f"sub_{k}"]),
            [x],
            f"Return {x} minus {k}.",
            f"return {x} - {k}",
            lambda a: a - k,
            lambda: (num(),),
        ),
        "mul": (
            rng.choice([f"times_{kw}", f"multiply_by_{kw}", f"mul_{k}"]),
            [x],
            f"Return {x} multiplied by {k}.",
            f"return {x} * {k}",
            lambda a: a * k,
            lambda: (num(),),
        ),
        "divisible": (
            rng.choice([f"divisible_by_{kw}", f"is_multiple_of_{k}"]),
            [x],
            f"Return True if {x} is divisible by {k}, otherwise False.",
            f"return {x} % {k} == 0",
            lambda a: a % k == 0,
            lambda: (rng.randint(0, 60),),
        ),
        "square": (
            rng.choice(["square", "squared", f"square_{x}"]),
            [x],
            f"Return the square of {x}.",
            f"return {x} * {x}",
            lambda a: a * a,
            lambda: (num(),),
        ),
        "sum_cmp": (
            f"sum_{cs}_{k}",
            [v],
            f"Return the sum of the numbers in {v} that are {cw} {k}.",
            f"return sum(y for y in {v} if y {op} {k})",
            lambda a: sum(y for y in a if cmp_fn(y, k)),
            lambda: (ints(),),
        ),
        "count_cmp": (
            f"count_{cs}_{k}",
            [v],
            f"Return how many numbers in {v} are {cw} {k}.",
            f"return len([y for y in {v} if y {op} {k}])",
            lambda a: len([y for y in a if cmp_fn(y, k)]),
            lambda: (ints(),),
        ),
        "filter_cmp": (
            f"keep_{cs}_{k}",
            [v],
            f"Return a list of the numbers in {v} that are {cw} {k}.",
            f"return [y for y in {v} if y {op} {k}]",
            lambda a: [y for y in a if cmp_fn(y, k)],
            lambda: (ints(),),
        ),
        "map_add": (
            f"add_{k}_to_each",
            [v],
            f"Return a new list with {k} added to each number in {v}.",
            f"return [y + {k} for y in {v}]",
            lambda a: [y + k for y in a],
            lambda: (ints(),),
        ),
        "map_mul": (
            f"multiply_each_by_{k}",
            [v],
            f"Return a new list with each number in {v} multiplied by {k}.",
            f"return [y * {k} for y in {v}]",
            lambda a: [y * k for y in a],
            lambda: (ints(),),
        ),
        "max": (
            rng.choice(["largest", "maximum", f"max_of_{v}"]),
            [v],
            f"Return the largest number in {v}.",
            f"return max({v})",
            lambda a: max(a),
            lambda: (ints(),),
        ),
        "min": (
            rng.choice(["smallest", "minimum", f"min_of_{v}"]),
            [v],
            f"Return the smallest number in {v}.",
            f"return min({v})",
            lambda a: min(a),
            lambda: (ints(),),
        ),
        "total": (
            rng.choice(["total", "sum_all", f"sum_of_{v}"]),
            [v],
            f"Return the sum of the numbers in {v}.",
            f"return sum({v})",
            lambda a: sum(a),
            lambda: (ints(),),
        ),
        "first_n": (
            f"first_{kw}",
            [v],
            f"Return the first {k} items of {v}.",
            f"return {v}[:{k}]",
            lambda a: a[:k],
            lambda: (ints(),),
        ),
        "last_n": (
            f"last_{kw}",
            [v],
            f"Return the last {k} items of {v}.",
            f"return {v}[-{k}:]",
            lambda a: a[-k:],
            lambda: (ints(),),
        ),
        "reverse": (
            rng.choice(["reverse", "reversed_text", f"reverse_{s}"]),
            [s],
            f"Return {s} reversed.",
            f"return {s}[::-1]",
            lambda a: a[::-1],
            lambda: (word(),),
        ),
        "upper": (
            rng.choice(["shout", "to_upper", f"upper_{s}"]),
            [s],
            f"Return {s} in upper case.",
            f"return {s}.upper()",
            lambda a: a.upper(),
            lambda: (word(),),
        ),
        "count_char": (
            f"count_{ch}",
            [s],
            f"Return how many times the letter '{ch}' appears in {s}.",
            f"return {s}.count('{ch}')",
            lambda a: a.count(ch),
            lambda: (word(),),
        ),
        "starts": (
            f"starts_with_{ch}",
            [s],
            f"Return True if {s} starts with the letter '{ch}'.",
            f"return {s}.startswith('{ch}')",
            lambda a: a.startswith(ch),
            lambda: (word(),),
        ),
        "repeat": (
            f"repeat_{kw}_times",
            [s],
            f"Return {s} repeated {k} times.",
            f"return {s} * {k}",
            lambda a: a * k,
            lambda: (word(),),
        ),
        "join": (
            rng.choice(["join_words", "glue", "combine"]),
            [v],
            f"Return the strings in {v} joined with '{sep}'.",
            f"return '{sep}'.join({v})",
            lambda a: sep.join(a),
            lambda: ([word() for _ in range(rng.randint(1, 4))],),
        ),
        "clamp": (
            f"clamp_{x}",
            [x],
            f"Return {x} limited to the range {lo} to {hi}.",
            f"return max({lo}, min({hi}, {x}))",
            lambda a: max(lo, min(hi, a)),
            lambda: (num(),),
        ),
        "absdiff": (
            rng.choice(["distance", "abs_diff", "gap"]),
            ["a", "b"],
            "Return the absolute difference between a and b.",
            "return abs(a - b)",
            lambda a, b: abs(a - b),
            lambda: (num(), num()),
        ),
        "fizz": (
            f"fizz_{k}",
            [x],
            f"Return 'fizz' if {x} is divisible by {k}, otherwise return {x} as a string.",
            f"if {x} % {k} == 0:\n        return 'fizz'\n    return str({x})",
            lambda a: "fizz" if a % k == 0 else str(a),
            lambda: (rng.randint(1, 60),),
        ),
        "loop_sum_cmp": (
            f"total_{cs}_{k}",
            [v],
            f"Add up the numbers in {v} that are {cw} {k} and return the total.",
            f"total = 0\n    for y in {v}:\n        if y {op} {k}:\n            total += y\n    return total",
            lambda a: sum(y for y in a if cmp_fn(y, k)),
            lambda: (ints(),),
        ),
    }
    return fam


def code_task(rng: random.Random, family: str | None = None) -> dict:
    """One task of `family` (random family if None) with up to 5 asserts from the reference solution."""
    fams = task_families(rng)
    fam = family or rng.choice(sorted(fams))
    name, args, doc, body, ref, sample = fams[fam]
    prompt = f'def {name}({", ".join(args)}):\n    """{doc}"""\n'
    completion = f"    {body}\n"
    tests, seen = [], set()
    for _ in range(30):
        inp = sample()
        key = repr(inp)
        if key in seen:
            continue
        seen.add(key)
        try:
            res = ref(*inp)
        except Exception:
            continue
        tests.append(f"assert {name}({', '.join(repr(a) for a in inp)}) == {res!r}")
        if len(tests) == 5:
            break
    return {"family": fam, "name": name, "prompt": prompt, "completion": completion, "tests": tests, "key": prompt}
