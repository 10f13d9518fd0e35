#!/usr/bin/env Rscript
# parity's glmmTMB engine: the same model as lme4_fit.R, fitted by glmmTMB (TMB's Laplace
# approximation and nlminb), and returned in the same JSON record under lme4's names.
#
# Sourced by the Python bridge after parity.R, or run on its own, where it sources
# parity.R from its own folder:
#
#   Rscript r_scripts/glmmtmb_fit.R data.csv "Reaction ~ Days + (Days | Subject)" Subject [REML|ML]
#
# The formula is checked by parity_check_formula() before R reads it as a formula; lme4's
# `(x || g)` is built as glmmTMB's `diag(x | g)` from the checked parse tree, not from text.

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
suppressPackageStartupMessages(library(glmmTMB))

# lme4's `||` block as glmmTMB's diagonal covariance: every `(x || g)` becomes `diag(x | g)`.
parity_tmb_expr <- function(expr) {
  if (!is.call(expr)) return(expr)
  if (identical(expr[[1]], as.symbol("||"))) {
    return(call("diag", call("|", parity_tmb_expr(expr[[2]]), parity_tmb_expr(expr[[3]]))))
  }
  for (i in seq_along(expr)[-1]) expr[[i]] <- parity_tmb_expr(expr[[i]])
  expr
}

parity_glmmtmb_fit <- function(data, formula_text, levels = list(), reml = TRUE,
                               level = 0.95, family = "gaussian", trials = NULL, nagq = 1L,
                               weights = NULL) {
  prepared <- parity_prepare(data, formula_text, levels, trials, weights)
  f <- prepared$formula
  tmb_formula <- stats::formula(parity_tmb_expr(f))
  environment(tmb_formula) <- environment(f)
  data <- prepared$data
  glmm <- family != "gaussian"
  reml <- reml && !glmm  # a GLMM is fitted by Laplace ML, as lme4's glmer fits it
  caught <- parity_quietly(
    parity_weighted_call(glmmTMB::glmmTMB, tmb_formula, data, weights, REML = reml,
                         family = parity_family(family))
  )
  fit <- caught$value
  warnings <- caught$warnings
  est <- glmmTMB::fixef(fit)$cond
  V <- as.matrix(stats::vcov(fit)$cond)
  se <- stats::setNames(sqrt(diag(V)), names(est))
  # glmmTMB's own z-tests (summary()) and Wald intervals (confint(method = "wald")) of
  # the conditional model's coefficients.
  co <- summary(fit)$coefficients$cond
  ci <- tryCatch(stats::confint(fit, parm = "beta_", method = "wald", level = level),
                 error = function(e) e)
  if (inherits(ci, "error")) {
    warnings <- c(warnings, paste("no glmmTMB Wald intervals:", conditionMessage(ci)))
    ci <- matrix(NA_real_, length(est), 2, dimnames = list(names(est), NULL))
  }
  rownames(ci) <- sub("^cond\\.", "", rownames(ci))
  fixed <- parity_fixed_rows(
    est, se, statistic = parity_column(co, "z value"), statistic_kind = "z",
    p_value = parity_column(co, "Pr(>|z|)"), lower = stats::setNames(ci[, 1], rownames(ci)),
    upper = stats::setNames(ci[, 2], rownames(ci)), interval_method = "Wald-z")
  components <- list()
  group_effects <- list()
  mixed <- length(parity_bars(f)) > 0
  if (mixed) {
    vc <- glmmTMB::VarCorr(fit)$cond
    # blockCode 0 is a diagonal (independent) block, 1 unstructured (correlated).
    codes <- vapply(fit$modelInfo$reStruc$condReStruc, function(b) as.integer(b$blockCode), 1L)
    for (i in seq_along(vc)) {
      block <- vc[[i]]
      group <- names(vc)[i]
      sds <- attr(block, "stddev")
      for (k in seq_along(sds)) components[[length(components) + 1]] <- parity_component(
        group, names(sds)[k], NULL, unname(sds[k]))
      corr <- attr(block, "correlation")
      if (codes[i] != 0L && length(sds) > 1) {
        for (a in seq_along(sds)) for (b in seq_along(sds)) if (a < b) {
          components[[length(components) + 1]] <- parity_component(
            group, names(sds)[a], names(sds)[b], unname(corr[a, b]))
        }
      }
    }
    re <- as.data.frame(glmmTMB::ranef(fit, condVar = TRUE))
    group_effects <- lapply(seq_len(nrow(re)), function(i) list(
      group = as.character(re$grpvar[i]), level = as.character(re$grp[i]),
      term = as.character(re$term[i]), estimate = re$condval[i], std_error = re$condsd[i]
    ))
  }
  if (!glmm) {  # a binomial or Poisson model has no residual SD
    components[[length(components) + 1]] <- parity_component("Residual", NULL, NULL,
                                                             stats::sigma(fit))
  }
  pd_hessian <- isTRUE(fit$sdr$pdHess)
  converged <- identical(as.integer(fit$fit$convergence), 0L) && pd_hessian
  if (!identical(as.integer(fit$fit$convergence), 0L)) {
    warnings <- c(warnings, paste("nlminb:", fit$fit$message))
  }
  # The maximised (RE)ML log-likelihood is minus nlminb's objective. glmmTMB's logLik()
  # is NA when the Hessian is not positive definite (as on a singular fit), although the
  # optimum's value is known; parity reports it, with the warning in the diagnostics.
  ll <- -as.numeric(fit$fit$objective)
  df <- as.numeric(attr(stats::logLik(fit), "df"))
  stats_list <- parity_statistics(ll, -2 * ll + 2 * df, -2 * ll + log(nrow(data)) * df, df)
  if (reml) stats_list$reml_criterion <- -2 * ll
  parity_record(
    engine = "glmmtmb",
    formula = paste(deparse(tmb_formula, width.cutoff = 500L), collapse = " "),
    method = if (glmm) sprintf("glmmTMB %s, Laplace", family)
      else if (reml) "glmmTMB REML" else "glmmTMB ML",
    family = family,
    n_obs = nrow(data),
    n_dropped = prepared$n_dropped,
    fixed = fixed,
    components = components,
    converged = converged,
    singular = FALSE,
    warnings = unique(warnings),
    fit_statistics = stats_list,
    # glmmTMB fits a model without grouping terms by (RE)ML too, never by least squares
    criterion = parity_criterion(mixed, glmm, reml, ols = FALSE),
    group_effects = group_effects,
    vcov = V,
    packages = c("glmmTMB", "TMB"),
    interval = level
  )
}

if (sys.nframe() == 0L) {
  parity_main(commandArgs(trailingOnly = TRUE), parity_glmmtmb_fit, "glmmtmb_fit.R")
}
