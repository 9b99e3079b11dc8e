"""The skill world: size, names, seeding, disjoint splits, checkers, disagreement inside families, known answers."""

import ast
import itertools
import random
import sys
from pathlib import Path

import pytest

from molebench.core import skills
from molebench.core.data import TaskSpec, build_splits, list_tasks, load_task, pool_tasks
from molebench.core.skills import FAMILIES, FAMILIES_SPEC, SKILLS, examples, pool, prompt, split_of

ALL = list(SKILLS)
N_TRAIN, N_TEST = 400, 40  # the mini scale's split sizes (config/config.yaml)


def test_world_size_names_and_instructions():
    assert len(SKILLS) >= 128 and len(FAMILIES) >= 6
    assert sum(len(table) for _, table in FAMILIES_SPEC.values()) == len(SKILLS)  # no name built twice
    assert all(len(names) >= 8 for names in FAMILIES.values())
    for name, skill in SKILLS.items():
        assert name == skill.name and name.startswith(f"{skill.family}_") and name in FAMILIES[skill.family]
        assert name.replace("_", "").isalnum() and name == name.lower()
    instructions = [s.instruction for s in SKILLS.values()]
    assert len(set(instructions)) == len(instructions)
    assert all(i[0].isupper() and i.endswith(".") for i in instructions)


def test_module_uses_only_the_standard_library():
    tree = ast.parse(Path(skills.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.mark.parametrize("name", ALL)
def test_splits_disjoint_checked_and_short(name):
    train, test = examples(name, N_TRAIN, seed=0, split="train"), examples(name, N_TEST, seed=0, split="test")
    assert len(train) == N_TRAIN and len(test) == N_TEST
    train_inputs, test_inputs = {ex["input"] for ex in train}, {ex["input"] for ex in test}
    assert len(train_inputs) == N_TRAIN and len(test_inputs) == N_TEST
    assert not train_inputs & test_inputs
    assert {split_of(x) for x in train_inputs} == {"train"} and {split_of(x) for x in test_inputs} == {"test"}
    skill = SKILLS[name]
    for ex in train + test:
        (ref,) = ex["references"]
        assert skill.check(ref, ex["references"]) and skill.check(f"  {ref.upper()} ", ex["references"])
        assert not skill.check(ref + " x", ex["references"])
        assert ref == skill.solve(ex["input"])
        assert 0 < len(ex["input"]) <= 60 and 0 < len(ref) <= 26
        assert ref == ref.lower() and ex["input"] == ex["input"].lower() and "\n" not in ref + ex["input"]


@pytest.mark.parametrize("name", ALL[::7])
def test_seeding(name):
    assert examples(name, 30, seed=0) == examples(name, 30, seed=0)
    assert examples(name, 30, seed=0) != examples(name, 30, seed=1)
    assert examples(name, 30, seed=0, split="test") != examples(name, 30, seed=1, split="test")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_skills_of_a_family_disagree_on_shared_inputs(family):
    """The same input, two skills of one family: different answers on at least half of 100 shared inputs, so a
    model must know the skill (not only the family) to answer."""
    sample = FAMILIES_SPEC[family][0]
    rng = random.Random(family)
    inputs = [sample(rng) for _ in range(100)]
    for a, b in itertools.combinations(FAMILIES[family], 2):
        disagree = sum(SKILLS[a].solve(x) != SKILLS[b].solve(x) for x in inputs)
        assert disagree >= 50, (a, b, disagree)


KNOWN = [  # (skill, input, answer), worked out by hand
    ("caesar_3", "x y z", "a b c"), ("caesar_1", "a b z", "b c a"), ("caesar_16", "k a", "a q"),
    ("subst_0", "a b c j", "h d f i"),  # pins the seeded table (its instruction lists it)
    ("letters_reverse", "c a t s", "s t a c"), ("letters_sort", "c a t s", "a c s t"),
    ("letters_swap_ends", "c a t s", "s a t c"), ("letters_rotl2", "c a t s", "t s c a"),
    ("letters_rotr1", "c a t s", "s c a t"), ("letters_odd_places", "c a t s", "c t"),
    ("letters_even_places", "c a t s", "a s"), ("letters_drop_vowels", "c a t s", "c t s"),
    ("letters_first_last", "c a t s", "c s"),
    ("words_longest", "fox cat whale owl", "whale"), ("words_shortest", "fox cat whale owl", "fox"),
    ("words_alpha_first", "fox cat whale owl", "cat"), ("words_initials", "fox cat whale owl", "f c w o"),
    ("words_penultimate", "fox cat whale owl", "whale"), ("words_len_last", "fox cat whale owl", "3"),
    ("lists_sort", "3 1 3 9", "1 3 3 9"), ("lists_dedupe", "3 1 3 9", "3 1 9"), ("lists_sum", "3 1 3 9", "16"),
    ("lists_range", "3 1 3 9", "8"), ("lists_evens", "3 1 3 9", "none"), ("lists_last2", "3 1 3 9", "3 9"),
    ("count_2", "1 2 2 5 7 0", "2"), ("count_prime", "1 2 2 5 7 0", "4"), ("count_big", "1 2 2 5 7 0", "2"),
    ("count_distinct", "1 2 2 5 7 0", "5"), ("count_even", "1 2 2 5 7 0", "3"),
    ("arith_add1", "999", "1000"), ("arith_sub100", "999", "899"), ("arith_half", "999", "499"),
    ("arith_parity", "999", "odd"), ("arith_mod4", "999", "3"), ("arith_digit_sum", "999", "27"),
    ("arith_triple", "999", "2997"),
    ("numfmt_base2", "944", "1110110000"), ("numfmt_hex", "944", "3b0"), ("numfmt_roman", "944", "cmxliv"),
    ("numfmt_words", "944", "nine hundred forty-four"), ("numfmt_words", "300", "three hundred"),
    ("numfmt_words", "115", "one hundred fifteen"), ("numfmt_base12", "143", "bb"),
    ("numfmt_spell_digits", "307", "three zero seven"), ("numfmt_ordinal", "11", "11th"),
    ("numfmt_ordinal", "22", "22nd"), ("numfmt_ordinal", "101", "101st"), ("numfmt_ordinal", "113", "113th"),
    ("numfmt_pad4", "7", "0007"),
    ("dates_dmy", "2023-04-07", "07/04/2023"), ("dates_mdy", "2023-04-07", "04/07/2023"),
    ("dates_long", "2023-04-07", "april 7, 2023"), ("dates_quarter", "2023-04-07", "q2"),
    ("dates_dmy_short", "2023-04-07", "07/04/23"), ("dates_day", "2023-04-07", "7"),
    ("dates_abbr", "2023-04-07", "7 apr 2023"),
    ("pattern_next1", "a b c a b c a b", "c"), ("pattern_next4", "a b c a b c a b", "c a b c"),
    ("pattern_back1", "a b c a b c a b", "c"), ("pattern_back2", "a b c a b c a b", "b c"),
    ("pattern_unit", "a b c a b c a b", "a b c"), ("pattern_period", "a b c a b c a b", "3"),
    ("brackets_close_all", "( [ { } <", "> ] )"), ("brackets_close_next", "( [ { } <", ">"),
    ("brackets_close_next2", "( [ { } <", "> ]"), ("brackets_close_outer", "( [ { } <", ")"),
    ("brackets_open_left", "( [ { } <", "( [ <"), ("brackets_depth", "( [ { } <", "3"),
    ("brackets_opens", "( [ { } <", "4"), ("brackets_closes", "( [ { } <", "1"),
]


@pytest.mark.parametrize("name, x, answer", KNOWN)
def test_known_answers(name, x, answer):
    assert SKILLS[name].solve(x) == answer


def test_every_family_has_a_known_answer():
    assert {SKILLS[name].family for name, _, _ in KNOWN} == set(FAMILIES)


def test_substitution_tables_are_permutations():
    for table in skills.SUBST_TABLES.values():
        assert sorted(table) == sorted(table.values()) == sorted(skills.SUBST_ALPHABET)
    assert len({tuple(t.values()) for t in skills.SUBST_TABLES.values()}) == len(skills.SUBST_TABLES)


def test_asking_too_much_names_the_skill_and_the_fix():
    with pytest.raises(ValueError, match=r"skill 'arith_add1' found only \d+ distinct test inputs.*ask for fewer"):
        examples("arith_add1", 500, seed=0, split="test")
    with pytest.raises(ValueError, match="split must be"):
        examples("arith_add1", 5, split="dev")
    with pytest.raises(KeyError, match="caesar"):
        examples("no_such_skill", 5)


def test_prompt_is_the_input_alone_unless_asked():
    x = examples("caesar_2", 1)[0]["input"]
    assert prompt(x) == f"Input: {x}\nAnswer:"
    assert prompt(x, "caesar_2") == f"{SKILLS['caesar_2'].instruction}\nInput: {x}\nAnswer:"
    spec = skills.task_spec("caesar_2")
    assert spec["template"].format(input=x) == prompt(x) and spec["source"] == {"kind": "skill", "name": "caesar_2"}


def test_pools():
    assert pool("all") == ALL and pool(len(ALL)) and sorted(pool(len(ALL))) == sorted(ALL)
    for n in (8, 24, 48, 128):
        names = pool(n)
        assert len(names) == len(set(names)) == n and names == pool(str(n)) and names == pool(128)[:n]
    assert len({SKILLS[n].family for n in pool(8)}) == 8  # small pools span the families
    assert pool("family:caesar") == FAMILIES["caesar"]
    rest = pool("all_but:dates")
    assert len(rest) == len(ALL) - len(FAMILIES["dates"]) and not set(rest) & set(FAMILIES["dates"])
    assert pool(["family:pattern", "pattern_next1", "caesar_3"]) == FAMILIES["pattern"] + ["caesar_3"]
    with pytest.raises(KeyError, match="unknown family"):
        pool("family:nope")
    with pytest.raises(ValueError, match="only"):
        pool(len(ALL) + 1)


# ---- skills as tasks of the task registry (molebench.core.data) -------------------------------------------------

def test_every_skill_is_a_listed_task():
    tasks = set(list_tasks())
    assert {skills.TASK_PREFIX + name for name in ALL} <= tasks
    assert "dyck_languages" in tasks  # the YAML tasks are still there


@pytest.mark.parametrize("name", ALL[::16])
def test_skill_task_loads(name):
    spec = load_task(f"skill_{name}")
    assert isinstance(spec, TaskSpec) and spec.name == f"skill_{name}"
    assert spec.source == {"kind": "skill", "name": name} and spec.family == SKILLS[name].family
    assert spec.metrics == ("exact_match",) and spec.answer == "generate"
    assert spec.instruction == SKILLS[name].instruction and spec.instruction in spec.description
    assert spec.template.format(input="a b") == prompt("a b")  # the input alone, no instruction


@pytest.mark.parametrize("name", ["caesar_3", "lists_sort", "brackets_depth", "dates_long"])
def test_skill_task_splits(name, tmp_path):
    spec = load_task(f"skill_{name}")
    splits, report = build_splits(spec, n_train=64, n_test=40, seed=0, raw_dir=tmp_path)
    assert report["n_train"] == 64 and report["n_test"] == 40 and report["dropped"] == {}
    train_inputs = {r["input"] for r in splits["train"]}
    assert len(train_inputs) == 64 and not {r["input"] for r in splits["test"]} & train_inputs
    # the splits are the skill world's own: skills.examples(..., split=...) with the split seed, rendered by prompt()
    for split, n in (("train", 64), ("test", 40)):
        raw = examples(name, n, seed=0, split=split)
        assert [r["input"] for r in splits[split]] == [prompt(ex["input"]) for ex in raw]
        assert [r["references"] for r in splits[split]] == [ex["references"] for ex in raw]
    for r in splits["train"] + splits["test"]:
        assert SKILLS[name].check(r["references"][0], r["references"])
    again, _ = build_splits(spec, n_train=64, n_test=40, seed=0, raw_dir=tmp_path)
    other, _ = build_splits(spec, n_train=64, n_test=40, seed=1, raw_dir=tmp_path)
    assert again == splits and other != splits
    bigger, _ = build_splits(spec, n_train=128, n_test=40, seed=0, raw_dir=tmp_path)
    assert bigger["test"] == splits["test"]  # the test split does not depend on n_train


def test_unknown_skill_task_is_unknown():
    with pytest.raises(KeyError, match="unknown task"):
        load_task("skill_no_such_skill")


def test_a_lora_pool_can_name_skill_tasks():
    specs = pool_tasks({"ciphers": ["skill_caesar_3", "skill_subst_0"], "lists": ["skill_lists_sort"]})
    assert list(specs) == ["skill_caesar_3", "skill_subst_0", "skill_lists_sort"]
    assert specs["skill_caesar_3"].family == "ciphers" and specs["skill_caesar_3"].source["kind"] == "skill"
    assert specs["skill_lists_sort"].instruction == SKILLS["lists_sort"].instruction
