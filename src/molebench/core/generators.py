"""The project's own task generators: BBH-like algorithmic tasks, struct-to-text tasks and tiny smoke-scale tasks.

A generator makes one raw example from a `random.Random`; `generate` draws until it has `n` examples with distinct
inputs, so that train and test splits never share an input. Raw examples have the shapes data.py documents:

    {"input": str, "references": [str]}                  # generation tasks
    {"input": str, "options": [str, ...], "label": int}  # multiple choice

The BBH-like generators follow the BIG-bench Hard formats (Suzgun et al. 2022) but are the project's own code and
draw from the project's own word lists: results on them are "BBH-like", not BBH.
"""

from __future__ import annotations

import itertools
import random

from molebench.core.registry import Registry

# name -> fn(rng: random.Random, **kwargs) -> one raw example
GENERATORS = Registry("generator")
register_generator = GENERATORS.register


def generate(name: str, n: int, seed: int, **kwargs) -> list[dict]:
    """Exactly `n` raw examples with distinct inputs, the same ones for the same seed and kwargs."""
    generator = GENERATORS[name]
    rng = random.Random(seed)
    out, seen = [], set()
    # a generous bound, so that asking for more examples than the task's input space holds fails instead of hanging
    for _ in range(20 * n + 1000):
        if len(out) == n:
            break
        ex = generator(rng, **kwargs)
        if ex["input"] not in seen:
            seen.add(ex["input"])
            out.append(ex)
    if len(out) < n:
        raise ValueError(f"generator {name!r} found only {len(out)} distinct inputs of the {n} asked for "
                         f"(kwargs {kwargs}): ask for fewer or make the task larger")
    return out


def corpus(seed: int = 0, per_generator: int = 300) -> list[str]:
    """Lines of text from every generator (inputs, references, options) to train a small tokenizer on."""
    lines = []
    for name in sorted(GENERATORS):
        for ex in generate(name, per_generator, seed):
            lines.append(ex["input"])
            lines.extend(ex.get("references", []))
            lines.extend(ex.get("options", []))
    return lines


# ---- word lists ----------------------------------------------------------------------------------------------

# Common English words (mostly nouns), lower-case letters only.
WORDS = [
    "able", "acid", "actor", "adult", "advice", "afraid", "age", "agent", "air", "album", "alive", "animal", "answer",
    "apple", "area", "arm", "army", "art", "artist", "aspect", "baby", "back", "bag", "ball", "band", "bank", "base",
    "basket", "bath", "beach", "bean", "bear", "beauty", "bed", "beef", "bell", "belt", "bench", "bird", "birth",
    "bit", "black", "blade", "blood", "blue", "board", "boat", "body", "bone", "book", "border", "bottle", "bowl",
    "box", "brain", "branch", "bread", "brick", "bridge", "bright", "brother", "brown", "brush", "bubble", "bucket",
    "budget", "cabin", "cake", "camera", "camp", "candle", "canvas", "captain", "card", "care", "carpet", "cart",
    "castle", "cat", "cause", "cell", "chair", "chalk", "chance", "change", "channel", "cheese", "chest", "chicken",
    "child", "circle", "city", "class", "clock", "cloud", "coast", "coat", "coffee", "coin", "cold", "color",
    "comfort", "copper", "corn", "cotton", "country", "cousin", "cover", "cow", "crowd", "crown", "cup", "curtain",
    "cushion", "dance", "danger", "daughter", "day", "deer", "desert", "desk", "diamond", "dinner", "doctor", "dog",
    "door", "dragon", "drawer", "dream", "dress", "drink", "drum", "dust", "eagle", "earth", "echo", "edge", "egg",
    "engine", "escape", "evening", "event", "expert", "eye", "fabric", "face", "factory", "family", "farm", "father",
    "feather", "fence", "field", "finger", "fire", "fish", "flag", "flame", "floor", "flower", "fog", "forest", "fork",
    "fox", "friend", "frog", "fruit", "garden", "gate", "gift", "glass", "glove", "goat", "gold", "grass", "guitar",
    "hair", "hammer", "hand", "harbor", "hat", "heart", "helmet", "hill", "history", "hole", "honey", "horse",
    "hospital", "house", "hunter", "ice", "idea", "island", "jacket", "jelly", "jewel", "journey", "judge", "juice",
    "kettle", "key", "king", "kitchen", "kite", "knee", "knife", "ladder", "lake", "lamp", "language", "leaf", "lemon",
    "letter", "library", "light", "lion", "lizard", "lock", "machine", "magnet", "map", "market", "meadow", "metal",
    "milk", "mirror", "monkey", "moon", "morning", "mother", "mountain", "mouse", "music", "nail", "needle", "nest",
    "night", "noise", "north", "number", "ocean", "office", "onion", "orange", "owl", "page", "paint", "palace",
    "paper", "parent", "park", "party", "pencil", "pepper", "piano", "picture", "pillow", "pilot", "planet", "plant",
    "plate", "pocket", "poem", "pond", "potato", "powder", "prince", "puzzle", "queen", "question", "rabbit", "radio",
    "rain", "river", "road", "robot", "rock", "roof", "room", "root", "rope", "rose", "salt", "sand", "school",
    "science", "sea", "season", "seed", "shadow", "sheep", "shell", "ship", "shirt", "shoe", "silver", "sister", "sky",
    "snake", "snow", "soap", "soldier", "song", "soup", "spider", "spoon", "spring", "square", "star", "stone",
    "storm", "story", "street", "sugar", "summer", "sun", "table", "tail", "teacher", "tent", "thunder", "ticket",
    "tiger", "timber", "tomato", "tooth", "towel", "tower", "town", "train", "tree", "truck", "tunnel", "turtle",
    "umbrella", "uncle", "valley", "village", "violin", "voice", "wagon", "wall", "water", "wave", "wheel", "window",
    "winter", "wolf", "wood", "world", "yard", "yellow", "zebra"
]

# First names for web_of_lies (BBH uses first names the same way)
NAMES = [
    "Alejandro", "Amberly", "Andree", "Antwan", "Bernita", "Christie", "Conception", "Crista", "Delbert", "Delfina",
    "Elanor", "Ella", "Fidel", "Gwenn", "Helene", "Inga", "Jaymie", "Jerry", "Jim", "Ka", "Kandi", "Kristian", "Leda",
    "Lorine", "Maybelle", "Millicent", "Millie", "Osvaldo", "Phoebe", "Raymond", "Rashida", "Sal", "Shalonda",
    "Shaunda", "Sherrie", "Sima", "Tamika", "Teressa", "Vernell", "Vina", "Willian", "Yoland", "Zachary"
]

# object_counting: category as the question names it -> [(singular, plural), ...]
OBJECT_CATEGORIES = {
    "fruits": [("apple", "apples"), ("banana", "bananas"), ("blackberry", "blackberries"), ("grape", "grapes"),
               ("nectarine", "nectarines"), ("orange", "oranges"), ("peach", "peaches"), ("plum", "plums"),
               ("raspberry", "raspberries"), ("strawberry", "strawberries")],
    "vegetables": [("cabbage", "cabbages"), ("carrot", "carrots"), ("cauliflower", "cauliflowers"),
                   ("garlic", "garlics"), ("head of broccoli", "heads of broccoli"), ("lettuce head", "lettuce heads"),
                   ("onion", "onions"), ("potato", "potatoes"), ("stalk of celery", "stalks of celery"),
                   ("yam", "yams")],
    "musical instruments": [("accordion", "accordions"), ("clarinet", "clarinets"), ("drum", "drums"),
                            ("flute", "flutes"), ("piano", "pianos"), ("trombone", "trombones"),
                            ("trumpet", "trumpets"), ("violin", "violins")],
    "animals": [("bear", "bears"), ("cat", "cats"), ("chicken", "chickens"), ("cow", "cows"), ("donkey", "donkeys"),
                ("duck", "ducks"), ("fish", "fish"), ("frog", "frogs"), ("goat", "goats"), ("mouse", "mice"),
                ("pig", "pigs"), ("rabbit", "rabbits"), ("snail", "snails"), ("snake", "snakes")],
    "objects": [("bed", "beds"), ("car", "cars"), ("chair", "chairs"), ("couch", "couches"), ("fridge", "fridges"),
                ("lamp", "lamps"), ("microwave", "microwaves"), ("oven", "ovens"), ("stove", "stoves"),
                ("table", "tables"), ("toaster", "toasters")],
}
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]

BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}


# ---- BBH-like ------------------------------------------------------------------------------------------------

# Python's precedence: or < and < not < constant. A child binding more loosely than its parent needs parentheses.
_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "const": 4}


def _bool_tree(rng: random.Random, size: int) -> tuple:
    """A random expression with exactly `size` symbols (constants and operators): (kind, value, text)."""
    if size == 1:
        value = rng.random() < 0.5
        return "const", value, str(value)
    if size == 2 or rng.random() < 0.25:
        kind, value, text = _bool_tree(rng, size - 1)
        if _PRECEDENCE[kind] < _PRECEDENCE["not"] or rng.random() < 0.2:
            text = f"( {text} )"
        return "not", not value, f"not {text}"
    op = rng.choice(["and", "or"])
    left_size = rng.randint(1, size - 2)
    parts = []
    for kind, value, text in (_bool_tree(rng, left_size), _bool_tree(rng, size - 1 - left_size)):
        if _PRECEDENCE[kind] < _PRECEDENCE[op] or (kind != "const" and rng.random() < 0.3):
            text = f"( {text} )"
        parts.append((value, text))
    (lv, lt), (rv, rt) = parts
    return op, (lv and rv) if op == "and" else (lv or rv), f"{lt} {op} {rt}"


@register_generator("boolean_expressions")
def boolean_expressions(rng: random.Random, min_size: int = 5, max_size: int = 7) -> dict:
    """"not ( True and False ) or True" -> "True", with min_size to max_size constants and operators.

    Size 5 alone holds only about 460 distinct expressions, too few for a 400 + 50 split; 5 to 7 holds over 10,000.
    """
    _, value, text = _bool_tree(rng, rng.randint(min_size, max_size))
    return {"input": text, "references": [str(value)]}


def _flat_value(numbers: list[int], ops: list[str]) -> int:
    """Value of n0 op0 n1 op1 n2 ... with * before + and -, left to right otherwise."""
    terms, signs = [numbers[0]], []
    for op, x in zip(ops, numbers[1:]):
        if op == "*":
            terms[-1] *= x
        else:
            terms.append(x)
            signs.append(op)
    value = terms[0]
    for sign, term in zip(signs, terms[1:]):
        value = value + term if sign == "+" else value - term
    return value


@register_generator("multistep_arithmetic")
def multistep_arithmetic(rng: random.Random, terms: int = 2, max_abs: int = 9) -> dict:
    """"((-5 + 9) * (4 - -7)) =" -> "44": two parenthesised groups of `terms` integers in [-max_abs, max_abs].

    BBH's multistep_arithmetic_two uses terms=4; the default 2 keeps the task within reach of a 135M model.
    """
    groups = []
    for _ in range(2):
        numbers = [rng.randint(-max_abs, max_abs) for _ in range(terms)]
        ops = [rng.choice("+-*") for _ in range(terms - 1)]
        text = " ".join(str(numbers[0]) if i == 0 else f"{ops[i - 1]} {numbers[i]}" for i in range(terms))
        groups.append((_flat_value(numbers, ops), text))
    outer = rng.choice("+-*")
    value = _flat_value([groups[0][0], groups[1][0]], [outer])
    return {"input": f"(({groups[0][1]}) {outer} ({groups[1][1]})) =", "references": [str(value)]}


@register_generator("web_of_lies")
def web_of_lies(rng: random.Random, people: int = 5) -> dict:
    """"Question: Fidel lies. Jerry says Fidel tells the truth. ... Does Leda tell the truth?" -> "Yes"/"No"."""
    names = rng.sample(NAMES, people)
    truthful = rng.random() < 0.5
    sentences = [f"{names[0]} {'tells the truth' if truthful else 'lies'}."]
    for previous, name in itertools.pairwise(names):
        claims_truth = rng.random() < 0.5
        sentences.append(f"{name} says {previous} {'tells the truth' if claims_truth else 'lies'}.")
        # a speaker is truthful exactly when the claim about the previous person is right
        truthful = claims_truth == truthful
    question = f"Question: {' '.join(sentences)} Does {names[-1]} tell the truth?"
    return {"input": question, "references": ["Yes" if truthful else "No"]}


@register_generator("word_sorting")
def word_sorting(rng: random.Random, min_words: int = 3, max_words: int = 6) -> dict:
    """"Sort the following words alphabetically: List: river apple moon" -> "apple moon river"."""
    words = rng.sample(WORDS, rng.randint(min_words, max_words))
    return {"input": f"Sort the following words alphabetically: List: {' '.join(words)}",
            "references": [" ".join(sorted(words))]}


def _join_list(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


@register_generator("object_counting")
def object_counting(rng: random.Random, max_kinds: int = 4, max_distractors: int = 4, max_count: int = 3) -> dict:
    """"I have a piano, two flutes, and an apple. How many musical instruments do I have?" -> "3"."""
    category = rng.choice(sorted(OBJECT_CATEGORIES))
    others = [item for c, items in sorted(OBJECT_CATEGORIES.items()) if c != category for item in items]
    chosen = [(item, True) for item in rng.sample(OBJECT_CATEGORIES[category], rng.randint(1, max_kinds))]
    chosen += [(item, False) for item in rng.sample(others, rng.randint(0, max_distractors))]
    rng.shuffle(chosen)
    phrases, total = [], 0
    for (singular, plural), counted in chosen:
        # mostly single items, as in BBH
        count = 1 if rng.random() < 0.6 else rng.randint(2, max_count)
        total += count if counted else 0
        if count == 1:
            phrases.append(f"{'an' if singular[0] in 'aeiou' else 'a'} {singular}")
        else:
            phrases.append(f"{NUMBER_WORDS[count]} {plural}")
    return {"input": f"I have {_join_list(phrases)}. How many {category} do I have?", "references": [str(total)]}


@register_generator("dyck_languages")
def dyck_languages(rng: random.Random, min_len: int = 3, max_len: int = 12) -> dict:
    """"Complete the rest of the sequence, ... Input: [ { [ ] ( )" -> "} ]": close the open brackets in order."""
    tokens, stack = [], []
    for _ in range(rng.randint(min_len, max_len)):
        if not stack or rng.random() < 0.55:
            opening = rng.choice(sorted(BRACKETS))
            tokens.append(opening)
            stack.append(opening)
        else:
            tokens.append(BRACKETS[stack.pop()])
    if not stack:  # the sequence closed itself: open one more so that there is something to complete
        opening = rng.choice(sorted(BRACKETS))
        tokens.append(opening)
        stack.append(opening)
    return {"input": "Complete the rest of the sequence, making sure that the parentheses are closed properly. "
                     f"Input: {' '.join(tokens)}",
            "references": [" ".join(BRACKETS[b] for b in reversed(stack))]}


# ---- struct-to-text: E2E-, WebNLG- and CommonGen-like ---------------------------------------------------------
# The mini scale's struct-to-text family, made here so that the default run needs no download (the BIG-bench archive
# that held E2E, WebNLG and CommonGen left PyPI). Each input has several realisations, in a seeded order: training
# sees the first (as with the real datasets' merged references), scoring takes the best ROUGE over all of them.

RESTAURANTS = ["Green Olive", "The Copper Kettle", "Blue Lantern", "The Old Mill", "Saffron House", "The Red Fox",
               "Harbour View", "The Silver Spoon", "Little Tokyo", "The Brass Bell", "Maple Corner", "The Wandering Goat",
               "Stone Bridge", "The Lemon Tree", "Golden Wok", "The Crooked Oak"]
EAT_TYPES = ["restaurant", "coffee shop", "pub"]
FOODS = ["French", "Italian", "Chinese", "Indian", "Japanese", "English", "Mexican"]
PRICES = ["cheap", "moderate", "high"]
RATINGS = ["low", "average", "high"]
AREAS = ["city centre", "riverside"]


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


@register_generator("restaurant_to_text")
def restaurant_to_text(rng: random.Random, min_extra: int = 2, max_extra: int = 5) -> dict:
    """"name[Green Olive], eatType[pub], food[Italian], area[riverside]" -> "Green Olive is an Italian pub in the
    riverside area." (E2E's meaning representations, the project's own names and phrasings)."""
    name, near = rng.sample(RESTAURANTS, 2)
    values = {"eatType": rng.choice(EAT_TYPES), "food": rng.choice(FOODS), "priceRange": rng.choice(PRICES),
              "customer rating": rng.choice(RATINGS), "area": rng.choice(AREAS),
              "familyFriendly": rng.choice(["yes", "no"]), "near": near}
    drawn = set(rng.sample(sorted(values), rng.randint(min_extra, max_extra)))
    keys = [k for k in values if k in drawn]
    mr = {"name": name, **{k: values[k] for k in keys}}
    kind = mr.get("eatType", "place")
    head = f"{mr['food']} {kind}" if "food" in mr else kind
    where = " ".join(c for k, c in [("area", f"in the {mr.get('area')} area"), ("near", f"near {near}")] if k in mr)
    rating = mr.get("customer rating", "")
    having = [c for k, c in [("priceRange", f"{mr.get('priceRange')} prices"),
                             ("customer rating", f"{_article(rating or 'a')} {rating} customer rating")] if k in mr]
    having = f" with {' and '.join(having)}" if having else ""
    family = {"yes": " It is family friendly.", "no": " It is not family friendly."}.get(mr.get("familyFriendly"), "")
    kids = {"yes": " for families", "no": " for adults only"}.get(mr.get("familyFriendly"), "")
    first = f"{name} is {_article(head)} {head}{' ' + where if where else ''}{',' if where and having else ''}" \
            f"{having}.{family}"
    second = (f"{where[0].upper()}{where[1:]}, there is" if where else "There is") + \
        f" {_article(head)} {head}{kids} called {name}{having}."
    references = [first, second]
    rng.shuffle(references)
    return {"input": ", ".join(f"{k}[{v}]" for k, v in mr.items()), "references": references}


PERSON_FACTS = {  # relation -> (values, "X is ..." phrasing, "X ..." verb phrasing)
    "birthPlace": (["Oslo", "Lyon", "Porto", "Dublin", "Krakow", "Utrecht", "Tampere", "Graz"],
                   "born in {}", "was born in {}"),
    "occupation": (["architect", "engineer", "painter", "test pilot", "economist", "chemist", "journalist"],
                   "{}", "works as {}"),
    "almaMater": (["Northfield University", "Lakeside College", "Westbrook Institute", "Eastgate University"],
                  "a graduate of {}", "studied at {}"),
    "birthYear": ([str(year) for year in range(1931, 1991, 3)], "born in {}", "was born in {}"),
    "nationality": (["Norwegian", "French", "Portuguese", "Irish", "Polish", "Dutch", "Finnish", "Austrian"],
                    "{}", "is {}"),
}
SURNAMES = ["Berg", "Moreau", "Silva", "Byrne", "Nowak", "de Vries", "Virtanen", "Gruber", "Lind", "Costa"]


@register_generator("triples_to_text")
def triples_to_text(rng: random.Random, min_triples: int = 1, max_triples: int = 4) -> dict:
    """"Inga_Berg | birthPlace | Oslo ; Inga_Berg | occupation | architect" -> "Inga Berg was born in Oslo. Inga
    Berg works as an architect." (WebNLG's triples, facts about made-up people)."""
    person = f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}"
    drawn = set(rng.sample(sorted(PERSON_FACTS), rng.randint(min_triples, max_triples)))
    relations = [r for r in PERSON_FACTS if r in drawn]
    if "birthPlace" in relations and "birthYear" in relations:
        relations.remove("birthYear")  # "born in X" twice would not say which is which
    facts = {r: rng.choice(PERSON_FACTS[r][0]) for r in relations}

    def phrase(relation: str, verb: bool) -> str:
        value = facts[relation]
        if relation == "occupation":
            value = f"{_article(value)} {value}"
        return PERSON_FACTS[relation][2 if verb else 1].format(value)

    separate = " ".join(f"{person} {phrase(r, True)}." for r in relations)
    verbs = [phrase(r, True) for r in relations]
    joined = f"{person} {', '.join(verbs[:-1])} and {verbs[-1]}."
    references = [separate, joined] if len(relations) > 1 else [separate]
    rng.shuffle(references)
    subject = person.replace(" ", "_")
    return {"input": " ; ".join(f"{subject} | {r} | {facts[r].replace(' ', '_')}" for r in relations),
            "references": references}


SCENE_VERBS = {  # verb -> (third person, -ing form, objects it takes)
    "kick": ("kicks", "kicking", ["ball", "stone", "can"]),
    "throw": ("throws", "throwing", ["ball", "stick", "frisbee"]),
    "read": ("reads", "reading", ["book", "letter", "newspaper"]),
    "cook": ("cooks", "cooking", ["soup", "rice", "pasta"]),
    "paint": ("paints", "painting", ["fence", "wall", "picture"]),
    "wash": ("washes", "washing", ["car", "dog", "window"]),
    "eat": ("eats", "eating", ["apple", "sandwich", "cake"]),
    "ride": ("rides", "riding", ["bike", "horse", "scooter"]),
    "play": ("plays", "playing", ["guitar", "piano", "drum"]),
    "write": ("writes", "writing", ["letter", "poem", "song"]),
    "plant": ("plants", "planting", ["tree", "flower", "seed"]),
    "feed": ("feeds", "feeding", ["cat", "bird", "goat"]),
    "catch": ("catches", "catching", ["ball", "fish", "frisbee"]),
    "climb": ("climbs", "climbing", ["tree", "wall", "ladder"]),
    "open": ("opens", "opening", ["door", "box", "gate"]),
    "carry": ("carries", "carrying", ["bag", "box", "basket"]),
}
AGENTS = ["boy", "girl", "man", "woman", "child", "student", "chef", "farmer", "player", "teacher"]
PLACES = ["park", "kitchen", "garden", "street", "beach", "yard", "field", "market", "school", "square"]


@register_generator("concepts_to_text")
def concepts_to_text(rng: random.Random, place_share: float = 0.6) -> dict:
    """"ball, boy, kick, park" -> "A boy kicks a ball in the park." (CommonGen's concept sets, alphabetical, from
    the project's own scenes)."""
    verb = rng.choice(sorted(SCENE_VERBS))
    third, ing, objects = SCENE_VERBS[verb]
    agent, thing = rng.choice(AGENTS), rng.choice(objects)
    place = rng.choice(PLACES) if rng.random() < place_share else None
    at = f" in the {place}" if place else ""
    references = [f"{_article(agent).capitalize()} {agent} {third} {_article(thing)} {thing}{at}.",
                  f"The {agent} is {ing} the {thing}{at}."]
    if place:
        references.append(f"In the {place}, {_article(agent)} {agent} {third} the {thing}.")
    rng.shuffle(references)
    return {"input": ", ".join(sorted({agent, verb, thing} | ({place} if place else set()))),
            "references": references}


# ---- smoke scale: tiny, fast tasks for CI with tiny random models ----------------------------------------------

@register_generator("smoke_reverse")
def smoke_reverse(rng: random.Random) -> dict:
    """"c b f" -> "f b c"."""
    letters = rng.sample("abcdefghijklmnop", rng.randint(3, 5))
    return {"input": " ".join(letters), "references": [" ".join(reversed(letters))]}


@register_generator("smoke_add")
def smoke_add(rng: random.Random) -> dict:
    """"12 + 7" -> "19"."""
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    return {"input": f"{a} + {b}", "references": [str(a + b)]}


@register_generator("smoke_upper")
def smoke_upper(rng: random.Random) -> dict:
    """"cat sun" -> "CAT SUN"."""
    words = rng.sample(WORDS[:100], rng.randint(1, 3))
    return {"input": " ".join(words), "references": [" ".join(words).upper()]}


@register_generator("smoke_parity_mc")
def smoke_parity_mc(rng: random.Random) -> dict:
    """"417" -> option "odd" of ["even", "odd"]."""
    number = rng.randint(0, 999)
    return {"input": str(number), "options": ["even", "odd"], "label": number % 2}
