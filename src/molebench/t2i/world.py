"""A procedurally generated image-caption world: coloured, textured shapes on plain backgrounds, with captions.

Written by hand because no offline data set has images of composable, nameable objects. Everything is drawn with
numpy from one seed, so the same seed gives the same world byte for byte.

Vocabulary (the tokenizer is built from `vocabulary()`):
    base captions    "a red striped circle and a blue plain square on grey background"
    subject prompts  "a v3 circle"            (DreamBooth: identifier token + class noun; identifiers never occur in
                                              base captions, so a subject LoRA is the only thing that gives them meaning)
    compositions     "a v3 circle and a v5 square and a v1 cross on grey background"
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
# six colours far apart: with orange and magenta the base model drew orange as yellow or red, magenta as blue
COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (235, 220, 40),
           "cyan": (40, 210, 220), "white": (240, 240, 240)}
TEXTURES = ("plain", "striped", "dotted")
BACKGROUNDS = {"black": (10, 10, 10), "grey": (110, 110, 110), "brown": (90, 60, 30)}
IDENTIFIERS = tuple(f"v{i}" for i in range(len(SHAPES)))  # one rare token per possible subject
FILLER = ("a", "and", "on", "background")
PHRASE_SEPARATORS = ("and", "on")  # the words that start each caption phrase after the first (an object, the background)
GRID = (2, 3)  # rows x columns of cells, one per shape in SHAPES order (`draw`)


def vocabulary() -> list[str]:
    return [*FILLER, *SHAPES, *COLOURS, *TEXTURES, *BACKGROUNDS, *IDENTIFIERS]


@dataclasses.dataclass(frozen=True)
class Thing:
    shape: str
    colour: str
    texture: str

    def words(self) -> str:
        return f"a {self.colour} {self.texture} {self.shape}"


@dataclasses.dataclass(frozen=True)
class Subject:
    """A specific object (its look is fixed) that a DreamBooth LoRA learns under `identifier`."""
    name: str
    identifier: str
    thing: Thing

    def prompt(self) -> str:
        return f"a {self.identifier} {self.thing.shape}"


def subjects(seed: int, n: int) -> list[Subject]:
    """n subjects of distinct shapes (so a classifier can tell them apart in one image), each with its own colour and
    texture. Named <colour>_<texture>_<shape>."""
    if not 1 <= n <= len(SHAPES):
        raise ValueError(f"the world has {len(SHAPES)} shapes, so 1 to {len(SHAPES)} subjects; got {n}")
    rng = np.random.default_rng(seed)
    shapes = rng.permutation(len(SHAPES))[:n]
    colours = rng.permutation(len(COLOURS))[:n]
    out = []
    for i, (s, c) in enumerate(zip(shapes, colours)):
        thing = Thing(SHAPES[s], list(COLOURS)[c], TEXTURES[int(rng.integers(len(TEXTURES)))])
        out.append(Subject(f"{thing.colour}_{thing.texture}_{thing.shape}", IDENTIFIERS[i], thing))
    return out


def compositions(subject_list: list[Subject], sizes: list[int], per_size: int, seed: int) -> list[list[Subject]]:
    """`per_size` distinct subject sets of each size, in a seeded order (Table 1 uses size 3, Table 10 all sizes)."""
    rng = np.random.default_rng(seed)
    out = []
    for size in sizes:
        if size > len(subject_list):
            raise ValueError(f"a composition of {size} subjects needs at least {size} subjects, got {len(subject_list)}")
        combos = list(itertools.combinations(range(len(subject_list)), size))
        for k in rng.permutation(len(combos))[:per_size]:
            out.append([subject_list[i] for i in combos[k]])
    return out


def composition_name(subject_set: list[Subject]) -> str:
    return "+".join(s.name for s in subject_set)


def composition_prompts(subject_set: list[Subject], n_prompts: int) -> list[str]:
    """The paper scores 5 prompts per composition: here the subjects in rotated order, then on each background."""
    prompts = []
    backgrounds = list(BACKGROUNDS)
    for k in range(n_prompts):
        order = subject_set[k % len(subject_set):] + subject_set[:k % len(subject_set)]
        body = " and ".join(s.prompt() for s in order)
        prompts.append(body if k == 0 else f"{body} on {backgrounds[k % len(backgrounds)]} background")
    return prompts


def _mask(shape: str, size: int) -> np.ndarray:
    """Boolean size x size mask of a shape centred in its box."""
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2 - 1  # coordinates in [-1, 1]
    r = np.sqrt(x ** 2 + y ** 2)
    if shape == "circle":
        return r <= 0.95
    if shape == "square":
        return (np.abs(x) <= 0.8) & (np.abs(y) <= 0.8)
    if shape == "triangle":
        return (y >= -0.85) & (y <= 0.85) & (np.abs(x) <= (y + 0.85) / 1.7 * 0.95)
    if shape == "diamond":
        return np.abs(x) + np.abs(y) <= 0.95
    if shape == "cross":
        return ((np.abs(x) <= 0.3) | (np.abs(y) <= 0.3)) & (np.abs(x) <= 0.95) & (np.abs(y) <= 0.95)
    if shape == "ring":
        return (r <= 0.95) & (r >= 0.5)
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, size: int) -> np.ndarray:
    """1 where the object shows its colour, 0 where it shows a darker shade."""
    y, x = np.mgrid[0:size, 0:size]
    period = max(2, size // 4)
    if texture == "plain":
        return np.ones((size, size), bool)
    if texture == "striped":
        return (x // max(1, period // 2)) % 2 == 0
    if texture == "dotted":
        return ~(((x % period) == period // 2) & ((y % period) == period // 2))
    raise ValueError(f"unknown texture {texture!r}")


def draw(things: list[Thing], background: str, resolution: int) -> np.ndarray:
    """An (H, W, 3) uint8 image with each thing at its shape's fixed place: a 3 x 2 grid, one cell per shape in
    `SHAPES` order. Fixed places instead of random ones (a departure from photographs) so that a diffusion model
    trained for minutes on 2 CPU cores draws the shapes: at random places and sizes, 1,200 steps still drew blobs."""
    image = np.empty((resolution, resolution, 3), np.uint8)
    image[:] = BACKGROUNDS[background]
    cell_h, cell_w = resolution / GRID[0], resolution / GRID[1]
    size = max(3, int(min(cell_w, cell_h)) - 1)
    for thing in things:
        row, col = divmod(SHAPES.index(thing.shape), GRID[1])
        top, left = int(row * cell_h + (cell_h - size) / 2), int(col * cell_w + (cell_w - size) / 2)
        mask = _mask(thing.shape, size)
        colour = np.array(COLOURS[thing.colour])
        pixels = np.where(_texture(thing.texture, size)[..., None], colour, colour // 3)
        patch = image[top:top + size, left:left + size]
        patch[mask] = pixels[mask]
    return image


def caption(things: list[Thing], background: str) -> str:
    return " and ".join(t.words() for t in things) + f" on {background} background"


def parse_caption(caption: str) -> tuple[list[Thing], str]:
    """The things and background a base caption names (the inverse of `caption`)."""
    body, background = caption.rsplit(" on ", 1)
    things = [Thing(shape, colour, texture) for _, colour, texture, shape in (p.split() for p in body.split(" and "))]
    return things, background.removesuffix(" background")


def random_thing(rng: np.random.Generator) -> Thing:
    return Thing(SHAPES[rng.integers(len(SHAPES))], list(COLOURS)[rng.integers(len(COLOURS))],
                 TEXTURES[rng.integers(len(TEXTURES))])


def base_dataset(n: int, resolution: int, max_objects: int, seed: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """n generic images with captions and presence labels (n, shapes x colours), for the base diffusion model, the
    CLIP and the presence classifier. Identifier tokens never appear here."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    captions, labels = [], np.zeros((n, len(SHAPES) * len(COLOURS)), np.float32)
    for i in range(n):
        count = int(rng.integers(1, max_objects + 1))
        shapes = rng.permutation(len(SHAPES))[:count]  # distinct shapes, as in compositions
        things = [Thing(SHAPES[s], list(COLOURS)[rng.integers(len(COLOURS))], TEXTURES[rng.integers(len(TEXTURES))])
                  for s in shapes]
        background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
        images[i] = draw(things, background, resolution)
        captions.append(caption(things, background))
        for t in things:
            labels[i, presence_index(t)] = 1
    return images, captions, labels


def presence_index(thing: Thing) -> int:
    return SHAPES.index(thing.shape) * len(COLOURS) + list(COLOURS).index(thing.colour)


def subject_training_set(subject: Subject, n: int, resolution: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """DreamBooth's training images in the world, with their prompts: a third show the subject alone under its prompt
    ("a v3 circle"), the others beside one or two objects of other shapes, captioned as the base world's images are
    ("a v3 circle and a red plain square on grey background"). A LoRA trained on the subject alone learns "one object
    only": composed by NLA, such LoRAs put none of three subjects in the image (docs/methods.md, "DreamBooth")."""
    rng = np.random.default_rng(seed)
    others = [s for s in SHAPES if s != subject.thing.shape]
    images, prompts = [], []
    for i in range(n):
        things = [subject.thing] + [Thing(others[j], list(COLOURS)[rng.integers(len(COLOURS))],
                                          TEXTURES[rng.integers(len(TEXTURES))])
                                    for j in rng.permutation(len(others))[:i % 3]]
        background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
        images.append(draw(things, background, resolution))
        prompts.append(subject.prompt() if len(things) == 1 else
                       " and ".join([subject.prompt(), *(t.words() for t in things[1:])]) + f" on {background} background")
    return np.stack(images), prompts


def subject_images(subject: Subject, n: int, resolution: int, seed: int) -> np.ndarray:
    """The subject alone on random backgrounds: DreamBooth's few training images, and the reference images of image
    alignment."""
    rng = np.random.default_rng(seed)
    return np.stack([draw([subject.thing], list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))], resolution)
                     for _ in range(n)])
