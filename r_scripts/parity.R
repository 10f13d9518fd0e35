# parity's shared R library: what every R engine's fit script needs, in one file.
#
# Sourced by the Python bridge (parity/engines/rbridge.py) before an engine's own
# script, or by that script itself when it runs under Rscript (see parity_source_shared()
# in each *_fit.R). An engine script defines one fit function with the signature
#
#   fit(data, formula_text, levels = list(), reml = TRUE, level = 0.95,
#       family = "gaussian", trials = NULL, nagq = 1L, weights = NULL)
#
# (`weights` is given only to engines that fit prior weights; lme4's also takes
# `ddf` and `profile`.)
#
# that returns parity_record(...), and ends with `parity_main(args, fit)`, so that any R
# row of a parity report can be reproduced in R alone:
#
#   Rscript r_scripts/lme4_fit.R data.csv "Reaction ~ Days + (Days | Subject)" Subject [REML|ML] [family] [trials] [weights] [level=0.95] [ddf=satterthwaite] [profile=TRUE]
#
# A formula is data here, never code: before R sees it as a formula, its parse tree is
# checked to hold only column names, 0, 1, the operators ~ + - * / : ( | || and
# offset(column), a column added to the linear predictor (parity computes a transformed
# offset itself and names its column here). R's model.frame() would otherwise evaluate
# any call inside it.
#
# The JSON a fit function returns is written down field by field in
# docs/results-schema.md ("The R side").

suppressPackageStartupMessages(library(jsonlite))

parity_allowed_ops <- c("~", "+", "-", "*", "/", ":", "(", "|", "||")

parity_check_formula <- function(expr, columns) {
  if (is.symbol(expr)) {
    name <- as.character(expr)
    if (!(name %in% columns)) stop(sprintf("formula names %s, which is not a column", name))
    return(invisible(TRUE))
  }
  if (is.numeric(expr) && length(expr) == 1 && expr %in% c(0, 1)) return(invisible(TRUE))
  if (is.call(expr) && identical(expr[[1]], as.symbol("offset"))) {
    if (length(expr) != 2 || !is.symbol(expr[[2]])) {
      stop("offset() may hold only a column: ", paste(deparse(expr), collapse = " "))
    }
    return(parity_check_formula(expr[[2]], columns))
  }
  if (is.call(expr)) {
    op <- expr[[1]]
    if (!is.symbol(op) || !(as.character(op) %in% parity_allowed_ops)) {
      stop("formula contains a call that is not allowed: ", paste(deparse(expr), collapse = " "))
    }
    for (arg in as.list(expr)[-1]) parity_check_formula(arg, columns)
    return(invisible(TRUE))
  }
  stop("formula contains something that is not a column name: ", paste(deparse(expr), collapse = " "))
}

parity_levels <- function(x) {
  # Numeric columns sort numerically. Text that is a number (ids read as text, so that
  # "01" and "1" stay two levels) sorts by value, then by text; other text after it, by
  # code point (the C locale). parity sorts the same way.
  if (is.numeric(x)) return(as.character(sort(unique(x))))
  u <- unique(as.character(x))
  num <- grepl("^[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?$", u)
  value <- suppressWarnings(as.numeric(u[num]))
  c(u[num][order(value, u[num], method = "radix")], sort(u[!num], method = "radix"))
}

# The grouping terms of a formula, `( … | g)` and `( … || g)`, as calls: lme4's
# findbars() without lme4, so that an engine need not load lme4 to read its model.
parity_bars <- function(expr) {
  if (!is.call(expr)) return(list())
  op <- as.character(expr[[1]])
  if (op %in% c("|", "||")) return(list(expr))
  if (op == "(") return(parity_bars(expr[[2]]))
  if (op == "~") return(parity_bars(expr[[length(expr)]]))
  unlist(lapply(as.list(expr)[-1], parity_bars), recursive = FALSE)
}

# The grouping columns a formula names.
parity_group_columns <- function(expr) {
  unique(unlist(lapply(parity_bars(expr), function(b) all.vars(b[[3]]))))
}

# The formula checked and built, the model's complete rows, factors with the given levels.
# `trials` (a binomial count's number of trials) is a column name, checked like the others;
# with it the response becomes cbind(y, trials - y), built as a call, never from text.
# `weights` names the column of prior weights, kept with the rows.
parity_prepare <- function(data, formula_text, levels, trials = NULL, weights = NULL) {
  expr <- str2lang(formula_text)
  if (!is.call(expr) || !identical(expr[[1]], as.symbol("~")) || length(expr) != 3) {
    stop("formula must be of the form response ~ terms")
  }
  parity_check_formula(expr, names(data))
  if (!is.null(trials)) {
    if (!is.character(trials) || length(trials) != 1 || !(trials %in% names(data))) {
      stop("trials must name a column")
    }
    y <- expr[[2]]
    expr[[2]] <- call("cbind", y, call("-", as.symbol(trials), y))
  }
  if (!is.null(weights) && (!is.character(weights) || length(weights) != 1 ||
                            !(weights %in% names(data)))) {
    stop("weights must name a column")
  }
  f <- stats::formula(expr)  # checked above: builds the formula object, runs nothing else
  # Symbols are all columns (checked), found in data first; offset() is the one function
  # a checked formula calls, and lme4 keeps its weights in the formula's environment.
  env <- new.env(parent = baseenv())
  env$offset <- stats::offset
  environment(f) <- env
  vars <- union(all.vars(f), weights)
  n_total <- nrow(data)
  data <- data[stats::complete.cases(data[, vars, drop = FALSE]), vars, drop = FALSE]
  for (v in names(levels)) {
    if (v %in% vars) data[[v]] <- factor(as.character(data[[v]]), levels = unlist(levels[[v]]))
  }
  list(formula = f, data = data, n_dropped = n_total - nrow(data), weights = weights)
}

# `fit(f, data = data, ...)`, with `weights = <column>` when the model has weights: the
# column's name as a symbol, which model.frame() looks up among the data's columns (the
# formula's environment is baseenv(), so a local vector would not be found).
parity_weighted_call <- function(fit, f, data, weights, ...) {
  if (is.null(weights)) return(fit(f, data = data, ...))
  do.call(fit, list(f, data = data, weights = as.symbol(weights), ...))
}

# The value of `expr`, and its warnings and messages as text (kept in the result's
# diagnostics, never printed).
parity_quietly <- function(expr) {
  warnings <- character(0)
  value <- withCallingHandlers(
    expr,
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w))
      invokeRestart("muffleWarning")
    },
    message = function(m) {
      warnings <<- c(warnings, trimws(conditionMessage(m)))
      invokeRestart("muffleMessage")
    }
  )
  list(value = value, warnings = warnings)
}

parity_family <- function(family) {
  switch(family, gaussian = stats::gaussian(), binomial = stats::binomial(),
         poisson = stats::poisson(), stop("unknown family ", family))
}

# The criterion a fit maximised, in parity's one vocabulary: "REML", "ML", "OLS" (a
# Gaussian model without grouping terms fitted by least squares), "Laplace", "AGQ(n)"
# (a GLMM by adaptive Gauss-Hermite quadrature with n > 1 points) or "nAGQ=0" (glmer's
# fast fit: fixed effects from the PIRLS step, Laplace for the variance parameters only).
parity_criterion <- function(mixed, glmm, reml, nagq = 1L, ols = TRUE) {
  if (glmm && mixed) {
    if (nagq == 0) "nAGQ=0" else if (nagq > 1) sprintf("AGQ(%d)", as.integer(nagq)) else "Laplace"
  } else if (glmm) {
    "ML"
  } else if (!mixed && ols) {
    "OLS"
  } else if (reml) {
    "REML"
  } else {
    "ML"
  }
}

# Fixed-effect rows: estimate, SE and the Wald interval estimate -/+ z SE, with no test.
parity_fixed <- function(est, se, z) {
  parity_fixed_rows(est, se, lower = est - z * se, upper = est + z * se,
                    interval_method = "Wald-z")
}

# Fixed-effect rows as an analyst publishes them, each number from the engine's own
# library: estimate and SE, the test `statistic` ("t" or "z", `statistic_kind`), its
# degrees of freedom `df` and how they were found (`df_method`), the two-sided `p_value`,
# and the interval `lower`/`upper` with how it was found (`interval_method`). Each
# vector is indexed by term where it has names (the names of `est`), else by position;
# one not given (NULL) is null in every row, and a term it lacks is null in its row.
parity_fixed_rows <- function(est, se, statistic = NULL, statistic_kind = NULL, df = NULL,
                              df_method = NULL, p_value = NULL, lower = NULL, upper = NULL,
                              interval_method = NULL) {
  terms <- names(est)
  at <- function(x, i) {
    if (is.null(x)) return(NULL)
    if (length(x) == 1 && is.null(names(x)) && length(est) > 1) return(unname(x[[1]]))
    if (!is.null(names(x))) {
      return(if (terms[i] %in% names(x)) unname(x[[terms[i]]]) else NA)
    }
    unname(x[[i]])
  }
  lapply(seq_along(est), function(i) list(
    term = terms[i], estimate = unname(est[[i]]), std_error = at(se, i),
    lower = at(lower, i), upper = at(upper, i),
    statistic = at(statistic, i), statistic_kind = statistic_kind,
    df = at(df, i), df_method = df_method, p_value = at(p_value, i),
    interval_method = at(interval_method, i)
  ))
}

# A coefficient table's column (summary()'s `coefficients`, nlme's `tTable`) by term.
parity_column <- function(table, column) {
  if (!(column %in% colnames(table))) stop(sprintf("no column %s in the coefficient table", column))
  stats::setNames(unname(table[, column]), rownames(table))
}

# One variance component row: an SD (term2 NULL) or a correlation of term and term2;
# the residual SD is group "Residual" with no term.
# An interval (`lower`, `upper`, found by `interval_method`) is kept where one is given.
parity_component <- function(group, term, term2, estimate, lower = NULL, upper = NULL,
                             interval_method = NULL) {
  row <- list(group = group, term = term, term2 = term2,
              kind = if (is.null(term2)) "sd" else "corr", estimate = estimate)
  if (!is.null(interval_method)) {
    row$lower <- lower
    row$upper <- upper
    row$interval_method <- interval_method
  }
  row
}

# The likelihood statistics under the criterion fitted: logLik, AIC, BIC, deviance as
# -2 logLik, and the number of parameters df.
parity_statistics <- function(loglik, aic, bic, df) {
  list(loglik = loglik, aic = aic, bic = bic, deviance = -2 * loglik, df = df)
}

# R's version and the versions of `packages`, the packages whose numbers the fit holds.
parity_versions <- function(packages) {
  c(list(r = R.version.string),
    stats::setNames(lapply(packages, function(p) as.character(utils::packageVersion(p))),
                    packages))
}

# The one JSON record every R fit function returns (and parity_main prints); the Python
# bridge reads it into a Fit. Fields, in order, as docs/results-schema.md lists them.
# `interval` is the level of every interval the record holds; `settings` what the engine
# ran beyond the common arguments (lme4's ddf and profile).
parity_record <- function(engine, formula, method, family, n_obs, n_dropped, fixed,
                          components, converged, singular, warnings, fit_statistics,
                          criterion, group_effects, vcov, packages, interval = NULL,
                          settings = NULL) {
  V <- as.matrix(vcov)
  out <- list(
    engine = engine,
    formula = formula,
    method = method,
    family = family,
    link = parity_family(family)$link,
    n_obs = n_obs,
    n_dropped = n_dropped,
    fixed_effects = fixed,
    variance_components = components,
    diagnostics = list(converged = converged, singular = singular, warnings = as.list(warnings)),
    fit_statistics = fit_statistics,
    criterion = criterion,
    group_effects = group_effects,
    # I(): rows stay arrays, even for a 1 x 1 matrix
    fixed_effects_cov = lapply(seq_len(nrow(V)), function(i) I(unname(V[i, ]))),
    versions = parity_versions(packages),
    interval = interval,
    settings = if (is.null(settings)) NULL else as.list(settings)
  )
  out <- out[!vapply(out, is.null, TRUE) | !(names(out) %in% c("interval", "settings"))]
  as.character(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null"))
}

# Rscript's entry: read the CSV as parity reads it, code its factors with parity's
# levels, fit with `fit_function` and print the record. Arguments: data.csv "formula"
# [cat1,cat2,...] [REML|ML] [family] [trials] [weights], and anywhere after the formula
# settings as name=value: level=0.95 (the interval's level), nagq=1, and for lme4
# ddf=satterthwaite|kenward-roger|none and profile=TRUE (a setting the fit function does not
# take is refused).
parity_main <- function(args, fit_function, script = "<engine>_fit.R") {
  named <- grepl("^(level|nagq|ddf|profile)=", args)
  named[seq_len(min(2, length(args)))] <- FALSE
  options <- list()
  for (a in args[named]) {
    key <- sub("=.*$", "", a)
    value <- sub("^[^=]*=", "", a)
    if (!(key %in% names(formals(fit_function)))) stop(sprintf("%s does not take %s", script, key))
    options[[key]] <- switch(key, level = as.numeric(value), nagq = as.integer(value),
                             profile = toupper(value) %in% c("TRUE", "T", "1", "YES"),
                             value)
  }
  args <- args[!named]
  if (length(args) < 2) {
    cat(sprintf("usage: Rscript %s data.csv \"formula\" [cat1,cat2,...] [REML|ML] [family] [trials] [weights] [level=0.95] [nagq=1] [ddf=satterthwaite|kenward-roger|none] [profile=TRUE]\n",
                script), file = stderr())
    quit(status = 2)
  }
  cats <- if (length(args) >= 3 && nzchar(args[[3]])) strsplit(args[[3]], ",")[[1]] else character(0)
  expr <- str2lang(args[[2]])
  header <- names(utils::read.csv(args[[1]], nrows = 1, check.names = FALSE))
  parity_check_formula(expr, header)  # before anything reads the formula
  bar_groups <- parity_group_columns(expr)
  # Categorical and grouping columns are read as text, as parity reads them: read as
  # numbers, ids "01" and "1" would be one group.
  text <- intersect(header, union(cats, bar_groups))
  classes <- stats::setNames(rep("character", length(text)), text)
  data <- utils::read.csv(args[[1]], stringsAsFactors = FALSE, colClasses = classes,
                          check.names = FALSE)
  for (v in text) data[[v]][!is.na(data[[v]]) & data[[v]] == ""] <- NA  # a blank is missing
  parity_check_formula(expr, names(data))
  vars <- all.vars(expr)
  complete <- data[stats::complete.cases(data[, vars, drop = FALSE]), , drop = FALSE]
  factors <- intersect(vars[-1], union(union(cats, bar_groups),
                                       names(data)[!vapply(data, is.numeric, TRUE)]))
  levels <- lapply(factors, function(v) parity_levels(complete[[v]]))
  names(levels) <- factors
  criterion <- if (length(args) >= 4) toupper(args[[4]]) else "REML"
  if (!(criterion %in% c("REML", "ML"))) stop("the fourth argument must be REML or ML")
  family <- if (length(args) >= 5) args[[5]] else "gaussian"
  trials <- if (length(args) >= 6 && nzchar(args[[6]])) args[[6]] else NULL
  weights <- if (length(args) >= 7 && nzchar(args[[7]])) list(weights = args[[7]]) else list()
  response <- vars[[1]]
  if (family == "binomial" && is.null(trials) && !is.numeric(data[[response]])) {
    # A two-level factor response, as R's binomial family reads one: its first level (in
    # parity's order) is failure, the other success.
    data[[response]] <- factor(data[[response]], levels = parity_levels(complete[[response]]))
  }
  cat(do.call(fit_function, c(list(data, args[[2]], levels, reml = criterion == "REML",
                                   family = family, trials = trials), weights, options)),
      "\n")
}
