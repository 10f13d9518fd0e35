# Profile-likelihood intervals of lme4's SDs and correlations (confint(method =
# "profile")), for `parity study`, whose coverage of the true SDs needs an interval from
# every engine that has one. Sourced after parity.R and lme4_fit.R; parity_prepare()
# checks the formula and codes the rows as for the fit itself.
#
# The rows of confint()'s theta part (.sig01, .sig02, …, .sigma) are in the order of
# as.data.frame(VarCorr(fit), order = "lower.tri"), whose rows name them.

parity_sd_profile <- function(data, formula_text, levels = list(), reml = TRUE,
                              level = 0.95, family = "gaussian", trials = NULL,
                              nagq = 1L, weights = NULL) {
  prepared <- parity_prepare(data, formula_text, levels, trials, weights)
  caught <- parity_quietly(
    if (family == "gaussian") {
      parity_weighted_call(lme4::lmer, prepared$formula, prepared$data, weights, REML = reml)
    } else {
      parity_weighted_call(lme4::glmer, prepared$formula, prepared$data, weights,
                           family = parity_family(family), nAGQ = as.integer(nagq))
    })
  fit <- caught$value
  vc <- as.data.frame(lme4::VarCorr(fit), order = "lower.tri")
  intervals <- tryCatch(
    suppressWarnings(stats::confint(fit, parm = "theta_", method = "profile",
                                    level = level, oldNames = TRUE, quiet = TRUE)),
    error = function(e) e)
  if (inherits(intervals, "error")) {
    return(jsonlite::toJSON(list(error = conditionMessage(intervals)), auto_unbox = TRUE))
  }
  rows <- lapply(seq_len(nrow(vc)), function(i) list(
    group = vc$grp[[i]],
    term = if (is.na(vc$var1[[i]])) NULL else vc$var1[[i]],
    term2 = if (is.na(vc$var2[[i]])) NULL else vc$var2[[i]],
    kind = if (is.na(vc$var2[[i]])) "sd" else "corr",
    lower = intervals[i, 1], upper = intervals[i, 2]))
  jsonlite::toJSON(list(rows = rows, warnings = caught$warnings), auto_unbox = TRUE,
                   digits = NA, null = "null", na = "null")
}
