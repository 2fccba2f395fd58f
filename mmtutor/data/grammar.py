"""A small grammar of one-sentence product and venue reviews.

Defined in the chapter on preprocessing ("Meet the data"). The spoken-reviews dataset writes its
text modality with :func:`make_review`: a sentence of 5 to 20 words about a film, a restaurant, a
phone, a hotel, a book or a game, whose *literal* polarity is given. The vocabulary is small and
shared across domains, so that a bag-of-words model learns the sentiment words quickly, while
negation ("not bad", "never boring", "hardly worth it") and contrast ("..., but ...") reward
models that read words in order.
"""

__all__ = ["DOMAINS", "make_review"]

#: Domains and the things a review of each talks about (a whole item first, then aspects).
DOMAINS = {
    "film": ("film", "movie", "plot", "acting", "soundtrack", "ending", "cast", "script"),
    "restaurant": ("restaurant", "food", "service", "pasta", "dessert", "waiter", "menu", "soup"),
    "phone": ("phone", "battery", "camera", "screen", "charger", "speaker", "case", "keyboard"),
    "hotel": ("hotel", "room", "staff", "breakfast", "bed", "pool", "view", "lobby"),
    "book": ("book", "story", "characters", "writing", "chapter", "novel", "dialogue", "cover"),
    "game": ("game", "graphics", "controls", "music", "levels", "story mode", "gameplay", "boss fight"),
}

# Sentiment words, shared by every domain. Index 1 = positive, 0 = negative.
_ADJ = {
    1: ("great", "wonderful", "excellent", "delightful", "brilliant", "lovely", "superb",
        "fantastic", "charming", "amazing", "good", "enjoyable", "pleasant", "impressive",
        "perfect", "solid"),
    0: ("terrible", "awful", "boring", "dreadful", "disappointing", "poor", "bad", "dull",
        "horrible", "mediocre", "bland", "annoying", "weak", "messy", "painful", "useless"),
}
# Words that flip in negation: "not bad" is mildly positive, "not great" mildly negative.
_NEGATED = {
    1: ("bad", "boring", "awful", "terrible", "disappointing", "dull", "annoying"),
    0: ("great", "good", "impressive", "enjoyable", "worth it", "pleasant", "special"),
}
_NEGATORS = ("not", "never", "hardly", "not at all", "far from")
_INTENSIFIERS = ("", "", "really", "very", "truly", "absolutely", "incredibly", "so", "quite",
                 "pretty", "extremely", "rather")
_VERBS = {
    1: ("loved", "enjoyed", "adored", "liked", "appreciated"),
    0: ("hated", "disliked", "regretted", "could not stand", "was annoyed by"),
}
_NOUN_PHRASES = {
    1: ("a real treat", "a pleasant surprise", "worth every penny", "a joy", "a great choice",
        "money well spent", "a small gem"),
    0: ("a waste of money", "a letdown", "a waste of time", "a big mistake", "a real mess",
        "a total disaster", "a chore"),
}
_RECOMMEND = {1: ("would recommend", "would happily recommend", "will recommend"),
              0: ("would not recommend", "cannot recommend", "will never recommend")}
_FILLERS = ("to be honest", "overall", "I have to say", "last weekend", "for what it is worth",
            "after a long week", "with my family", "on a rainy Tuesday", "in the end",
            "as far as I can tell", "this time", "if you ask me", "believe it or not")
_SUBJECTS = ("I", "we", "my friend and I", "my partner and I")


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _plural(noun):
    return noun.endswith("s")


def _the(rng, noun):
    """'the plot', 'this movie', 'these levels' or 'their pasta'."""
    this = "these" if _plural(noun) else "this"
    return f"{_pick(rng, ('the', 'the', this, 'their'))} {noun}"


def _adj(rng, polarity):
    intens = _pick(rng, _INTENSIFIERS)
    word = _pick(rng, _ADJ[polarity])
    return f"{intens} {word}".strip()


def _clause(rng, nouns, polarity):
    """One clause with the given literal polarity (plain, negated or verbal)."""
    noun = _pick(rng, nouns)
    be = "were" if _plural(noun) else "was"
    kind = rng.choice(4, p=[0.45, 0.25, 0.15, 0.15])
    if kind == 0:
        return f"{_the(rng, noun)} {be} {_adj(rng, polarity)}"
    if kind == 1:  # negation of the opposite word: "the food was not bad" is positive
        return f"{_the(rng, noun)} {be} {_pick(rng, _NEGATORS)} {_pick(rng, _NEGATED[polarity])}"
    if kind == 2:
        return f"{_pick(rng, _SUBJECTS)} {_pick(rng, _VERBS[polarity])} {_the(rng, noun)}"
    return f"{_the(rng, noun)} {be} {_pick(rng, _NOUN_PHRASES[polarity])}"


def _sentence(rng, domain, polarity):
    nouns = DOMAINS[domain]
    item = nouns[0] if rng.random() < 0.5 else nouns[1]
    template = rng.choice(6, p=[0.30, 0.20, 0.15, 0.12, 0.13, 0.10])
    if template == 0:
        s = _clause(rng, nouns, polarity)
    elif template == 1:  # two clauses that agree
        s = f"{_clause(rng, nouns, polarity)} and {_clause(rng, nouns, polarity)}"
    elif template == 2:  # contrast: the clause after "but" carries the verdict
        s = f"{_clause(rng, nouns, 1 - polarity)}, but {_clause(rng, nouns, polarity)}"
    elif template == 3:
        s = f"{_pick(rng, _SUBJECTS)} {_pick(rng, _RECOMMEND[polarity])} {_the(rng, item)} to anyone"
    elif template == 4:
        word = _pick(rng, _ADJ[polarity])
        article = "an" if word[0] in "aeiou" else "a"
        s = f"what {article} {word} {nouns[0]}"
    else:
        s = f"{_the(rng, item)} was {_pick(rng, _NOUN_PHRASES[polarity])}"
    if rng.random() < 0.45:  # neutral filler, at the start or the end
        filler = _pick(rng, _FILLERS)
        s = f"{filler}, {s}" if rng.random() < 0.5 else f"{s}, {filler}"
    return s


def make_review(rng, domain, polarity):
    """Write one review sentence with the given literal polarity.

    Defined in the chapter on preprocessing ("Meet the data").

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the same state gives the same sentence).
    domain : str
        One of :data:`DOMAINS` ("film", "restaurant", "phone", "hotel", "book", "game").
    polarity : int
        1 for a literally positive sentence, 0 for a literally negative one.

    Returns
    -------
    str
        A sentence of 5 to 20 words, capitalised, ending with "." or "!".

    Examples
    --------
    >>> import numpy as np
    >>> from mmtutor.data.grammar import make_review
    >>> s = make_review(np.random.default_rng(0), "film", 1)
    >>> 5 <= len(s.split()) <= 20
    True
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {domain!r}")
    if polarity not in (0, 1):
        raise ValueError(f"polarity must be 0 (negative) or 1 (positive), got {polarity!r}")
    for _ in range(100):
        s = " ".join(_sentence(rng, domain, int(polarity)).split())
        if 5 <= len(s.split()) <= 20:
            break
    else:  # pragma: no cover - the grammar's sentences are 3 to 24 words long
        raise RuntimeError("the review grammar failed to produce a sentence of 5 to 20 words")
    end = "!" if polarity == 1 and rng.random() < 0.3 else "."
    return s[0].upper() + s[1:] + end
