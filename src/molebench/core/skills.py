"""A generated skill world: 160 small, seeded text skills in 11 families, for pools of LoRA experts.

Why: MoLE, MixLoRA and RAMoLE build their expert pools from FLAN and BIG-bench (Hard) tasks. At the mini scale
(SmolLM2-135M on a CPU, rank-4 LoRAs trained for a few dozen steps) LoRAs on those tasks teach the model nothing, so
every composition sits at zero-shot. The project's own generated tasks (dyck_languages, word_sorting) are learned
in about 30 steps. This module is a departure from the papers in the same spirit: experts that teach a real,
checkable skill, so that retrieval, routing, interference between experts and transfer between families are
measurable. Results on it are "skill world" results, not FLAN or BBH results.

The world: a family is one input sampler (all skills of a family share it) and one solver with a parameter; a skill
is the family at one parameter value, so two skills of one family give different answers to the same input (the
tests check this). Inputs are short (at most 60 characters; letters and digits are separated by spaces so that a
BPE tokenizer sees one symbol per token), answers are short (at most 26 characters), lower case, one line, and
checked by exact match after lower-casing and squeezing whitespace (the project's `exact_match`).

Prompt: `prompt(input)` is the input alone behind a fixed label (`Input: ...`). The instruction is NOT in the
prompt, so a LoRA must carry its skill; `SKILLS[name].instruction` is a plain English sentence, distinct per skill,
for a retriever to embed (and `prompt(input, name)` prepends it, for zero-shot and few-shot baselines that need to
be told the task). Inside a family the inputs look alike, so a router that sees only the input can tell the family
but not the skill. Some families share input shapes (caesar, subst and letters; lists and count; arith and numfmt):
room for interference.

Splits: an input belongs to the test split when a stable hash of the input text says so (one in five), whatever the
skill and seed. Train and test never share an input, not even across the skills of a family.

    examples(name, n, seed, split) -> [{"input": str, "references": [str]}]   # n distinct inputs
    pool("family:caesar" | "all_but:dates" | "24" | "all" | skill name | a list of those) -> skill names
"""

from __future__ import annotations

import datetime
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

LETTERS = "abcdefghijklmnopqrstuvwxyz"
VOWELS = "aeiou"
SUBST_ALPHABET = "abcdefghij"
BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# short common nouns (3 to 6 letters) for the words family
WORDS = """ant arm bag ball bank bark bed bell bird boat bone book box bread brick cake camp car cat chair chalk cloud
coat coin corn cow crab cup desk dog door drum duck egg farm fish flag fog fork fox frog gate gift goat gold hat hill
horse ice jam jar key king kite lake lamp leaf lion lock map milk mint moon mouse nail nest net oak owl paint pan pen
pig pipe plum pond pot queen rain ring road rock roof rope salt sand ship shoe silk sky snow sock soup star stone sun
table tent tiger toy train tree van vase wall wave whale wind wolf wood yard zebra""".split()  # noqa: SIM905
TEST_SHARE = 5  # one input in TEST_SHARE is a test input
# the input alone, no instruction, behind a fixed label: a decoder's first token is its attention sink, and a LoRA of
# 30 steps could not learn to read it (lists_first 0.0, arith_add1 3.1 exact match with the input first)
PROMPT = "Input: {input}\nAnswer:"
TASK_PREFIX = "skill_"  # the task registry's name for a skill: skill_<skill name> (molebench.core.data)


@dataclass(frozen=True)
class Skill:
    name: str  # "<family>_<param>", stable
    family: str
    instruction: str  # plain English, distinct per skill: what a retriever embeds
    sample: Callable[[random.Random], str]  # the family's input sampler
    solve: Callable[[str], str]  # input -> the one correct answer

    def make(self, rng: random.Random) -> dict:
        """One raw example (input, reference answer) drawn from `rng`."""
        x = self.sample(rng)
        return {"input": x, "references": [self.solve(x)]}

    def check(self, prediction: str, references: list[str]) -> bool:
        return any(normalise(prediction) == normalise(r) for r in references)


def normalise(text: str) -> str:
    """Lower-case and squeeze whitespace, as molebench.scoring.normalise does."""
    return " ".join(text.lower().split())


# ---- input samplers: one per family, shared by its skills -------------------------------------------------------

def _letters(rng, lo, hi, alphabet=LETTERS, distinct=False):
    n = rng.randint(lo, hi)
    return " ".join(rng.sample(alphabet, n) if distinct else rng.choices(alphabet, k=n))


def _distinct_letters(rng):  # 4 to 7 different letters, at least one consonant
    while True:
        x = _letters(rng, 4, 7, distinct=True)
        if any(c not in VOWELS for c in x.split()):
            return x


def _digits(lo, hi):
    return lambda rng: " ".join(rng.choices("0123456789", k=rng.randint(lo, hi)))


def _date(rng):
    start = datetime.date(1950, 1, 1).toordinal()
    return datetime.date.fromordinal(rng.randint(start, datetime.date(2049, 12, 31).toordinal())).isoformat()


def _pattern(rng):  # a unit of 2 to 4 different letters repeated over 2 to 3 periods
    period = rng.randint(2, 4)
    unit = rng.sample(LETTERS, period)
    return " ".join(unit[i % period] for i in range(rng.randint(2 * period, 3 * period)))


def _stack(tokens):
    stack = []
    for t in tokens:
        if t in BRACKETS:
            stack.append(t)
        else:
            stack.pop()
    return stack


def _brackets(rng):  # a prefix of 4 to 10 brackets that leaves at least two open
    while True:
        tokens, stack = [], []
        for _ in range(rng.randint(4, 10)):
            if not stack or rng.random() < 0.6:
                stack.append(rng.choice(sorted(BRACKETS)))
                tokens.append(stack[-1])
            else:
                tokens.append(BRACKETS[stack.pop()])
        if len(stack) >= 2:
            return " ".join(tokens)


# ---- solvers ----------------------------------------------------------------------------------------------------

def _join(items):
    return " ".join(items) if items else "none"


def _caesar(k, x):
    return " ".join(LETTERS[(LETTERS.index(c) + k) % 26] for c in x.split())


# substitution tables: a permutation of SUBST_ALPHABET drawn from a seed
SUBST_TABLES = {s: dict(zip(SUBST_ALPHABET, random.Random(f"subst:{s}").sample(SUBST_ALPHABET, len(SUBST_ALPHABET))))
                for s in range(16)}


def _base(n, b):
    digits = ""
    while True:
        n, r = divmod(n, b)
        digits = "0123456789abcdefghij"[r] + digits
        if n == 0:
            return digits


def _words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    return ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _words(n % 100))


def _roman(n):
    out = ""
    for value, sym in [(1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"),
                       (40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")]:
        count, n = divmod(n, value)
        out += sym * count
    return out


def _ordinal(n):
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _period(s):
    return next(p for p in range(1, len(s) + 1) if all(s[i] == s[i - p] for i in range(p, len(s))))


def _continue(s, start, k):  # k items of the periodic sequence s from position start (may be negative)
    p = _period(s)
    return " ".join(s[i % p] for i in range(start, start + k))


# ---- the families: (sampler, {param: (solver on the input text, instruction)}) -----------------------------------

def _ops(table):
    """{param: (fn(list of tokens) -> str or list, instruction)} -> {param: (fn(text) -> str, instruction)}."""
    def wrap(fn):
        def solve(x):
            out = fn(x.split())
            return out if isinstance(out, str) else _join(out)
        return solve
    return {param: (wrap(fn), text) for param, (fn, text) in table.items()}


_DATE_FORMATS = {  # param: (fn(year, month, day) -> str, instruction)
    "dmy": (lambda y, m, d: f"{d:02}/{m:02}/{y}", "Rewrite the date as day/month/year."),
    "mdy": (lambda y, m, d: f"{m:02}/{d:02}/{y}", "Rewrite the date as month/day/year."),
    "dot": (lambda y, m, d: f"{d:02}.{m:02}.{y}", "Rewrite the date as day.month.year with dots."),
    "compact": (lambda y, m, d: f"{y}{m:02}{d:02}", "Write the date as eight digits, year month day, no separators."),
    "dmy_short": (lambda y, m, d: f"{d:02}/{m:02}/{y % 100:02}", "Rewrite the date as day/month/two-digit year."),
    "long": (lambda y, m, d: f"{MONTHS[m - 1]} {d}, {y}", "Write the date in words as month day, year."),
    "day_month": (lambda y, m, d: f"{d} {MONTHS[m - 1]}", "Give the day and the month name, without the year."),
    "abbr": (lambda y, m, d: f"{d} {MONTHS[m - 1][:3]} {y}", "Write the date as day, three-letter month, year."),
    "month": (lambda y, m, d: MONTHS[m - 1], "Name the month of the date."),
    "month3": (lambda y, m, d: MONTHS[m - 1][:3], "Give the first three letters of the date's month."),
    "year": (lambda y, m, d: str(y), "Give the year of the date."),
    "day": (lambda y, m, d: str(d), "Give the day of the month of the date."),
    "month_num": (lambda y, m, d: str(m), "Give the number of the date's month, from 1 to 12."),
    "year_month": (lambda y, m, d: f"{y}-{m:02}", "Keep only the year and month of the date, as year-month."),
    "quarter": (lambda y, m, d: f"q{(m - 1) // 3 + 1}", "Give the quarter of the year the date falls in, q1 to q4."),
    "month_day": (lambda y, m, d: f"{m:02}-{d:02}", "Keep only the month and day of the date, as month-day."),
}

FAMILIES_SPEC: dict[str, tuple[Callable, dict]] = {
    "caesar": (lambda rng: _letters(rng, 3, 6), {
        k: (lambda x, k=k: _caesar(k, x),
            f"Shift every letter {k} place{'s' * (k > 1)} forward in the alphabet, wrapping from z back to a.")
        for k in range(1, 17)}),
    "subst": (lambda rng: _letters(rng, 3, 6, SUBST_ALPHABET), {
        s: (lambda x, t=SUBST_TABLES[s]: " ".join(t[c] for c in x.split()),
            f"Encode each letter with substitution table {s}: "
            + ", ".join(f"{a} to {b}" for a, b in SUBST_TABLES[s].items()) + ".")
        for s in SUBST_TABLES}),
    "letters": (_distinct_letters, _ops({
        "reverse": (lambda s: s[::-1], "Write the letters in reverse order."),
        "sort": (sorted, "Sort the letters alphabetically."),
        "sort_desc": (lambda s: sorted(s, reverse=True), "Sort the letters in reverse alphabetical order."),
        "first3": (lambda s: s[:3], "Keep only the first three letters."),
        "last3": (lambda s: s[-3:], "Keep only the last three letters."),
        "first_last": (lambda s: [s[0], s[-1]], "Keep only the first and the last letter."),
        "drop_first": (lambda s: s[1:], "Remove the first letter."),
        "drop_last": (lambda s: s[:-1], "Remove the last letter."),
        "swap_ends": (lambda s: s[-1:] + s[1:-1] + s[:1], "Swap the first and the last letter."),
        "rotl1": (lambda s: s[1:] + s[:1], "Rotate the letters left by one: move the first letter to the end."),
        "rotl2": (lambda s: s[2:] + s[:2], "Rotate the letters left by two: move the first two to the end."),
        "rotr1": (lambda s: s[-1:] + s[:-1], "Rotate the letters right by one: move the last letter to the front."),
        "rotr2": (lambda s: s[-2:] + s[:-2], "Rotate the letters right by two: move the last two to the front."),
        "odd_places": (lambda s: s[::2], "Keep the letters in odd positions: the first, third, fifth and so on."),
        "even_places": (lambda s: s[1::2], "Keep the letters in even positions: the second, fourth and so on."),
        "drop_vowels": (lambda s: [c for c in s if c not in VOWELS], "Remove every vowel (a, e, i, o, u)."),
    })),
    "words": (lambda rng: " ".join(rng.sample(WORDS, rng.randint(4, 6))), _ops({
        "first": (lambda w: w[0], "Give the first word."),
        "second": (lambda w: w[1], "Give the second word."),
        "third": (lambda w: w[2], "Give the third word."),
        "last": (lambda w: w[-1], "Give the last word."),
        "penultimate": (lambda w: w[-2], "Give the word just before the last one."),
        "longest": (lambda w: max(w, key=len), "Give the longest word (the earliest one if several tie)."),
        "shortest": (lambda w: min(w, key=len), "Give the shortest word (the earliest one if several tie)."),
        "alpha_first": (min, "Give the word that comes first in alphabetical order."),
        "alpha_last": (max, "Give the word that comes last in alphabetical order."),
        "initials": (lambda w: [x[0] for x in w], "Give the first letter of each word."),
        "finals": (lambda w: [x[-1] for x in w], "Give the last letter of each word."),
        "count": (lambda w: str(len(w)), "Count the words."),
        "len_first": (lambda w: str(len(w[0])), "Count the letters of the first word."),
        "len_last": (lambda w: str(len(w[-1])), "Count the letters of the last word."),
        "first_two": (lambda w: w[:2], "Keep only the first two words."),
        "last_two": (lambda w: w[-2:], "Keep only the last two words."),
    })),
    "lists": (_digits(4, 7), _ops({
        "sort": (sorted, "Sort the numbers from smallest to largest."),
        "sort_desc": (lambda s: sorted(s, reverse=True), "Sort the numbers from largest to smallest."),
        "reverse": (lambda s: s[::-1], "Write the list of numbers backwards."),
        "dedupe": (lambda s: list(dict.fromkeys(s)), "Remove repeated numbers, keeping each first occurrence."),
        "first": (lambda s: s[0], "Give the first number of the list."),
        "second": (lambda s: s[1], "Give the second number of the list."),
        "last": (lambda s: s[-1], "Give the last number of the list."),
        "first2": (lambda s: s[:2], "Keep only the first two numbers of the list."),
        "last2": (lambda s: s[-2:], "Keep only the last two numbers of the list."),
        "max": (max, "Give the largest number in the list."),
        "min": (min, "Give the smallest number in the list."),
        "sum": (lambda s: str(sum(map(int, s))), "Add up all the numbers in the list."),
        "range": (lambda s: str(int(max(s)) - int(min(s))), "Subtract the smallest number from the largest."),
        "length": (lambda s: str(len(s)), "Say how many numbers the list holds."),
        "evens": (lambda s: [c for c in s if int(c) % 2 == 0], "Keep only the even numbers (none if there are none)."),
        "odds": (lambda s: [c for c in s if int(c) % 2 == 1], "Keep only the odd numbers (none if there are none)."),
    })),
    "count": (_digits(6, 10), _ops({
        **{str(d): (lambda s, d=str(d): str(s.count(d)), f"Count how many times the digit {d} appears.")
           for d in range(10)},
        "even": (lambda s: str(sum(int(c) % 2 == 0 for c in s)), "Count the even digits."),
        "odd": (lambda s: str(sum(int(c) % 2 == 1 for c in s)), "Count the odd digits."),
        "big": (lambda s: str(sum(c >= "5" for c in s)), "Count the digits that are 5 or more."),
        "small": (lambda s: str(sum(c < "5" for c in s)), "Count the digits that are less than 5."),
        "prime": (lambda s: str(sum(c in "2357" for c in s)), "Count the digits that are prime: 2, 3, 5 or 7."),
        "distinct": (lambda s: str(len(set(s))), "Count how many different digits appear."),
    })),
    "arith": (lambda rng: str(rng.randint(100, 999)), {
        param: (lambda x, fn=fn: str(fn(int(x))), text) for param, (fn, text) in {
            **{f"add{k}": (lambda n, k=k: n + k, f"Add {k} to the number.") for k in (1, 2, 10, 100)},
            **{f"sub{k}": (lambda n, k=k: n - k, f"Subtract {k} from the number.") for k in (1, 2, 10, 100)},
            "double": (lambda n: 2 * n, "Double the number."),
            "triple": (lambda n: 3 * n, "Multiply the number by three."),
            "half": (lambda n: n // 2, "Halve the number, rounding down."),
            "parity": (lambda n: "even" if n % 2 == 0 else "odd", "Say whether the number is even or odd."),
            **{f"mod{k}": (lambda n, k=k: n % k, f"Give the remainder of the number divided by {k}.")
               for k in (3, 4, 5)},
            "digit_sum": (lambda n: sum(map(int, str(n))), "Add up the digits of the number."),
        }.items()}),
    "numfmt": (lambda rng: str(rng.randint(1, 999)), {
        param: (lambda x, fn=fn: fn(int(x)), text) for param, (fn, text) in {
            **{f"base{b}": (lambda n, b=b: _base(n, b), f"Write the number in base {b}.")
               for b in (2, 3, 4, 5, 6, 7, 8, 9, 11, 12)},
            "hex": (lambda n: _base(n, 16), "Write the number in hexadecimal, lower case."),
            "roman": (_roman, "Write the number in Roman numerals, lower case."),
            "words": (_words, "Write the number out in English words."),
            "spell_digits": (lambda n: " ".join(ONES[int(c)] for c in str(n)), "Name each digit in English."),
            "ordinal": (_ordinal, "Write the number as an ordinal, like 1st, 2nd or 3rd."),
            "pad4": (lambda n: f"{n:04}", "Pad the number with zeros to four digits."),
        }.items()}),
    "dates": (_date, {
        param: (lambda x, fn=fn: fn(*map(int, x.split("-"))), text) for param, (fn, text) in _DATE_FORMATS.items()}),
    "pattern": (_pattern, {
        param: (lambda x, fn=fn: fn(x.split()), text) for param, (fn, text) in {
            **{f"next{k}": (lambda s, k=k: _continue(s, len(s), k),
                            f"Continue the repeating pattern with its next {ONES[k] + ' items' if k > 1 else 'item'}.")
               for k in (1, 2, 3, 4)},
            "back1": (lambda s: _continue(s, -1, 1), "Give the item that would come just before the pattern starts."),
            "back2": (lambda s: _continue(s, -2, 2), "Give the two items that would come just before the pattern."),
            "unit": (lambda s: _continue(s, 0, _period(s)), "Give the unit that repeats in the pattern."),
            "period": (lambda s: str(_period(s)), "Say how many items the repeating unit of the pattern holds."),
        }.items()}),
    "brackets": (_brackets, _ops({
        "close_all": (lambda t: [BRACKETS[b] for b in reversed(_stack(t))], "Close all open brackets in order."),
        "close_next": (lambda t: BRACKETS[_stack(t)[-1]], "Give only the next closing bracket needed."),
        "close_next2": (lambda t: [BRACKETS[b] for b in _stack(t)[:-3:-1]], "Give the next two closing brackets."),
        "close_outer": (lambda t: BRACKETS[_stack(t)[0]], "Give the closing bracket that will be needed last."),
        "open_left": (_stack, "List the brackets that are still open, outermost first."),
        "depth": (lambda t: str(len(_stack(t))), "Count the brackets that are still open."),
        "opens": (lambda t: str(sum(b in BRACKETS for b in t)), "Count the opening brackets."),
        "closes": (lambda t: str(sum(b not in BRACKETS for b in t)), "Count the closing brackets."),
    })),
}

SKILLS: dict[str, Skill] = {
    f"{family}_{param}": Skill(f"{family}_{param}", family, text, sampler, solve)
    for family, (sampler, table) in FAMILIES_SPEC.items() for param, (solve, text) in table.items()}
FAMILIES: dict[str, list[str]] = {f: [n for n, s in SKILLS.items() if s.family == f] for f in FAMILIES_SPEC}


def get(name: str) -> Skill:
    if name not in SKILLS:
        raise KeyError(f"unknown skill {name!r}: skills are <family>_<param>, families {sorted(FAMILIES)} "
                       "(molebench.skills.FAMILIES lists each family's skills)")
    return SKILLS[name]


def split_of(x: str) -> str:
    """'test' for one input in TEST_SHARE, else 'train': a stable hash of the input text alone."""
    return "test" if int(hashlib.sha256(x.encode()).hexdigest()[:8], 16) % TEST_SHARE == 0 else "train"


def examples(name: str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """Exactly `n` raw examples of skill `name` with distinct inputs of `split`, the same ones for the same seed."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    skill = get(name)
    rng = random.Random(f"{name}|{split}|{seed}")
    out, seen = [], set()
    for _ in range(40 * n + 2000):  # bounded, so that asking for more than the input space holds fails fast
        if len(out) == n:
            break
        ex = skill.make(rng)
        if ex["input"] not in seen and split_of(ex["input"]) == split:
            seen.add(ex["input"])
            out.append(ex)
    if len(out) < n:
        raise ValueError(f"skill {name!r} found only {len(out)} distinct {split} inputs of the {n} asked for "
                         f"(seed {seed}): ask for fewer, or widen the input sampler of family {skill.family!r} "
                         "in molebench/skills.py")
    return out


def prompt(x: str, name: str | None = None) -> str:
    """The model's prompt: the input alone, so that a LoRA must carry its skill. With a skill `name`, its
    instruction comes first (for baselines that must be told the task: zero-shot, few-shot)."""
    return (f"{get(name).instruction}\n" if name else "") + PROMPT.format(input=x)


def pool(spec: str | int | list) -> list[str]:
    """Skill names for a pool spec: "all"; N (an int or digits): the first N skills taking one from each family in
    turn, so that smaller pools nest in larger ones and span the families; "family:F"; "all_but:F"; a skill name;
    or a list of these (their union, in order)."""
    if isinstance(spec, list):
        return list(dict.fromkeys(n for s in spec for n in pool(s)))
    spec = str(spec)
    if spec == "all":
        return list(SKILLS)
    if spec.isdigit():
        columns = list(FAMILIES.values())
        order = [c[i] for i in range(max(map(len, columns))) for c in columns if i < len(c)]
        if int(spec) > len(order):
            raise ValueError(f"pool {spec!r}: the skill world has only {len(order)} skills")
        return order[:int(spec)]
    kind, _, family = spec.partition(":")
    if kind in ("family", "all_but"):
        if family not in FAMILIES:
            raise KeyError(f"pool {spec!r}: unknown family {family!r}, families are {sorted(FAMILIES)}")
        return FAMILIES[family] if kind == "family" else [n for n in SKILLS if SKILLS[n].family != family]
    return [get(spec).name]


def task_spec(name: str) -> dict:
    """The skill as a molebench task spec (the keys of molebench.core.data.TaskSpec), for the task registry: task name
    skill_<name>, family the skill's family, the input alone as the prompt, the instruction kept beside it."""
    skill = get(name)
    return {"name": TASK_PREFIX + name, "family": skill.family, "source": {"kind": "skill", "name": name},
            "template": PROMPT, "answer": "generate", "metrics": ("exact_match",), "max_new_tokens": 24,
            "description": f"Skill world, family {skill.family}: {skill.instruction}",
            "instruction": skill.instruction, "version": 2}
