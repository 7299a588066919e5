"""The smart-lock case study of DIVERSITY (paper 002, section 2).

Locks on rental bicycles send signed lock/unlock messages; the insurer and the rental
provider each run an intermediate node; ``f`` computes the rental time per token and
day and per month; the reaction pays the monthly premium from the provider's escrow
to the insurer. See ``README.md`` here and ``docs/smartlock-demo.md``.
"""

from pervasive.apps.smartlock.rental import (
    FUNCTION_NAME,
    FUNCTIONS,
    RENTAL_TIME,
    SMART_LOCK_FIELDS,
    MonthlyRental,
    decode_monthly_rental,
    monthly_rental_time,
    rental_intervals,
    rental_table,
    smart_lock_declaration,
)
from pervasive.apps.smartlock.simulation import Rental, RentalMonth, simulate_month

__all__ = [
    "FUNCTIONS",
    "FUNCTION_NAME",
    "RENTAL_TIME",
    "SMART_LOCK_FIELDS",
    "MonthlyRental",
    "Rental",
    "RentalMonth",
    "decode_monthly_rental",
    "monthly_rental_time",
    "rental_intervals",
    "rental_table",
    "simulate_month",
    "smart_lock_declaration",
]
