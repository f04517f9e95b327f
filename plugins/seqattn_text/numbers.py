"""A generated English -> German corpus with real reordering, for the offline quickstart.

Sentences combine a subject, a verb, a number written out (``num2words``), a plural noun and a
time adverb. German needs what English does not: verb-second inversion after a fronted adverb
("Gestern habe ich ... gekauft"), verb-final order in subordinate clauses ("..., dass er ...
kauft"), split perfect and future forms, adverbs moved before the object, and numbers whose
units come before the tens ("forty-two" -> "zweiundvierzig").
"""

from __future__ import annotations

import random

SUBJECTS = [  # english, german, english 3rd person singular?, german person (0 ich, 1 du, 2 er, 3 wir/sie)
    ("I", "ich", False, 0), ("you", "du", False, 1), ("he", "er", True, 2), ("she", "sie", True, 2),
    ("we", "wir", False, 3), ("they", "sie", False, 3),
]
VERBS = [  # english base, 3sg, past; german forms by person; participle
    ("buy", "buys", "bought", ("kaufe", "kaufst", "kauft", "kaufen"), "gekauft"),
    ("sell", "sells", "sold", ("verkaufe", "verkaufst", "verkauft", "verkaufen"), "verkauft"),
    ("see", "sees", "saw", ("sehe", "siehst", "sieht", "sehen"), "gesehen"),
    ("count", "counts", "counted", ("zähle", "zählst", "zählt", "zählen"), "gezählt"),
    ("find", "finds", "found", ("finde", "findest", "findet", "finden"), "gefunden"),
    ("need", "needs", "needed", ("brauche", "brauchst", "braucht", "brauchen"), "gebraucht"),
    ("paint", "paints", "painted", ("male", "malst", "malt", "malen"), "gemalt"),
]
NOUNS = [("apples", "Äpfel"), ("books", "Bücher"), ("houses", "Häuser"), ("cars", "Autos"), ("dogs", "Hunde"),
         ("cats", "Katzen"), ("birds", "Vögel"), ("trees", "Bäume"), ("letters", "Briefe"),
         ("flowers", "Blumen"), ("chairs", "Stühle"), ("boats", "Boote")]
HABEN = ("habe", "hast", "hat", "haben")
WERDEN = ("werde", "wirst", "wird", "werden")
WISSEN = ("weiß", "weißt", "weiß", "wissen")


def _number(rng: random.Random) -> tuple[str, str]:
    from num2words import num2words

    n = rng.choice([rng.randint(2, 99), rng.randint(100, 999), rng.randint(1000, 9999)])
    return num2words(n, lang="en").replace(",", ""), num2words(n, lang="de")


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    en_s, de_s, third, p = rng.choice(SUBJECTS)
    base, s3, past, forms, part = rng.choice(VERBS)
    en_noun, de_noun = rng.choice(NOUNS)
    en_num, de_num = _number(rng)
    obj_en, obj_de = f"{en_num} {en_noun}", f"{de_num} {de_noun}"
    kind = rng.randrange(5)
    if kind == 0:  # present, adverb moves before the object
        return f"{_cap(en_s)} {s3 if third else base} {obj_en} today.", f"{_cap(de_s)} {forms[p]} heute {obj_de}."
    if kind == 1:  # fronted adverb: verb-second inversion, split perfect
        return f"Yesterday {en_s} {past} {obj_en}.", f"Gestern {HABEN[p]} {de_s} {obj_de} {part}."
    if kind == 2:  # future: the infinitive goes last
        # the German infinitive equals the plural form (forms[3]) for these verbs
        return f"Tomorrow {en_s} will {base} {obj_en}.", f"Morgen {WERDEN[p]} {de_s} {obj_de} {forms[3]}."
    e2, d2, third2, p2 = rng.choice(SUBJECTS)
    know = "knows" if third2 else "know"
    if kind == 3:  # subordinate clause: verb-final
        return (f"{_cap(e2)} {know} that {en_s} {s3 if third else base} {obj_en}.",
                f"{_cap(d2)} {WISSEN[p2]}, dass {de_s} {obj_de} {forms[p]}.")
    return (f"{_cap(e2)} {know} that {en_s} {past} {obj_en} yesterday.",  # verb-final perfect
            f"{_cap(d2)} {WISSEN[p2]}, dass {de_s} gestern {obj_de} {part} {HABEN[p]}.")


def numbers_en_de(*, size: int = 1000, seed: int = 0) -> list[dict]:
    """``size`` rows in the Hugging Face translation schema: ``{"translation": {"en", "de"}}``."""
    rng = random.Random(seed)
    return [{"translation": dict(zip(("en", "de"), sentence_pair(rng)))} for _ in range(size)]
