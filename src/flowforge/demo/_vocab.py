"""Reference vocabularies for the demo generators: names, cities, merchants.

Kept apart from the generation logic so that ``bfsi.py`` reads as rules, not word lists.
Every tuple is ordered and immutable: the generators index into them with a seeded RNG,
so reordering an entry changes the generated data set.
"""

from __future__ import annotations

from typing import NamedTuple


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES: tuple[str, ...] = _words(
    """
    James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
    Susan Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy Matthew Betty
    Anthony Margaret Mark Sandra Donald Ashley Steven Kimberly Paul Emily Andrew Donna Joshua
    Michelle Kenneth Carol Kevin Amanda Brian Dorothy George Melissa Timothy Deborah Ronald
    Stephanie Edward Rebecca Jason Sharon Jeffrey Laura Ryan Cynthia Jacob Kathleen Gary Amy
    Nicholas Angela Eric Shirley Jonathan Anna Stephen Brenda Larry Pamela Justin Emma Scott
    Nicole Brandon Helen Benjamin Samantha Samuel Katherine Gregory Christine Alexander Debra
    Patrick Rachel Frank Carolyn Raymond Janet Jack Maria Dennis Olivia Jerry Heather Tyler Diane
    Aaron Julie Jose Joyce Adam Victoria Nathan Kelly Henry Christina Zachary Lauren Douglas Joan
    Peter Evelyn Kyle Judith Noah Megan Ethan Andrea Jeremy Cheryl Walter Hannah Christian Jacqueline
    Priya Wei Mei Hiroshi Aisha Omar Carlos Sofia Luis Camila Diego Valentina Arjun Fatima
    """
)

LAST_NAMES: tuple[str, ...] = _words(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
    Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris
    Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill
    Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips
    Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers
    Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson
    Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo
    Sanders Patel Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell
    Coleman Butler Henderson Barnes Fisher Vasquez Simmons Graham Chen Wang Singh Shah Okafor
    """
)

STREET_NAMES: tuple[str, ...] = _words(
    """
    Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Sunset Lincoln Jefferson Madison
    Franklin Highland Church Spring River Walnut Chestnut Willow Meadow Forest Ridge Jackson
    Adams Center Union Broadway Market Harbor Valley Mill Cherry Birch Hickory Lakeview
    """
)
STREET_SUFFIXES: tuple[str, ...] = ("St", "Ave", "Blvd", "Rd", "Dr", "Ln", "Way", "Ct", "Pl")
EMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com", "proton.me",
)
RELATIONSHIP_MANAGERS: tuple[str, ...] = (
    "Alicia Moreno", "Benjamin Cho", "Catherine Doyle", "Darius Whitfield", "Elena Petrova",
    "Franklin Osei", "Grace Lindqvist", "Hector Salgado", "Isabel Fontaine", "Jamal Prescott",
    "Kira Nakamura", "Leonard Hayes",
)


class City(NamedTuple):
    name: str
    state: str
    area_code: str
    zip_low: int
    zip_high: int
    weight: int  # rough relative population, so New York gets more customers than Fort Worth


CITIES: tuple[City, ...] = (
    City("New York", "NY", "212", 10001, 10282, 84),
    City("Los Angeles", "CA", "213", 90001, 90089, 39),
    City("Chicago", "IL", "312", 60601, 60661, 27),
    City("Houston", "TX", "713", 77001, 77099, 23),
    City("Phoenix", "AZ", "602", 85001, 85054, 16),
    City("Philadelphia", "PA", "215", 19102, 19154, 16),
    City("San Antonio", "TX", "210", 78201, 78266, 15),
    City("San Diego", "CA", "619", 92101, 92199, 14),
    City("Dallas", "TX", "214", 75201, 75287, 13),
    City("San Jose", "CA", "408", 95110, 95139, 10),
    City("Austin", "TX", "512", 78701, 78759, 10),
    City("Jacksonville", "FL", "904", 32202, 32277, 9),
    City("Fort Worth", "TX", "817", 76101, 76199, 9),
    City("Columbus", "OH", "614", 43201, 43299, 9),
    City("Charlotte", "NC", "704", 28202, 28299, 9),
    City("San Francisco", "CA", "415", 94102, 94188, 8),
    City("Indianapolis", "IN", "317", 46201, 46298, 9),
    City("Seattle", "WA", "206", 98101, 98199, 7),
    City("Denver", "CO", "303", 80201, 80299, 7),
    City("Boston", "MA", "617", 2108, 2137, 7),
)


class Merchant(NamedTuple):
    """One kind of transaction: who, what, which sign, how large, on which accounts."""

    merchant: str
    merchant_category: str
    category: str
    transaction_type: str
    sign: int  # -1 money leaves the account, +1 money arrives
    mean: float  # mean absolute amount in dollars (lognormal, sigma 0.6)
    weight: int  # relative frequency
    account_types: tuple[str, ...]  # account types this kind of transaction lands on
    online: bool = False


_SPEND = ("checking", "credit")
_CASH = ("checking", "savings")

# Tuned so that about 57% of rows are money out averaging about -$225 and 43% are money in
# averaging about +$1,984, the shape the BFSI_Test database had (890 debits / 660 credits a month).
MERCHANTS: tuple[Merchant, ...] = (
    Merchant("McDonalds", "Fast Food", "Food & Beverage", "debit", -1, 12.0, 60, _SPEND),
    Merchant("Starbucks", "Coffee Shops", "Food & Beverage", "debit", -1, 8.5, 40, _SPEND),
    Merchant("Chipotle", "Restaurants", "Food & Beverage", "debit", -1, 18.0, 20, _SPEND),
    Merchant("Whole Foods", "Grocery Stores", "Food & Beverage", "debit", -1, 95.0, 50, _SPEND),
    Merchant("Kroger", "Grocery Stores", "Food & Beverage", "debit", -1, 80.0, 30, _SPEND),
    Merchant("Amazon", "Online Retail", "E-commerce", "debit", -1, 85.0, 70, _SPEND, online=True),
    Merchant("eBay", "Online Marketplace", "E-commerce", "debit", -1, 60.0, 20, _SPEND, online=True),
    Merchant("Target", "Department Stores", "Retail", "debit", -1, 110.0, 20, _SPEND),
    Merchant("Best Buy", "Electronics", "Retail", "debit", -1, 350.0, 10, _SPEND),
    Merchant("Con Edison", "Electric & Gas", "Utilities", "payment", -1, 140.0, 20, ("checking",), True),
    Merchant("Comcast", "Cable & Internet", "Utilities", "payment", -1, 120.0, 20, _SPEND, online=True),
    Merchant("Verizon", "Telecommunications", "Utilities", "payment", -1, 95.0, 20, _SPEND, online=True),
    Merchant("CVS Pharmacy", "Pharmacies", "Healthcare", "debit", -1, 45.0, 20, _SPEND),
    Merchant("Kaiser Permanente", "Medical Services", "Healthcare", "payment", -1, 320.0, 10, _SPEND),
    Merchant("Uber", "Rideshare", "Transportation", "debit", -1, 28.0, 30, _SPEND, online=True),
    Merchant("Shell", "Gas Stations", "Transportation", "debit", -1, 55.0, 30, _SPEND),
    Merchant("Delta Air Lines", "Airlines", "Transportation", "debit", -1, 480.0, 10, _SPEND, online=True),
    Merchant("Rent Payment", "Real Estate", "Housing", "payment", -1, 2100.0, 20, ("checking",)),
    Merchant("Wire Transfer", "Wire Transfer", "Transfers", "transfer", -1, 2000.0, 20, _CASH),
    Merchant("ATM Withdrawal", "ATM", "Cash", "withdrawal", -1, 160.0, 30, ("checking",)),
    Merchant("Monthly Service Fee", "Bank Fees", "Fees", "fee", -1, 12.0, 10, ("checking",)),
    Merchant("Payroll Deposit", "Payroll", "Income", "credit", 1, 3750.0, 140, _CASH),
    Merchant("Wire Transfer", "Wire Transfer", "Transfers", "transfer", 1, 8000.0, 30, _CASH),
    Merchant("Zelle", "P2P Transfer", "Transfers", "transfer", 1, 250.0, 60, _CASH, online=True),
    Merchant("Mobile Check Deposit", "Check Deposit", "Deposits", "deposit", 1, 900.0, 60, _CASH),
    Merchant("Amazon", "Online Retail", "E-commerce", "credit", 1, 60.0, 40, _SPEND, online=True),
    Merchant("Interest Payment", "Bank Interest", "Interest", "credit", 1, 25.0, 60, ("savings",)),
    Merchant("Card Payment", "Card Payment", "Transfers", "payment", 1, 650.0, 40, ("credit",)),
    Merchant("Loan Payment", "Loan Servicing", "Loans", "payment", 1, 1250.0, 25, ("loan",)),
)
