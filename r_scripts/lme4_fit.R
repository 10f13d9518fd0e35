#!/usr/bin/env Rscript
# parity's lme4 engine: the fit (lmer, glmer, lm, glm) and lme4's own criterion at another
# engine's solution, which judges the optima of every frequentist engine.
#
# Sourced by the Python bridge after parity.R (the shared library: formula check,
# levels, data preparation, the JSON record), or run on its own, where it sources
# parity.R from its own folder, so that an analyst can reproduce any lme4 row of a
# parity report in R alone:
#
#   Rscript r_scripts/lme4_fit.R data.csv "frequency ~ gender + attitude + (1 | subject)" subject,gender,attitude
#
# A fourth argument ML fits by maximum likelihood (`parity run --ml`); REML is the default.
# A fifth names the family (gaussian, binomial, poisson), a sixth a binomial trials column,
# a seventh a column of prior weights (lmer's and glmer's `weights`). Settings follow as
# name=value anywhere after the formula: level=0.95 (the intervals' level, 0.95 as
# parity's default), nagq=1, ddf=satterthwaite|kenward-roger (lmerTest's df for lmer's
# t-tests; Kenward-Roger through pbkrtest; none: Wald-z tests without df) and profile=TRUE (profile-likelihood intervals
# in place of Wald ones); without them the defaults, Satterthwaite and Wald, are used.
# Both paths go through parity_fit() and print or return the same JSON.

if (!exists("parity_main", mode = "function")) {
  local({
    here <- NULL
    for (i in rev(seq_len(sys.nframe()))) if (!is.null(sys.frame(i)$ofile)) {
      here <- sys.frame(i)$ofile
      break
    }
    if (is.null(here)) here <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))[1]
    source(file.path(dirname(normalizePath(here)), "parity.R"))
  })
}
suppressPackageStartupMessages(library(lme4))

# lmerTest's name of a ddf setting.
parity_ddf_method <- function(ddf) {
  switch(ddf, satterthwaite = "Satterthwaite", "kenward-roger" = "Kenward-Roger",
         stop("ddf must be satterthwaite, kenward-roger or none, not ", ddf))
}

# lmer's t-tests as lmerTest reports them: its summary()'s t value, df and Pr(>|t|) under
# `ddf`, and each coefficient's Wald-t interval at `level` from contest1D(). With
# Kenward-Roger, pbkrtest's adjusted covariance gives the t value and interval (the fit's
# SE stays lme4's own vcov()). lmerTest re-evaluates the fit's call, lmer(formula, data =
# data, REML = ...), in its caller's frame: the call gets REML as a value, and `data`,
# the rows fitted, is bound there.
parity_lmer_tests <- function(fit, ddf, level, data, reml) {
  method <- parity_ddf_method(ddf)
  call <- fit@call
  call$REML <- reml
  fit@call <- call
  frame <- new.env(parent = baseenv())
  frame$data <- data
  frame$fit <- fit
  m <- eval(quote(lmerTest::as_lmerModLmerTest(fit)), frame)
  co <- summary(m, ddf = method)$coefficients
  p <- nrow(co)
  ci <- vapply(seq_len(p), function(i) {
    L <- numeric(p)
    L[i] <- 1
    r <- lmerTest::contest1D(m, L, ddf = method, confint = TRUE, level = level)
    c(r$lower, r$upper)
  }, numeric(2))
  list(statistic = parity_column(co, "t value"), df = parity_column(co, "df"),
       p = parity_column(co, "Pr(>|t|)"),
       lower = stats::setNames(ci[1, ], rownames(co)),
       upper = stats::setNames(ci[2, ], rownames(co)), df_method = method)
}

# The fixed-effect rows of a fit: its test and its interval as its own library reports
# them (lmer: lmerTest; glmer, glm: the z-test of summary(); lm: the t-test on the
# residual df), and the warnings met on the way.
parity_lme4_fixed <- function(fit, est, se, mixed, glmm, ddf, level, data, reml) {
  warnings <- character(0)
  z <- stats::qnorm(1 - (1 - level) / 2)
  if (mixed && !glmm && ddf == "none") {
    # Asked for: no df. lmerTest's derivatives of the deviance take as long as the fit
    # itself on InstEval-sized data, whose df are in the hundreds or more, where the t
    # and the normal distribution agree to the third digit.
    zs <- est / se
    return(list(rows = parity_fixed_rows(
      est, se, statistic = zs, statistic_kind = "z", p_value = 2 * stats::pnorm(-abs(zs)),
      lower = est - z * se, upper = est + z * se, interval_method = "Wald-z"),
      warnings = warnings))
  }
  if (mixed && !glmm) {
    tests <- tryCatch(parity_quietly(parity_lmer_tests(fit, ddf, level, data, reml)),
                      error = function(e) e)
    if (!inherits(tests, "error")) {
      t <- tests$value
      bad <- !all(is.finite(c(t$df, t$p, t$lower, t$upper)))
      if (!bad) {
        warnings <- c(warnings, if (length(tests$warnings))
          paste("lmerTest:", tests$warnings))
        return(list(rows = parity_fixed_rows(
          est, se, statistic = t$statistic, statistic_kind = "t", df = t$df,
          df_method = t$df_method, p_value = t$p, lower = t$lower, upper = t$upper,
          interval_method = "Wald-t"), warnings = warnings))
      }
      why <- "its df or p-values are not finite"
    } else {
      why <- conditionMessage(tests)
    }
    warnings <- c(warnings, sprintf(paste(
      "no lmerTest %s df (%s): t = estimate / SE without df or p-value, and a Wald-z",
      "interval"), parity_ddf_method(ddf), why))
    return(list(rows = parity_fixed_rows(
      est, se, statistic = est / se, statistic_kind = "t", lower = est - z * se,
      upper = est + z * se, interval_method = "Wald-z"), warnings = warnings))
  }
  co <- summary(fit)$coefficients
  if (glmm) {
    ci <- if (mixed) stats::confint(fit, parm = "beta_", method = "Wald", level = level)
      else stats::confint.default(fit, level = level)
    rows <- parity_fixed_rows(
      est, se, statistic = parity_column(co, "z value"), statistic_kind = "z",
      p_value = parity_column(co, "Pr(>|z|)"),
      lower = stats::setNames(ci[, 1], rownames(ci)),
      upper = stats::setNames(ci[, 2], rownames(ci)), interval_method = "Wald-z")
  } else {
    ci <- stats::confint(fit, level = level)
    rows <- parity_fixed_rows(
      est, se, statistic = parity_column(co, "t value"), statistic_kind = "t",
      df = fit$df.residual, df_method = "residual", p_value = parity_column(co, "Pr(>|t|)"),
      lower = stats::setNames(ci[, 1], rownames(ci)),
      upper = stats::setNames(ci[, 2], rownames(ci)), interval_method = "Wald-t")
  }
  list(rows = rows, warnings = warnings)
}

# Profile-likelihood intervals at `level` (confint(method = "profile")) of a mixed model:
# `fixed` (term -> c(lower, upper)) and `theta`, one row per row of
# as.data.frame(VarCorr(fit), order = "lower.tri") (whose rows name confint()'s .sig01,
# .sig02, ..., .sigma); or an error.
parity_lme4_profile <- function(fit, level) {
  ci <- suppressWarnings(suppressMessages(
    stats::confint(fit, method = "profile", level = level, oldNames = TRUE, quiet = TRUE)))
  vc <- as.data.frame(lme4::VarCorr(fit), order = "lower.tri")
  if (nrow(ci) < nrow(vc)) stop("the profile has fewer rows than VarCorr()")
  list(fixed = ci[-seq_len(nrow(vc)), , drop = FALSE], vc = vc,
       theta = ci[seq_len(nrow(vc)), , drop = FALSE])
}

parity_fit <- function(data, formula_text, levels = list(), reml = TRUE, level = 0.95,
                       family = "gaussian", trials = NULL, nagq = 1L, weights = NULL,
                       ddf = "satterthwaite", profile = FALSE) {
  prepared <- parity_prepare(data, formula_text, levels, trials, weights)
  f <- prepared$formula
  data <- prepared$data
  mixed <- !is.null(lme4::findbars(f))
  glmm <- family != "gaussian"
  fam <- parity_family(family)
  caught <- parity_quietly(
    if (mixed && glmm) parity_weighted_call(lme4::glmer, f, data, weights, family = fam,
                                            nAGQ = as.integer(nagq))
    else if (mixed) parity_weighted_call(lme4::lmer, f, data, weights, REML = reml)
    else if (glmm) parity_weighted_call(stats::glm, f, data, weights, family = fam)
    else parity_weighted_call(stats::lm, f, data, weights)
  )
  fit <- caught$value
  warnings <- caught$warnings
  est <- if (mixed) lme4::fixef(fit) else stats::coef(fit)
  V <- as.matrix(stats::vcov(fit))
  se <- stats::setNames(sqrt(diag(V)), colnames(V))
  published <- parity_lme4_fixed(fit, est, se, mixed, glmm, ddf, level, data, reml)
  fixed <- published$rows
  warnings <- c(warnings, published$warnings)
  profiled <- NULL
  if (profile && mixed) {
    profiled <- tryCatch(parity_lme4_profile(fit, level), error = function(e) e)
    if (inherits(profiled, "error")) {
      warnings <- c(warnings, paste("no profile intervals:", conditionMessage(profiled)))
      profiled <- NULL
    } else {
      for (i in seq_along(fixed)) {
        term <- fixed[[i]]$term
        bounds <- if (term %in% rownames(profiled$fixed)) profiled$fixed[term, ] else c(NA, NA)
        if (all(is.finite(bounds))) {
          fixed[[i]]$lower <- unname(bounds[1])
          fixed[[i]]$upper <- unname(bounds[2])
          fixed[[i]]$interval_method <- "profile"
        } else {
          warnings <- c(warnings, sprintf(
            "no profile interval of %s: the profile did not reach both bounds", term))
        }
      }
    }
  }
  if (mixed) {
    vc <- as.data.frame(lme4::VarCorr(fit))
    components <- lapply(seq_len(nrow(vc)), function(i) {
      residual <- vc$grp[i] == "Residual"
      bounds <- NULL
      if (!is.null(profiled)) {
        p <- profiled$vc
        same <- which(p$grp == vc$grp[i] & (p$var1 %in% vc$var1[i]) & (p$var2 %in% vc$var2[i]))
        if (length(same) == 1) bounds <- profiled$theta[same, ]
      }
      parity_component(vc$grp[i], if (residual) NULL else vc$var1[i],
                       if (is.na(vc$var2[i])) NULL else vc$var2[i], vc$sdcor[i],
                       lower = if (is.null(bounds)) NULL else unname(bounds[1]),
                       upper = if (is.null(bounds)) NULL else unname(bounds[2]),
                       interval_method = if (is.null(bounds)) NULL else "profile")
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
    components <- if (glmm) list() else list(parity_component("Residual", NULL, NULL,
                                                                stats::sigma(fit)))
    singular <- FALSE
    converged <- if (glmm) isTRUE(fit$converged) else TRUE
    group_effects <- list()
  }
  # logLik, AIC and BIC under the criterion fitted (REML or ML; lm's log-likelihood is at
  # the ML variance), and deviance as -2 logLik under that criterion.
  ll <- stats::logLik(fit)
  stats_list <- parity_statistics(as.numeric(ll), stats::AIC(fit), stats::BIC(fit),
                                  as.numeric(attr(ll, "df")))
  if (mixed && reml && !glmm) stats_list$reml_criterion <- unname(lme4::REMLcrit(fit))
  parity_record(
    engine = "lme4",
    formula = formula_text,
    method = if (mixed && glmm) sprintf("glmer %s, nAGQ = %d", family, as.integer(nagq))
      else if (glmm) sprintf("glm %s", family)
      else if (mixed) (if (reml) "lmer REML" else "lmer ML") else "lm",
    family = family,
    n_obs = nrow(data),
    n_dropped = prepared$n_dropped,
    fixed = fixed,
    components = components,
    converged = converged,
    singular = singular,
    warnings = warnings,
    fit_statistics = stats_list,
    criterion = parity_criterion(mixed, glmm, reml, nagq),
    group_effects = group_effects,
    vcov = V,
    packages = c("lme4", "Matrix", "lmerTest", "pbkrtest"),
    interval = level,
    settings = list(ddf = ddf, profile = isTRUE(profile))
  )
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
                            family, trials = NULL, weights = NULL) {
  prepared <- parity_prepare(data, formula_text, levels, trials, weights)
  devfun <- suppressWarnings(suppressMessages(
    parity_weighted_call(lme4::glmer, prepared$formula, prepared$data, weights,
                         family = parity_family(family), nAGQ = 1L, devFunOnly = TRUE)))
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

parity_reml_at <- function(data, formula_text, levels, components_json, reml = TRUE,
                           weights = NULL) {
  prepared <- parity_prepare(data, formula_text, levels, weights = weights)
  lf <- parity_weighted_call(lme4::lFormula, prepared$formula, prepared$data, weights,
                             REML = reml)
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

if (sys.nframe() == 0L) {
  parity_main(commandArgs(trailingOnly = TRUE), parity_fit, "lme4_fit.R")
}
