"""Realistic strings from mimesis, drawn once into per-country pools and sampled with numpy.

mimesis produces one value per call (a Python loop); customers need hundreds of thousands of
names. Pools of a few hundred distinct values per country, drawn from mimesis with a fixed seed,
give the same realism at vector speed: names and cities belong to their country, emails are
built from the customer's own name. Pools are concatenated across countries into one Arrow array
per kind, so a customer's value is one integer index and strings are built in Arrow, not Python.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from mimesis import Address, Locale, Person
from mimesis.datasets import EMAIL_DOMAINS
from mimesis.enums import Gender

from generator.model import MARKETS

POOL_DRAWS = 400
DOMAINS = pa.array([d for d in EMAIL_DOMAINS if "example" not in d])
KINDS = ("male", "female", "last", "city")


def ascii_slug(value: str) -> str:
    """Lower-case ASCII for an email local part: 'Müller-Lüdenscheidt' -> 'mullerludenscheidt'."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


@dataclass(frozen=True)
class Pool:
    """One kind of string across all markets: values, email slugs, and each market's slice."""

    values: pa.Array
    slugs: pa.Array
    offset: np.ndarray  # per market
    size: np.ndarray  # per market

    def draw(self, rng: np.random.Generator, market: np.ndarray) -> np.ndarray:
        """Indices into ``values``: a uniform draw from each customer's own market."""
        return self.offset[market] + (rng.random(len(market)) * self.size[market]).astype(np.int64)


def _market_values(locale: str, kind: str) -> list[str]:
    loc = Locale[locale]
    if kind == "city":
        address = Address(loc, seed=7)
        return sorted({address.city() for _ in range(POOL_DRAWS)})
    person = Person(loc, seed=7)
    if kind == "last":
        return sorted({person.last_name() for _ in range(POOL_DRAWS)})
    gender = Gender.MALE if kind == "male" else Gender.FEMALE
    return sorted({person.first_name(gender=gender) for _ in range(POOL_DRAWS)})


@cache
def pool(kind: str) -> Pool:
    per_market = [_market_values(m.locale, kind) for m in MARKETS]
    size = np.array([len(v) for v in per_market], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    flat = [x for v in per_market for x in v]
    return Pool(pa.array(flat), pa.array([ascii_slug(x) for x in flat]), offset, size)


def emails(rng: np.random.Generator, first_slug: pa.Array, last_slug: pa.Array) -> pa.Array:
    """Emails that match the name: first.last@, firstlast42@, flast@, first_last42@ a domain."""
    n = len(first_slug)
    style = rng.integers(0, 4, n)
    digits = pc.cast(pa.array(rng.integers(1, 999, n)), pa.string())
    initial = pc.utf8_slice_codeunits(first_slug, 0, 1)
    options = [
        pc.binary_join_element_wise(first_slug, last_slug, "."),
        pc.binary_join_element_wise(first_slug, last_slug, digits, ""),
        pc.binary_join_element_wise(initial, last_slug, ""),
        pc.binary_join_element_wise(first_slug, "_", last_slug, digits, ""),
    ]
    local = options[0]
    for k in (1, 2, 3):
        local = pc.if_else(pa.array(style == k), options[k], local)
    domain = pc.take(DOMAINS, pa.array(rng.integers(0, len(DOMAINS), n)))
    return pc.binary_join_element_wise(local, domain, "")
