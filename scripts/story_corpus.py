"""Short children's stories from a small grammar: the demo model's training corpus.

Every story is built from templates and word lists written for this repository,
with `random.Random(seed)`, so the same seed gives the same text on every
machine and Python version. Names, pronouns, objects and places stay consistent
within a story, so a small model can learn who is who over a few sentences.

    python scripts/story_corpus.py --stories 100 --seed 1    # print stories
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass

GIRLS = ("Lily", "Mia", "Sue", "Anna", "Lucy", "Emma", "Zoe", "Ella", "Amy", "Kim", "Rose", "Jane")
BOYS = ("Tom", "Ben", "Sam", "Max", "Tim", "Jack", "Leo", "Bob", "Dan", "Joe", "Finn", "Ned")
ANIMALS = (("cat", "it"), ("dog", "it"), ("bunny", "it"), ("bird", "it"), ("duck", "it"), ("frog", "it"),
           ("bear", "it"), ("fox", "it"), ("mouse", "it"), ("puppy", "it"), ("kitten", "it"), ("fish", "it"))
ADJ_KID = ("little", "happy", "kind", "brave", "curious", "small", "shy", "funny")
ADJ_THING = ("red", "blue", "big", "small", "shiny", "soft", "green", "yellow", "new", "old", "pretty", "round")
THINGS = ("ball", "kite", "hat", "box", "car", "doll", "book", "cup", "drum", "boat", "bag", "toy", "cake", "apple",
          "flower", "shell", "stone", "spoon", "sock", "star")
PLACES = ("the park", "the garden", "the beach", "the forest", "the farm", "the lake", "the hill", "the yard",
          "the river", "the store", "school", "the zoo")
FEELINGS_GOOD = ("happy", "glad", "proud", "excited")
FEELINGS_BAD = ("sad", "scared", "angry", "worried")
LIKES = ("play", "run", "jump", "sing", "dance", "draw", "read", "swim", "climb", "bake")
WEATHER = ("The sun was warm.", "It was a sunny day.", "The sky was blue.", "It was a windy day.",
           "It was a cold morning.", "The rain had stopped.")
FRIEND_WORDS = ("friend", "best friend", "new friend")
HELPERS = ("mom", "dad", "grandma", "grandpa", "teacher", "big sister", "big brother")
PLACES_HIDE = ("under the bed", "behind the tree", "in the grass", "under a big leaf", "in the box",
               "near the door", "on the roof", "in the sand")
ENDINGS = ("From that day on, {a} and {b} were best friends.", "They played together until the sun went down.",
           "{A} smiled. It was the best day ever.", "That night, {a} went to sleep with a big smile.",
           "{A} learned that it is good to share.", "{A} learned to be kind to everyone.",
           "They all laughed and went home together.", "And they lived happily ever after.")


@dataclass(frozen=True)
class Kid:
    """A character: name and pronouns."""

    name: str
    he: str
    him: str
    his: str


def _kid(rng: random.Random) -> Kid:
    if rng.random() < 0.5:
        return Kid(rng.choice(GIRLS), "she", "her", "her")
    return Kid(rng.choice(BOYS), "he", "him", "his")


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _opening(rng: random.Random, kid: Kid) -> str:
    kind = "girl" if kid.he == "she" else "boy"
    adj = rng.choice(ADJ_KID)
    return rng.choice((
        f"Once upon a time, there was a {adj} {kind} named {kid.name}.",
        f"Once upon a time there was a {adj} {kind} named {kid.name}.",
        f"Once upon a time, there was a {adj} {kind}. {_cap(kid.his)} name was {kid.name}.",
        f"One day, a {adj} {kind} named {kid.name} went to {rng.choice(PLACES)}.",
        f"{kid.name} was a {adj} {kind} who loved to {rng.choice(LIKES)}.",
    ))


def _lost_thing(rng: random.Random) -> list[str]:
    kid, helper = _kid(rng), rng.choice(HELPERS)
    adj, thing, place = rng.choice(ADJ_THING), rng.choice(THINGS), rng.choice(PLACES)
    hide = rng.choice(PLACES_HIDE)
    bad = rng.choice(FEELINGS_BAD)
    return [
        _opening(rng, kid),
        f"{_cap(kid.he)} had a {adj} {thing}. {_cap(kid.he)} loved {kid.his} {thing} very much.",
        f"One day, {kid.name} went to {place} with {kid.his} {helper}.",
        f"{_cap(kid.he)} played with the {thing} all day. {rng.choice(WEATHER)}",
        f"But then, the {thing} was gone! {kid.name} was very {bad}.",
        f'"Where is my {thing}?" {kid.he} asked.',
        f"{_cap(kid.his)} {helper} said, \"Let us look for it together.\"",
        f"They looked and looked. At last, {kid.name} found the {thing} {hide}.",
        f"{kid.name} hugged {kid.his} {helper}. \"Thank you!\" {kid.he} said.",
        f"{kid.name} was {rng.choice(FEELINGS_GOOD)} again.",
    ]


def _new_friend(rng: random.Random) -> list[str]:
    kid = _kid(rng)
    animal, _ = rng.choice(ANIMALS)
    adj = rng.choice(ADJ_KID)
    place = rng.choice(PLACES)
    like = rng.choice(LIKES)
    friend = rng.choice(FRIEND_WORDS)
    return [
        _opening(rng, kid),
        f"One day, {kid.name} saw a {adj} {animal} at {place}.",
        f"The {animal} looked {rng.choice(FEELINGS_BAD)}. It was all alone.",
        f'"Hello, {animal}," said {kid.name}. "Do you want to {like} with me?"',
        f"The {animal} was {rng.choice(FEELINGS_GOOD)}. It said yes.",
        f"{kid.name} and the {animal} liked to {like} together. {rng.choice(WEATHER)}",
        f"The {animal} was {kid.his} {friend} now.",
        rng.choice(ENDINGS).format(a=kid.name, A=kid.name, b=f"the {animal}"),
    ]


def _sharing(rng: random.Random) -> list[str]:
    a, b = _kid(rng), _kid(rng)
    while b.name == a.name:
        b = _kid(rng)
    adj, thing = rng.choice(ADJ_THING), rng.choice(THINGS)
    place = rng.choice(PLACES)
    return [
        _opening(rng, a),
        f"{a.name} had a {adj} {thing}. {_cap(a.he)} did not want to share it.",
        f"One day, {a.name} and {b.name} went to {place}.",
        f"{b.name} wanted to play with the {thing} too.",
        f'"Can I play with your {thing}?" asked {b.name}.',
        f'"No, it is mine!" said {a.name}. {b.name} was {rng.choice(FEELINGS_BAD)}.',
        f"{a.name} saw that {b.name} was sad. {_cap(a.he)} did not like that.",
        f'So {a.name} said, "Here, you can play with my {thing} too."',
        f"{b.name} smiled. They played with the {thing} together.",
        rng.choice(ENDINGS).format(a=a.name, A=a.name, b=b.name),
    ]


def _help(rng: random.Random) -> list[str]:
    kid = _kid(rng)
    animal, _ = rng.choice(ANIMALS)
    place = rng.choice(PLACES)
    hide = rng.choice(PLACES_HIDE)
    helper = rng.choice(HELPERS)
    return [
        _opening(rng, kid),
        f"One day, {kid.name} went to {place}. {rng.choice(WEATHER)}",
        f"{_cap(kid.he)} heard a small sound {hide}. It was a little {animal}.",
        f"The {animal} was stuck and could not get out.",
        f"{kid.name} was {rng.choice(FEELINGS_BAD)}, but {kid.he} was brave.",
        f"{_cap(kid.he)} asked {kid.his} {helper} for help.",
        f"Together they helped the {animal} get out.",
        f"The {animal} was free! It jumped and ran in a circle.",
        f"{kid.name} felt {rng.choice(FEELINGS_GOOD)}. {_cap(kid.he)} had helped a friend.",
        rng.choice(ENDINGS).format(a=kid.name, A=kid.name, b=f"the {animal}"),
    ]


def _wish(rng: random.Random) -> list[str]:
    kid = _kid(rng)
    adj, thing = rng.choice(ADJ_THING), rng.choice(THINGS)
    helper = rng.choice(HELPERS)
    like = rng.choice(LIKES)
    return [
        _opening(rng, kid),
        f"{kid.name} wanted a {adj} {thing} more than anything.",
        f"Every day, {kid.he} looked at the {thing} in the store.",
        f'"I wish I had a {thing}," {kid.he} said to {kid.his} {helper}.',
        f"{_cap(kid.his)} {helper} said, \"If you help me, we can get it.\"",
        f"So {kid.name} helped every day. {_cap(kid.he)} did not stop.",
        f"At last, {kid.his} {helper} gave {kid.him} the {adj} {thing}.",
        f"{kid.name} was so {rng.choice(FEELINGS_GOOD)}! {_cap(kid.he)} liked to {like} with it.",
        rng.choice(ENDINGS).format(a=kid.name, A=kid.name, b=f"{kid.his} {helper}"),
    ]


_PLOTS = (_lost_thing, _new_friend, _sharing, _help, _wish)


def story(rng: random.Random) -> str:
    """One story: a plot picked at random, its slots filled, sometimes a sentence left out."""
    sentences = rng.choice(_PLOTS)(rng)
    keep = [sentences[0]] + [s for s in sentences[1:-1] if rng.random() > 0.1] + [sentences[-1]]
    return " ".join(keep)


def stories(n: int, seed: int) -> list[str]:
    """`n` stories, the same for the same seed."""
    rng = random.Random(seed)
    return [story(rng) for _ in range(n)]


def main(argv: list[str] | None = None) -> int:
    """Print stories, one per line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for text in stories(args.stories, args.seed):
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
