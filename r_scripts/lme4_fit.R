#!/usr/bin/env Rscript
# parity's lme4 side.
#
# Sourced by parity's lme4 bridge (through rpy2), which calls parity_fit() with the
# prepared rows and explicit factor levels; or run on its own, so that an analyst can
# reproduce any lme4 row of a parity report in R alone:
#
#   Rscript r_scripts/lme4_fit.R data.csv "frequency ~ gender + attitude + (1 | subject)" subject,gender,attitude
#
# A fourth argument ML fits by maximum likelihood (`parity run --ml`); REML is the default.
# A fifth names the family (gaussian, binomial, poisson), a sixth a binomial trials column.
#
# Both paths go through parity_fit() and print or return the same JSON.
#
# A formula is data here, never code: before R sees it as a formula, its parse tree is
# checked to hold only column names, 0, 1 and the operators ~ + - * / : ( | ||. R's
# model.frame() would otherwise evaluate any call inside it.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

parity_allowed_ops <- c("~", "+", "-", "*", "/", ":", "(", "|", "||")

parity_check_formula <- function(expr, columns) {
  if (is.symbol(expr)) {
    name <- as.character(expr)
    if (!(name %in% columns)) stop(sprintf("formula names %s, which is not a column", name))
    return(invisible(TRUE))
  }
  if (is.numeric(expr) && length(expr) == 1 && expr %in% c(0, 1)) return(invisible(TRUE))
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

# The formula checked and built, the model's complete rows, factors with the given levels.
# `trials` (a binomial count's number of trials) is a column name, checked like the others;
# with it the response becomes cbind(y, trials - y), built as a call, never from text.
parity_prepare <- function(data, formula_text, levels, trials = NULL) {
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
  f <- stats::formula(expr)  # checked above: builds the formula object, runs nothing else
  environment(f) <- baseenv()  # symbols are all columns (checked), found in data first
  vars <- all.vars(f)
  n_total <- nrow(data)
  data <- data[stats::complete.cases(data[, vars, drop = FALSE]), vars, drop = FALSE]
  for (v in names(levels)) {
    if (v %in% vars) data[[v]] <- factor(as.character(data[[v]]), levels = unlist(levels[[v]]))
  }
  list(formula = f, data = data, n_dropped = n_total - nrow(data))
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

parity_fit <- function(data, formula_text, levels = list(), reml = TRUE, level = 0.94,
                       family = "gaussian", trials = NULL, nagq = 1L) {
  prepared <- parity_prepare(data, formula_text, levels, trials)
  f <- prepared$formula
  data <- prepared$data
  mixed <- !is.null(lme4::findbars(f))
  glmm <- family != "gaussian"
  fam <- parity_family(family)
  caught <- parity_quietly(
    if (mixed && glmm) lme4::glmer(f, data = data, family = fam, nAGQ = as.integer(nagq))
    else if (mixed) lme4::lmer(f, data = data, REML = reml)
    else if (glmm) stats::glm(f, data = data, family = fam)
    else stats::lm(f, data = data)
  )
  fit <- caught$value
  warnings <- caught$warnings
  z <- if (mixed || glmm) stats::qnorm(1 - (1 - level) / 2) else stats::qt(1 - (1 - level) / 2, fit$df.residual)
  est <- if (mixed) lme4::fixef(fit) else stats::coef(fit)
  se <- sqrt(diag(as.matrix(stats::vcov(fit))))
  fixed <- lapply(seq_along(est), function(i) list(
    term = names(est)[i], estimate = unname(est[i]), std_error = unname(se[i]),
    lower = unname(est[i] - z * se[i]), upper = unname(est[i] + z * se[i])
  ))
  if (mixed) {
    vc <- as.data.frame(lme4::VarCorr(fit))
    components <- lapply(seq_len(nrow(vc)), function(i) {
      residual <- vc$grp[i] == "Residual"
      list(
        group = vc$grp[i],
        term = if (residual) NULL else vc$var1[i],
        term2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
        kind = if (is.na(vc$var2[i])) "sd" else "corr",
        estimate = vc$sdcor[i]
      )
    })
    conv <- fit@optinfo$conv$lme4$messages
    opt_warnings <- fit@optinfo$warnings
    messages <- c(as.character(unlist(conv)), as.character(unlist(opt_warnings)))
    warnings <- unique(c(warnings, messages))
    singular <- lme4::isSingular(fit)
    # A singular fit is reported by isSingular(); it is not a failure to converge.
    failures <- grep("singular", as.character(unlist(conv)), value = TRUE, invert = TRUE)
    converged <- length(failures) == 0 && fit@optinfo$conv$opt == 0
    # The conditional modes and their conditional SDs, as ranef(condVar = TRUE) gives them.
    re <- as.data.frame(lme4::ranef(fit, condVar = TRUE))
    group_effects <- lapply(seq_len(nrow(re)), function(i) list(
      group = as.character(re$grpvar[i]), level = as.character(re$grp[i]),
      term = as.character(re$term[i]), estimate = re$condval[i], std_error = re$condsd[i]
    ))
  } else {
    # A binomial or Poisson model has no residual SD: its variance follows from the mean.
    components <- if (glmm) list() else list(list(group = "Residual", term = NULL,
                                                   term2 = NULL, kind = "sd",
                                                   estimate = stats::sigma(fit)))
    singular <- FALSE
    converged <- if (glmm) isTRUE(fit$converged) else TRUE
    group_effects <- list()
  }
  # logLik, AIC and BIC under the criterion fitted (REML or ML; lm's log-likelihood is at
  # the ML variance), and deviance as -2 logLik under that criterion.
  ll <- stats::logLik(fit)
  stats_list <- list(
    loglik = as.numeric(ll),
    aic = stats::AIC(fit),
    bic = stats::BIC(fit),
    deviance = -2 * as.numeric(ll),
    df = as.numeric(attr(ll, "df"))
  )
  if (mixed && reml && !glmm) stats_list$reml_criterion <- unname(lme4::REMLcrit(fit))
  criterion <- if (glmm && mixed) (if (nagq > 1) sprintf("AGQ(%d)", as.integer(nagq)) else "Laplace")
    else if (glmm) "ML" else if (!mixed) "OLS" else if (reml) "REML" else "ML"
  V <- as.matrix(stats::vcov(fit))
  cov_rows <- lapply(seq_len(nrow(V)), function(i) I(unname(V[i, ])))  # I(): arrays, even 1 x 1
  out <- list(
    engine = "lme4",
    formula = formula_text,
    method = if (mixed && glmm) sprintf("glmer %s, nAGQ = %d", family, as.integer(nagq))
      else if (glmm) sprintf("glm %s", family)
      else if (mixed) (if (reml) "lmer REML" else "lmer ML") else "lm",
    family = family,
    link = fam$link,
    n_obs = nrow(data),
    n_dropped = prepared$n_dropped,
    fixed_effects = fixed,
    variance_components = components,
    diagnostics = list(converged = converged, singular = singular, warnings = as.list(warnings)),
    fit_statistics = stats_list,
    criterion = criterion,
    group_effects = group_effects,
    fixed_effects_cov = cov_rows,
    versions = list(
      r = R.version.string,
      lme4 = as.character(utils::packageVersion("lme4")),
      Matrix = as.character(utils::packageVersion("Matrix"))
    )
  )
  as.character(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null"))
}

# lme4's REML criterion (its ML deviance with reml = FALSE) at another engine's solution:
# the variance components given as
# JSON (rows of group, term, term2, kind, estimate, as parity writes them; the residual as
# group "Residual") become lme4's relative Cholesky factor theta, and lme4's own deviance
# function (devFunOnly) evaluates it, so two engines' optima are judged by one objective.
# The fixed effects lme4 profiles out at that theta (the GLS estimates given those
# variance components) come back too: an engine whose own fixed effects differ from them
# is inconsistent with its own variance components, whatever its criterion value.
# lme4's theta (the relative Cholesky factor of each block's covariance, by column) from
# variance components as parity writes them, scaled by `scale` (the residual SD of a
# Gaussian model; 1 for a GLMM, whose theta is the factor itself).
parity_theta <- function(cnms, comps, scale) {
  find <- function(group, term, term2 = NULL) {
    for (c in comps) {
      same <- identical(c$group, group) && identical(c$term, term)
      if (same && is.null(term2) && identical(c$kind, "sd")) return(c$estimate)
      if (!is.null(term2) && identical(c$kind, "corr") && identical(c$group, group) &&
          ((identical(c$term, term) && identical(c$term2, term2)) ||
           (identical(c$term, term2) && identical(c$term2, term)))) return(c$estimate)
    }
    NULL
  }
  theta <- numeric(0)
  for (i in seq_along(cnms)) {
    g <- names(cnms)[i]
    cols <- cnms[[i]]
    k <- length(cols)
    sds <- vapply(cols, function(cl) {
      v <- find(g, cl)
      if (is.null(v)) stop(sprintf("no SD for %s %s", g, cl))
      v / scale
    }, numeric(1))
    R <- diag(k)
    for (a in seq_len(k)) for (b in seq_len(k)) if (a < b) {
      r <- find(g, cols[a], cols[b])
      R[a, b] <- R[b, a] <- if (is.null(r)) 0 else r
    }
    Sigma <- diag(sds, k) %*% R %*% diag(sds, k)
    L <- if (k == 1) matrix(sds, 1, 1) else t(chol(Sigma + diag(1e-12, k)))
    theta <- c(theta, L[lower.tri(L, diag = TRUE)])
  }
  theta
}

# lme4's Laplace deviance (-2 log-likelihood of glmer's nAGQ = 1 approximation) of a
# binomial or Poisson model at another engine's solution: its variance components give
# theta, its fixed effects (JSON term -> estimate, in lme4's names) beta, and glmer's own
# stage-2 deviance function (devFunOnly) evaluates them.
parity_glmer_at <- function(data, formula_text, levels, components_json, fixed_json,
                            family, trials = NULL) {
  prepared <- parity_prepare(data, formula_text, levels, trials)
  devfun <- suppressWarnings(suppressMessages(
    lme4::glmer(prepared$formula, data = prepared$data, family = parity_family(family),
                nAGQ = 1L, devFunOnly = TRUE)))
  comps <- jsonlite::fromJSON(components_json, simplifyVector = FALSE)
  fixed <- jsonlite::fromJSON(fixed_json, simplifyVector = FALSE)
  lf <- lme4::glFormula(prepared$formula, data = prepared$data, family = parity_family(family))
  theta <- parity_theta(lf$reTrms$cnms, comps, 1)
  beta <- vapply(colnames(lf$X), function(t) {
    v <- fixed[[t]]
    if (is.null(v)) stop(sprintf("no fixed effect %s", t))
    as.numeric(v)
  }, numeric(1))
  crit <- devfun(c(theta, beta))
  as.character(jsonlite::toJSON(list(criterion = crit, theta = theta), auto_unbox = TRUE,
                                digits = NA))
}

parity_reml_at <- function(data, formula_text, levels, components_json, reml = TRUE) {
  prepared <- parity_prepare(data, formula_text, levels)
  lf <- lme4::lFormula(prepared$formula, data = prepared$data, REML = reml)
  devfun <- do.call(lme4::mkLmerDevfun, lf)
  comps <- jsonlite::fromJSON(components_json, simplifyVector = FALSE)
  sigma <- NULL
  for (c in comps) if (identical(c$group, "Residual")) sigma <- c$estimate
  if (is.null(sigma)) stop("no residual SD among the components")
  theta <- parity_theta(lf$reTrms$cnms, comps, sigma)
  crit <- devfun(theta)
  beta <- environment(devfun)$pp$beta(1)
  fixed <- stats::setNames(as.list(unname(beta)), colnames(lf$X))
  as.character(jsonlite::toJSON(list(criterion = crit, reml = reml, theta = theta, fixed = fixed),
                                auto_unbox = TRUE, digits = NA))
}

parity_main <- function(args) {
  if (length(args) < 2) {
    cat("usage: Rscript lme4_fit.R data.csv \"formula\" [cat1,cat2,...] [REML|ML] [family] [trials]\n", file = stderr())
    quit(status = 2)
  }
  cats <- if (length(args) >= 3 && nzchar(args[[3]])) strsplit(args[[3]], ",")[[1]] else character(0)
  expr <- str2lang(args[[2]])
  header <- names(utils::read.csv(args[[1]], nrows = 1, check.names = FALSE))
  parity_check_formula(expr, header)  # before anything reads the formula
  bar_groups <- unique(unlist(lapply(lme4::findbars(stats::formula(expr)),
                                     function(b) all.vars(b[[3]]))))
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
  bars <- lme4::findbars(stats::formula(expr))
  groups <- unique(unlist(lapply(bars, function(b) all.vars(b[[3]]))))
  factors <- intersect(vars[-1], union(union(cats, groups), names(data)[!vapply(data, is.numeric, TRUE)]))
  levels <- lapply(factors, function(v) parity_levels(complete[[v]]))
  names(levels) <- factors
  criterion <- if (length(args) >= 4) toupper(args[[4]]) else "REML"
  if (!(criterion %in% c("REML", "ML"))) stop("the fourth argument must be REML or ML")
  family <- if (length(args) >= 5) args[[5]] else "gaussian"
  trials <- if (length(args) >= 6 && nzchar(args[[6]])) args[[6]] else NULL
  cat(parity_fit(data, args[[2]], levels, reml = criterion == "REML", family = family,
                 trials = trials), "\n")
}

if (sys.nframe() == 0L) {
  parity_main(commandArgs(trailingOnly = TRUE))
}
