"""The baseline the generator is compared with: a plain per-row mimesis loop writing customers.csv.

This is how most synthetic-data scripts are written: one Python iteration per customer, one
mimesis call per field, the csv module to write. It produces the same columns as our customers
export (realistic names, an email from the name, a city of the customer's country).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sys
import time

from mimesis import Address, Datetime, Locale, Person
from mimesis.enums import Gender

from generator.model import MARKETS
from generator.names import ascii_slug


def write_customers(path: str, n: int, seed: int = 1) -> float:
    t0 = time.perf_counter()
    rnd = random.Random(seed)
    people = {m.locale: Person(Locale[m.locale], seed=seed) for m in MARKETS}
    addresses = {m.locale: Address(Locale[m.locale], seed=seed) for m in MARKETS}
    dates = Datetime(seed=seed)
    weights = [m.weight for m in MARKETS]
    start = dt.datetime(2022, 1, 1)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "customer_id",
                "first_name",
                "last_name",
                "email",
                "gender",
                "date_of_birth",
                "signup_datetime",
                "city",
                "country",
                "marketing_opt_in",
            ]
        )
        for i in range(1, n + 1):
            m = rnd.choices(MARKETS, weights)[0]
            p = people[m.locale]
            gender = rnd.choice(["M", "F", "Other", "Unknown"])
            first = p.first_name(gender=Gender.FEMALE if gender == "F" else Gender.MALE)
            last = p.last_name()
            email = f"{ascii_slug(first)}.{ascii_slug(last)}{rnd.randint(1, 999)}@{rnd.choice(['gmail.com', 'yahoo.com'])}"
            dob = dates.date(start=1945, end=2005)
            signup = start + dt.timedelta(seconds=rnd.randint(0, 3 * 365 * 86400))
            w.writerow(
                [
                    f"C{i:09d}",
                    first,
                    last,
                    email,
                    gender,
                    dob.isoformat(),
                    signup.strftime("%Y-%m-%d %H:%M:%S"),
                    addresses[m.locale].city(),
                    m.country,
                    "true" if rnd.random() < 0.55 else "false",
                ]
            )
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"{write_customers(sys.argv[1], int(sys.argv[2])):.2f}")
