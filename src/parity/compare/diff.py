"""Two results.json files side by side: what moved between runs or environments.

A new lme4, a new BLAS, another sampler seed: the question after an upgrade is which
numbers moved by more than the tolerance policy allows, and which verdicts changed. Each
value is compared with itself (same model, same engine), so the rule is the one for a
same-kind pair (frequentist-frequentist or bayesian-bayesian). A flipped verdict, or a fit
that stopped (or started) running, is what a CI job should fail on; movement within the
tolerance is counted but not shown.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parity.compare.quantities import spec_of
from parity.compare.tolerances import Policy
from parity.errors import DataError, UsageError
from parity.schema import READABLE_VERSIONS, SCHEMA_VERSION, Fit, RunResults, values

ValueKey = tuple[str, str, str, str]            # model, engine label, quantity, term
RowKey = tuple[str, str, str, str, str]         # model, engine, reference, quantity, term


@dataclass(frozen=True)
class ValueDiff:
    """One estimate, SE, SD or correlation in A and in B (None where a file lacks it)."""

    model: str
    engine: str
    quantity: str
    term: str
    a: float | None
    b: float | None
    tolerance: float | None

    @property
    def difference(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def moved(self) -> bool:
        """Beyond the tolerance; a value that became (or stopped being) finite moved."""
        if self.a is None or self.b is None:
            return False
        if math.isnan(self.a) or math.isnan(self.b):
            return math.isnan(self.a) != math.isnan(self.b)
        return abs(self.b - self.a) > (self.tolerance or 0.0)


@dataclass(frozen=True)
class VerdictDiff:
    """One comparison row's verdict in A and in B (None where a file lacks the row)."""

    key: RowKey
    a: str | None
    b: str | None
    reason_b: str | None

    @property
    def flipped(self) -> bool:
        return self.a is not None and self.b is not None and self.a != self.b


@dataclass(frozen=True)
class FitChange:
    """A fit whose status differs; `absent` where one file does not have it at all."""

    model: str
    engine: str
    a: str
    b: str
    reason: str | None

    @property
    def flipped(self) -> bool:
        """ok <-> failed/skipped/unsupported; a fit missing from one run is a different
        scope, not a regression."""
        return "absent" not in (self.a, self.b) and (self.a == "ok") != (self.b == "ok")


@dataclass(frozen=True)
class VersionChange:
    where: str
    name: str
    a: str | None
    b: str | None


def _one_sided(x: ValueDiff | VerdictDiff) -> bool:
    return x.a is None or x.b is None


@dataclass(frozen=True)
class DiffReport:
    rows: tuple[ValueDiff, ...]
    verdicts: tuple[VerdictDiff, ...]
    fit_changes: tuple[FitChange, ...]
    version_changes: tuple[VersionChange, ...]
    a_name: str = "A"
    b_name: str = "B"
    # What could not be compared, said once (a version-1 file's missing quantities).
    notes: tuple[str, ...] = ()

    @property
    def moved(self) -> list[ValueDiff]:
        return [r for r in self.rows if r.moved]

    @property
    def flips(self) -> list[VerdictDiff]:
        return [v for v in self.verdicts if v.flipped]

    @property
    def flipped(self) -> bool:
        """What the exit code says: a verdict or a fit's ok-ness changed."""
        return bool(self.flips) or any(c.flipped for c in self.fit_changes)

    def summary(self) -> str:
        within = sum(1 for r in self.rows if not r.moved and r.difference
                     and not math.isnan(r.difference))
        return (f"{len(self.rows)} values compared: {len(self.moved)} moved beyond tolerance, "
                f"{within} changed within it, {sum(map(_one_sided, self.rows))} in one file "
                f"only; {len(self.verdicts)} comparison rows: {len(self.flips)} verdicts "
                f"flipped, {sum(map(_one_sided, self.verdicts))} in one file only; "
                f"{len(self.fit_changes)} fit status changes; "
                f"{len(self.version_changes)} version changes")

    def render(self, all_rows: bool = False) -> str:
        """Plain text: the summary line, then the rows worth reading (every row with
        `all_rows`). Rows in one file only are shown where both fits ran in both files;
        otherwise the fit's status line explains them."""
        changed = {(c.model, c.engine) for c in self.fit_changes}
        values = [r for r in self.rows if all_rows or r.moved
                  or (_one_sided(r) and (r.model, r.engine) not in changed)]
        verdicts = [v for v in self.verdicts if all_rows or v.flipped
                    or (_one_sided(v) and not {(v.key[0], e) for e in v.key[1:3]} & changed)]
        return "\n".join([
            f"parity diff: A = {self.a_name}, B = {self.b_name}", self.summary(),
            *self.notes,
            *_section("values" if all_rows else "values moved beyond tolerance",
                      ["model", "engine", "quantity", "term", "A", "B", "B - A", "tolerance",
                       "note"],
                      [[r.model, r.engine, r.quantity, r.term, _num(r.a), _num(r.b),
                        _num(r.difference, 3), _num(r.tolerance, 3),
                        "MOVED" if r.moved else "only in A" if r.b is None
                        else "only in B" if r.a is None else ""] for r in values]),
            *_section("verdicts" if all_rows else "verdicts flipped",
                      ["model", "engine", "reference", "quantity", "term", "A", "B",
                       "reason in B"],
                      [[*v.key, v.a or "(absent)", v.b or "(absent)", v.reason_b or ""]
                       for v in verdicts]),
            *_section("fit status changed", ["model", "engine", "A", "B", "reason"],
                      [[c.model, c.engine, c.a, c.b, c.reason or ""]
                       for c in self.fit_changes]),
            *_section("versions changed", ["where", "name", "A", "B"],
                      [[c.where, c.name, c.a or "(none)", c.b or "(none)"]
                       for c in self.version_changes]),
        ]) + "\n"


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, so a terminal reader can scan down them."""
    cells = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def _section(title: str, headers: Sequence[str], rows: list[list[str]]) -> list[str]:
    return ["", f"{title} ({len(rows)}):", format_table(headers, rows)] if rows else []


def _num(x: float | None, digits: int = 6) -> str:
    return "-" if x is None else "nan" if math.isnan(x) else f"{x:.{digits}g}"


def load_results(path: Path) -> dict[str, Any]:
    """A results.json (or a directory holding one); anything else is a one-line DataError."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise DataError(f"results file {str(path)!r} not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise DataError(f"results file {str(path)!r} is not readable JSON: {why}") from None
    if not isinstance(doc, dict) or "schema_version" not in doc \
            or not isinstance(doc.get("fits"), list):
        raise DataError(f"{str(path)!r} is not a parity results file "
                        "(no schema_version or fits)")
    if doc["schema_version"] not in READABLE_VERSIONS:
        raise DataError(f"{str(path)!r} has schema version {doc['schema_version']!r}; "
                        f"this parity reads versions "
                        f"{', '.join(map(str, READABLE_VERSIONS))} (writes {SCHEMA_VERSION})")
    if doc.get("complete") is False:
        raise DataError(f"{str(path)!r} holds the partial results of an interrupted run "
                        "(complete: false); diff the results.json of a finished run")
    return doc


def _record(doc: dict[str, Any]) -> RunResults:
    """The run record of a results document; a malformed one is a one-line DataError."""
    try:
        for key in ("fits", "reference_fits", "comparisons", "optimum_checks"):
            rows = doc.get(key) or []
            if not isinstance(rows, list) or not all(isinstance(d, dict) for d in rows):
                raise TypeError(f"{key} must be a list of objects")
        return RunResults.from_dict(doc)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise DataError(f"the results are malformed: {type(exc).__name__}: {exc}") from None


def _fits(run: RunResults) -> dict[tuple[str, str], Fit]:
    return {(f.model, f.label): f for f in (*run.fits, *run.reference_fits)}


def _values(fit: Fit) -> dict[ValueKey, tuple[float, float | None]]:
    """Each value with its uncertainty (an SE or posterior SD, where recorded)."""
    return {(fit.model, fit.label, v.quantity, v.term): (v.estimate, v.uncertainty)
            for v in values(fit)}


def _tolerance(policy: Policy, kind_of: Callable[[str], str], engine: str, quantity: str,
               a: tuple[float, float | None] | None,
               b: tuple[float, float | None] | None) -> float | None:
    """The same-kind rule: uncertainty is the posterior SD (larger of A and B, as
    compare.py does for a Bayesian pair; an SE has none), or A's SE for a frequentist
    value whose rule scales with it (the quantity table's `se_scaled`)."""
    try:
        kind = kind_of(engine)
    except UsageError:  # an engine this parity does not know: exact comparison
        return None
    ref = a if a is not None and math.isfinite(a[0]) else b
    if ref is None or not math.isfinite(ref[0]):
        return None
    unc: float | None = None
    if kind == "bayesian":
        sds = [s[1] for s in (a, b) if s is not None and s[1] is not None
               and math.isfinite(s[1])]
        unc = max(sds) if sds else None
    elif spec_of(quantity).se_scaled and ref[1] is not None and math.isfinite(ref[1]):
        unc = ref[1]
    return policy.rule(kind, kind, quantity).tolerance(ref[0], unc)


def _comparisons(run: RunResults) -> dict[RowKey, tuple[str, str | None]]:
    return {(c.model, c.engine, c.reference, c.quantity, c.term): (c.verdict, c.reason)
            for c in run.comparisons}


def _flatten(prefix: str, value: Any) -> dict[str, str]:
    """Nested dicts as dotted names, so a change deep in an environment record shows."""
    if not isinstance(value, dict):
        return {prefix: str(value)} if value is not None and value != "" else {}
    return {k: v for key, sub in value.items()
            for k, v in _flatten(f"{prefix}.{key}" if prefix else str(key), sub).items()}


def _recorded(doc: dict[str, Any], fits: dict[tuple[str, str], Fit]) -> dict[tuple[str, str], str]:
    """Versions per engine (merged over its fits) and the run's environment and settings."""
    seen: dict[tuple[str, str], set[str]] = {}
    for f in fits.values():
        prov = f.provenance
        items = {"engine_version": prov.engine_version, "r_version": prov.r_version or "",
                 **prov.versions}
        for name, value in items.items():
            if value:
                seen.setdefault((f.engine, name), set()).add(str(value))
    out = {k: ", ".join(sorted(v)) for k, v in seen.items()}
    for section in ("environment", "settings"):
        out.update({(section, k): v for k, v in _flatten("", doc.get(section)).items()})
    for key in ("parity_version", "python_version"):
        if doc.get(key):
            out[("run", key)] = str(doc[key])
    return out


def _fit_changes(fits_a: dict[tuple[str, str], Fit],
                 fits_b: dict[tuple[str, str], Fit]) -> list[FitChange]:
    out = []
    for model, label in dict.fromkeys([*fits_a, *fits_b]):
        fa, fb = fits_a.get((model, label)), fits_b.get((model, label))
        sa, sb = (f.status if f else "absent" for f in (fa, fb))
        if sa != sb:
            why = fb if fb is not None and fb.status != "ok" else fa
            out.append(FitChange(model, label, sa, sb, why.reason if why else None))
        elif fa is not None and fb is not None and not _same_question(fa, fb):
            # The same model fitted another way: its numbers answer another question.
            out.append(FitChange(model, label, f"{sa} ({_what(fa)})", f"{sb} ({_what(fb)})",
                                 "fitted with another family, link or criterion"))
    return out


def _kind(fit: Fit) -> str | None:
    """The fit's own kind, else its engine's (None for an engine this parity lacks)."""
    if fit.kind:
        return fit.kind
    from parity.engines import engine_kind  # the registry pulls in pandas: see below

    try:
        return engine_kind(fit.engine)
    except UsageError:
        return None


def _criterion(fit: Fit) -> str | None:
    """What the fit maximised or sampled, or None where the file does not say: a
    version-1 file records no criterion, and a frequentist fit there is not a posterior."""
    if fit.criterion:
        return fit.criterion
    return {"bayesian": "posterior", "approximate": "approximate posterior"}.get(
        _kind(fit) or "")


def _same_question(a: Fit, b: Fit) -> bool:
    """Family, link and criterion agree; a criterion one file does not record is
    unknown, not different (family and link default to what version 1 could fit)."""
    ca, cb = _criterion(a), _criterion(b)
    return (a.family, a.link) == (b.family, b.link) and (ca is None or cb is None or ca == cb)


def _what(fit: Fit) -> str:
    """What a fit maximised or sampled: family, link and criterion."""
    return f"{fit.family}/{fit.link}, {_criterion(fit) or 'criterion not recorded'}"


def _value_rows(fits_a: dict[tuple[str, str], Fit], fits_b: dict[tuple[str, str], Fit],
                policy: Policy) -> list[ValueDiff]:
    # The engine registry pulls in pandas; imported here so that parity.testing (and the
    # pytest plugin, loaded in every pytest run of an environment) stays cheap to import.
    from parity.engines import engine_kind

    vals_a = {k: v for f in fits_a.values() if f.status == "ok" for k, v in _values(f).items()}
    vals_b = {k: v for f in fits_b.values() if f.status == "ok" for k, v in _values(f).items()}
    rows = []
    for key in dict.fromkeys([*vals_a, *vals_b]):
        va, vb = vals_a.get(key), vals_b.get(key)
        tol = _tolerance(policy, engine_kind, key[1].partition(":")[0], key[2], va, vb)
        rows.append(ValueDiff(*key, va[0] if va else None, vb[0] if vb else None, tol))
    return rows


def diff_results(a: dict[str, Any], b: dict[str, Any], policy: Policy,
                 a_name: str = "A", b_name: str = "B") -> DiffReport:
    """Every value, comparison row, fit status and recorded version of two result
    documents (as read from results.json), A being the baseline."""
    run_a, run_b = _record(a), _record(b)
    fits_a, fits_b = _fits(run_a), _fits(run_b)
    comp_a, comp_b = _comparisons(run_a), _comparisons(run_b)
    verdicts = [VerdictDiff(k, ca[0] if ca else None, cb[0] if cb else None,
                            cb[1] if cb else None)
                for k in dict.fromkeys([*comp_a, *comp_b])
                for ca, cb in [(comp_a.get(k), comp_b.get(k))]]
    rec_a, rec_b = _recorded(a, fits_a), _recorded(b, fits_b)
    versions = [VersionChange(*k, rec_a.get(k), rec_b.get(k))
                for k in dict.fromkeys([*rec_a, *rec_b]) if rec_a.get(k) != rec_b.get(k)]
    values = _value_rows(fits_a, fits_b, policy)
    kept_values, kept_verdicts, notes = list(values), list(verdicts), []
    versions_of = {a_name: _version(a), b_name: _version(b)}
    newest = max(versions_of.values())
    for name, version in versions_of.items():
        lacks_values, lacks_rows = _lacks(version, newest)
        if not (lacks_values or lacks_rows):
            continue
        before = len(kept_values), len(kept_verdicts)
        kept_values = [r for r in kept_values
                       if not (_one_sided(r) and r.quantity in lacks_values)]
        kept_verdicts = [v for v in kept_verdicts
                         if not (_one_sided(v) and v.key[3] in lacks_rows)]
        notes.append(_old_note(name, version, before[0] - len(kept_values),
                               before[1] - len(kept_verdicts)))
    return DiffReport(tuple(kept_values), tuple(kept_verdicts),
                      tuple(_fit_changes(fits_a, fits_b)), tuple(versions), a_name, b_name,
                      tuple(notes))


def _version(doc: dict[str, Any]) -> int:
    version = doc.get("schema_version")
    return version if isinstance(version, int) else SCHEMA_VERSION


# What each schema version added, as values of a fit and as quantities of comparison
# rows: a file of an older version cannot hold them, so a value or row of those
# quantities found in the newer file only is what the older one could not record, not
# something that appeared. Version 2 added group effects and log-likelihoods (and
# criteria, families and links: see `_same_question`); version 4 the t-tests' df, and
# the comparison rows of interval ends, df and conclusions (interval ends were recorded
# from version 1 on, so a conclusion is a value of every version).
_ADDED: dict[int, tuple[frozenset[str], frozenset[str], str]] = {
    2: (frozenset({"group_effect", "loglik"}), frozenset({"group_effect", "loglik"}),
        "group effects, log-likelihoods or criteria"),
    4: (frozenset({"df"}), frozenset({"lower", "upper", "df", "conclusion"}),
        "t-test df, nor rows of interval ends, df or conclusions"),
}


def _lacks(version: int, newest: int) -> tuple[frozenset[str], frozenset[str]]:
    """The value quantities and row quantities a file of `version` cannot hold that a
    file of `newest` can."""
    values: frozenset[str] = frozenset()
    rows: frozenset[str] = frozenset()
    for added, (v, r, _) in _ADDED.items():
        if version < added <= newest:
            values, rows = values | v, rows | r
    return values, rows


def _old_note(name: str, version: int, values: int, rows: int) -> str:
    """What an older file (diffed against a newer one) cannot hold, and how many of the
    other file's values and comparison rows were left out for it, said once rather than
    listed row by row as if they had appeared or vanished."""
    missing = "; nor ".join(what for added, (_, _, what) in _ADDED.items() if version < added)
    return (f"{name} is schema version {version}, which records no {missing}: {values} "
            f"values and {rows} comparison rows of those are in the other file only and "
            "not compared")


def diff_files(a: Path, b: Path, policy: Policy) -> DiffReport:
    """`parity diff A B`: both files read and checked before anything is compared."""
    doc_a, doc_b = load_results(a), load_results(b)
    try:
        return diff_results(doc_a, doc_b, policy, str(a), str(b))
    except DataError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # Exit 1 means "a verdict flipped": malformed input must never look like that.
        raise DataError(f"the results files are malformed: {type(exc).__name__}: "
                        f"{str(exc)[:200]}") from None
