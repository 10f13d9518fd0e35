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
# a seventh a column of prior weights (lmer's and glmer's `weights`).
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

parity_fit <- function(data, formula_text, levels = list(), reml = TRUE, level = 0.94,
                       family = "gaussian", trials = NULL, nagq = 1L, weights = NULL) {
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
  z <- if (mixed || glmm) stats::qnorm(1 - (1 - level) / 2) else stats::qt(1 - (1 - level) / 2, fit$df.residual)
  est <- if (mixed) lme4::fixef(fit) else stats::coef(fit)
  V <- as.matrix(stats::vcov(fit))
  fixed <- parity_fixed(est, sqrt(diag(V)), z)
  if (mixed) {
    vc <- as.data.frame(lme4::VarCorr(fit))
    components <- lapply(seq_len(nrow(vc)), function(i) {
      residual <- vc$grp[i] == "Residual"
      parity_component(vc$grp[i], if (residual) NULL else vc$var1[i],
                       if (is.na(vc$var2[i])) NULL else vc$var2[i], vc$sdcor[i])
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
    packages = c("lme4", "Matrix")
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
