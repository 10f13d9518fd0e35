"""Offsets and weights: the grammar's `offset(...)`, the checks on a weights column, and
each engine's refusal, with its reason, of what it does not fit."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parity.engines import load_engine
from parity.engines.recorded import _key
from parity.errors import DataError, FormulaError, UsageError
from parity.inputs.config import load_config
from parity.inputs.resolve import resolve_inputs
from parity.pipeline.cache import key_material
from parity.pipeline.workers import run_models
from parity.registry import CAPABILITIES, ENGINE_NAMES, engine_info
from parity.rows.prepare import prepare
from parity.settings import Settings
from parity.spec.grammar import parse_formula
from parity.spec.models import make_model

CBPP_LIKE = "incidence ~ period + offset(log(size)) + (1 | herd)"


def frame(n: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({
        "incidence": rng.integers(0, 5, n).astype(float),
        "size": rng.integers(5, 20, n).astype(float),
        "period": [str(1 + i % 4) for i in range(n)],
        "herd": [f"h{i % 6}" for i in range(n)],
        "w": 0.5 + (np.arange(n) % 5) / 4,
    })


# --- the grammar -------------------------------------------------------------------------

def test_an_offset_is_a_derived_column_the_spec_keeps_apart() -> None:
    spec = parse_formula(CBPP_LIKE)
    assert [t.label for t in spec.fixed] == ["period"]
    (alias,) = spec.offset
    (derived,) = spec.derived
    assert derived.alias == alias and derived.name == "offset(log(size))"
    assert spec.lme4_formula() == f"incidence ~ 1 + period + offset({alias}) + (1 | herd)"
    assert spec.source_columns() == ("incidence", "period", "herd", "size")
    assert spec.rename(spec.lme4_formula()) == spec.written_formula()


@pytest.mark.parametrize("text", [
    CBPP_LIKE,
    "y ~ offset(a) + x",
    "y ~ x + offset(I(a*2)) + offset(log(b)) + (x || g)",
    "log(y) ~ poly(x, 2) + offset(sqrt(a + b))",
])
def test_the_spec_writes_offsets_back_as_written(text: str) -> None:
    spec = parse_formula(text)
    written = spec.written_formula()
    again = parse_formula(written)
    assert again.written_formula() == written
    names = {d.alias: d.name for d in spec.derived}
    assert [names[a] for a in spec.offset] == [
        {d.alias: d.name for d in again.derived}[a] for a in again.offset]
    for d in spec.derived:
        if d.alias in spec.offset:
            assert d.name in written


def test_several_offsets_add_up_as_in_r_and_one_written_twice_is_one() -> None:
    spec = parse_formula("y ~ x + offset(a) + offset(log(b)) + offset(a)")
    assert len(spec.offset) == 2
    assert spec.written_formula() == "y ~ 1 + x + offset(a) + offset(log(b))"


@pytest.mark.parametrize(("text", "message"), [
    ("y ~ x + offset()", "offset() at position 9 is empty"),
    ("y ~ x + offset(a, b)", "takes 1 argument"),
    ("y ~ x + offset(2)", "reads no column"),
    ("y ~ x + offset(a):b", "':' applies to columns, not to offset()"),
    ("y ~ x * offset(a)", "'*' applies to columns, not to offset()"),
    ("y ~ x - offset(a)", "an offset cannot be subtracted"),
    ("y ~ x + (offset(a) | g)", "must be a top-level term"),
    ("y ~ (x + offset(a))", "must be a top-level term"),
    ("y ~ log(offset(a))", "not inside a call or the response"),
    ("offset(y) ~ x", "not inside a call or the response"),
    ("y ~ x + offset(poly(a, 2))", "poly() at position 16 makes several columns"),
    ("y ~ x + offset(log(y))", "offset(log(y)) reads the response y"),
    ("y ~ x + offset(system(1))", "function 'system'"),
])
def test_offsets_the_grammar_refuses(text: str, message: str) -> None:
    with pytest.raises(FormulaError, match="^formula: ") as info:
        parse_formula(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_offset_is_computed_once_for_every_engine() -> None:
    model = make_model("m", CBPP_LIKE, family="poisson")
    data = prepare(frame(), model.spec, (), model.family)
    (alias,) = model.spec.offset
    assert np.allclose(data.frame[alias], np.log(frame()["size"]))


def test_an_offset_of_a_factor_or_of_text_is_refused() -> None:
    model = make_model("m", "incidence ~ period + offset(herd) + (1 | herd)",
                       family="poisson")
    with pytest.raises(DataError, match="offset.herd. reads 'herd', which is categorical"):
        prepare(frame(), model.spec, (), model.family)
    text = frame().assign(label=lambda f: f["herd"])
    model = make_model("m", "incidence ~ period + offset(label) + (1 | herd)",
                       family="poisson")
    with pytest.raises(DataError, match="column 'label' is not numeric; an offset is a "
                                        "number per row"):
        prepare(text, model.spec, (), model.family)


def test_an_offset_that_is_not_finite_names_its_row() -> None:
    data = frame()
    data.loc[4, "size"] = 0.0
    model = make_model("m", CBPP_LIKE, family="poisson")
    with pytest.raises(DataError, match=r"offset\(log\(size\)\) is not a finite number at "
                                        r"row 5 \(size = 0.0\)"):
        prepare(data, model.spec, (), model.family)


# --- weights -----------------------------------------------------------------------------

def test_the_weights_column_is_part_of_the_complete_rows() -> None:
    data = frame()
    data.loc[2, "w"] = np.nan
    model = make_model("m", "incidence ~ period + (1 | herd)", weights="w")
    prepared = prepare(data, model.spec, (), model.family, None, "w")
    assert prepared.n_dropped == 1
    assert prepared.frame["w"].dtype == float
    assert list(prepared.frame.columns) == ["incidence", "period", "herd", "w"]


@pytest.mark.parametrize(("value", "message"), [
    (-1.0, "weight w = -1.0 at row 4; weights must be finite numbers above 0"),
    (0.0, "weight w = 0.0 at row 4; weights must be finite numbers above 0"),
    (np.inf, "weight w = inf at row 4; weights must be finite numbers above 0"),
])
def test_weights_must_be_finite_and_positive(value: float, message: str) -> None:
    data = frame()
    data.loc[3, "w"] = value
    model = make_model("m", "incidence ~ period + (1 | herd)", weights="w")
    with pytest.raises(DataError) as info:
        prepare(data, model.spec, (), model.family, None, "w")
    assert str(info.value) == f"data: {message}" or str(info.value) == message


def test_weights_that_are_text_or_a_factor_are_refused() -> None:
    data = frame().assign(w=lambda f: f["w"].astype(object))
    data.loc[3, "w"] = "n/a"
    model = make_model("m", "incidence ~ period + (1 | herd)", weights="w")
    with pytest.raises(DataError, match="row 4 is 'n/a'"):
        prepare(data, model.spec, (), model.family, None, "w")
    grouped = make_model("m", "incidence ~ period + (1 | herd)", weights="herd")
    with pytest.raises(DataError, match="the weights column 'herd' is categorical"):
        prepare(frame(), grouped.spec, (), grouped.family, None, "herd")


@pytest.mark.parametrize(("weights", "message"), [
    ("incidence", "the weights column 'incidence' is the response itself"),
    ("my w", "rename it, e.g. to 'my_w'"),
    ("", "weights must name a column"),
])
def test_a_weights_name_that_cannot_be_used_is_a_usage_error(weights: str,
                                                              message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_model("m", "incidence ~ period + (1 | herd)", weights=weights)


def test_models_toml_names_weights_in_a_model_table(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('data = "d.csv"\n[models.w]\nformula = "y ~ x + (1 | g)"\n'
                    'weights = "w"\n[models.plain]\nformula = "y ~ x"\n')
    config = load_config(path)
    assert config.families == {"w": ("gaussian", None, "w"),
                               "plain": ("gaussian", None, None)}
    path.write_text('data = "d.csv"\n[models.w]\nformula = "y ~ x"\nweights = 3\n')
    with pytest.raises(UsageError, match="family, trials and weights must be strings"):
        load_config(path)


def test_weights_option_applies_to_formula_models_only(tmp_path: Path) -> None:
    csv = tmp_path / "d.csv"
    frame().to_csv(csv, index=False)
    args = argparse.Namespace(data=csv, formula=["incidence ~ period + (1 | herd)"],
                              weights="w", categorical=None)
    (model,) = resolve_inputs(args).models
    assert model.weights == "w"
    with pytest.raises(UsageError, match="--weights apply to --formula models"):
        resolve_inputs(argparse.Namespace(data=csv, weights="w"))


def test_cache_and_record_keys_hold_the_weights_and_the_offset() -> None:
    settings = Settings()
    plain = make_model("m", "incidence ~ period + (1 | herd)", family="poisson")
    weighted = make_model("m", "incidence ~ period + (1 | herd)", family="poisson",
                          weights="w")
    offset = make_model("m", "incidence ~ period + offset(log(size)) + (1 | herd)",
                        family="poisson")
    data = prepare(frame(), plain.spec, (), plain.family)
    keys = [key_material("statsmodels", m, data, settings) for m in (plain, weighted, offset)]
    assert keys[0] is not None and keys[1] is not None and keys[2] is not None
    assert keys[1]["weights"] == "w" and keys[0]["weights"] is None
    assert "offset(" in keys[2]["formula"] and "offset(" not in keys[0]["formula"]
    assert "weights" not in _key(plain, data, settings)
    assert _key(weighted, data, settings)["weights"] == "w"
    assert "offset(" in _key(offset, data, settings)["engine_formula"]


# --- the engines' refusals ---------------------------------------------------------------

# Who fits what, per the registry: (offset, weights of a Gaussian model, of a Poisson one).
FITS = {
    "lme4": (True, True, True),
    "statsmodels": (False, False, False),
    "bambi": (True, False, False),
    "glmmtmb": (True, False, True),
    "nlme": (False, False, None),  # nlme fits Gaussian models only
    "pymc": (False, False, None),  # so does parity's PyMC model
    "brms": (False, False, None),  # and parity's brms engine
}


def test_every_engine_is_listed() -> None:
    assert set(FITS) == set(ENGINE_NAMES)
    for name in ENGINE_NAMES:
        assert {c for c, _ in engine_info(name).cannot} <= set(CAPABILITIES)


@pytest.mark.parametrize("engine", list(FITS))
def test_each_engine_fits_or_refuses_offsets_and_weights_with_its_reason(engine: str
                                                                        ) -> None:
    offset_ok, gaussian_ok, poisson_ok = FITS[engine]
    settings = Settings()
    cases = [
        (make_model("m", "y ~ x + offset(log(a)) + (1 | g)"), offset_ok, "an offset"),
        (make_model("m", "y ~ x + (1 | g)", weights="w"), gaussian_ok, "weights"),
        (make_model("m", "y ~ x + (1 | g)", family="poisson", weights="w"), poisson_ok,
         "weights"),
    ]
    for model, fits, what in cases:
        if fits is None:
            continue
        refusal = load_engine(engine).refuses(model, settings)
        if fits:
            assert refusal is None, refusal
        else:
            assert refusal is not None and not refusal.stops_run
            assert refusal.reason.startswith(f"{engine} does not fit a model with {what}: ")
            assert "\n" not in refusal.reason


def test_refused_fits_are_unsupported_before_any_worker_starts() -> None:
    model = make_model("m", "incidence ~ period + (1 | herd)", weights="w")
    outcome = run_models([model], frame(), ["statsmodels", "bambi", "pymc"], Settings(),
                         matched_references=False)
    for fit in outcome.fits:
        assert fit.status == "unsupported"
        assert (fit.reason or "").startswith(f"{fit.engine} does not fit a model with weights")
        assert fit.provenance.seconds == 0.0


def test_bambi_is_given_the_offset_as_formulae_writes_it() -> None:
    from parity.engines.bambi import bambi_formula

    spec = parse_formula(CBPP_LIKE)
    (alias,) = spec.offset
    assert bambi_formula(spec) == f"incidence ~ 1 + period + offset({alias}) + (1 | herd)"
