"""The model as typed: parity's formula grammar, the parsed spec, named models.

Knows no data and no engine: it imports only :mod:`parity.errors`.
"""

from __future__ import annotations

from parity.spec.grammar import is_plain_name, parse_formula
from parity.spec.models import Model, make_model, select
from parity.spec.spec import ModelSpec, RandomTerm, Term

__all__ = ["Model", "ModelSpec", "RandomTerm", "Term", "is_plain_name", "make_model",
           "parse_formula", "select"]
