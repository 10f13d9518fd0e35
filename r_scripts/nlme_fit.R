#!/usr/bin/env Rscript
# parity's nlme engine: lme4's Gaussian model fitted by nlme::lme (REML or ML), a third
# frequentist opinion from the package lme4 grew out of, and returned in parity's JSON
# record under lme4's names. A model without grouping terms is fitted by nlme::gls.
#
# Sourced by the Python bridge after parity.R, or run on its own, where it sources
# parity.R from its own folder:
#
#   Rscript r_scripts/nlme_fit.R data.csv "Reaction ~ Days + (Days | Subject)" Subject [REML|ML]
#
# lme4's grouping terms become lme's `random` list, outermost factor first: `(x | g)` is
# pdSymm(~ x) for g, `(x || g)` pdDiag(~ x), and lme4's `(1 | a) + (1 | a:b)` (parity's
# rendering of `(1 | a/b)`) nests b within a. Crossed factors and the binomial and Poisson
# families are refused before R runs (the registry's row). nlme reports no conditional
# SDs of the group effects, so the modes and their SDs are computed here, at the
# estimates, as lme4's ranef(condVar = TRUE) computes them.

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
suppressPackageStartupMessages(library(nlme))

# The top-level terms of a formula's right-hand side.
parity_nlme_terms <- function(expr) {
  if (is.call(expr) && identical(expr[[1]], as.symbol("+")) && length(expr) == 3) {
    return(c(parity_nlme_terms(expr[[2]]), list(expr[[3]])))
  }
  list(expr)
}

parity_nlme_is_bar <- function(t) {
  is.call(t) && identical(t[[1]], as.symbol("(")) && is.call(t[[2]]) &&
    as.character(t[[2]][[1]]) %in% c("|", "||")
}

# The fixed formula and the grouping blocks (terms, grouping columns, correlated), the
# blocks outermost first; an error for blocks that are not one chain of nested factors.
parity_nlme_parts <- function(f) {
  terms <- parity_nlme_terms(f[[3]])
  bars <- Filter(parity_nlme_is_bar, terms)
  fixed <- Filter(Negate(parity_nlme_is_bar), terms)
  rhs <- if (length(fixed)) Reduce(function(a, b) call("+", a, b), fixed) else 1
  fixed_f <- stats::formula(call("~", f[[2]], rhs))
  environment(fixed_f) <- baseenv()
  blocks <- lapply(bars, function(t) {
    bar <- t[[2]]
    re <- stats::formula(call("~", bar[[2]]))
    environment(re) <- baseenv()
    list(formula = re, group = all.vars(bar[[3]]), correlated = identical(bar[[1]], as.symbol("|")))
  })
  blocks <- blocks[order(vapply(blocks, function(b) length(b$group), 1L))]
  for (k in seq_along(blocks)[-1]) {
    outer <- blocks[[k - 1]]$group
    inner <- blocks[[k]]$group
    if (length(inner) != length(outer) + 1 || !identical(inner[seq_along(outer)], outer)) {
      stop("nlme fits one grouping factor, or factors nested in one another, one block each")
    }
  }
  list(fixed = fixed_f, blocks = blocks)
}

# Each block's columns: its terms per level of its grouping factor (levels as
# "a:b", in sorted order), as lme4 lays out Z.
parity_nlme_z <- function(block, data) {
  X <- stats::model.matrix(block$formula, data)
  g <- do.call(paste, c(lapply(block$group, function(v) as.character(data[[v]])), sep = ":"))
  levels <- sort(unique(g))
  Z <- do.call(cbind, lapply(levels, function(l) X * (g == l)))
  list(Z = Z, levels = levels, terms = colnames(X))
}

# A symmetric square root R of a covariance (R R' = S), defined on the boundary too.
parity_nlme_root <- function(S) {
  e <- eigen(S, symmetric = TRUE)
  e$vectors %*% diag(sqrt(pmax(e$values, 0)), nrow(S)) %*% t(e$vectors)
}

parity_nlme_fit <- function(data, formula_text, levels = list(), reml = TRUE, level = 0.95,
                            family = "gaussian", trials = NULL, nagq = 1L) {
  if (family != "gaussian") stop("nlme fits Gaussian models only")
  prepared <- parity_prepare(data, formula_text, levels, trials)
  parts <- parity_nlme_parts(prepared$formula)
  data <- prepared$data
  method <- if (reml) "REML" else "ML"
  blocks <- parts$blocks
  mixed <- length(blocks) > 0
  caught <- parity_quietly(if (mixed) {
    random <- lapply(blocks, function(b) {
      if (b$correlated) nlme::pdSymm(b$formula) else nlme::pdDiag(b$formula)
    })
    names(random) <- vapply(blocks, function(b) b$group[length(b$group)], "")
    nlme::lme(parts$fixed, data = data, random = random, method = method)
  } else {
    nlme::gls(parts$fixed, data = data, method = method)
  })
  fit <- caught$value
  sigma <- fit$sigma
  est <- if (mixed) nlme::fixef(fit) else stats::coef(fit)
  V <- as.matrix(stats::vcov(fit))
  se <- stats::setNames(sqrt(diag(V)), names(est))
  # nlme's own t-tests (summary()'s tTable): lme's df by its between/within
  # ("containment") rule, gls's the residual df n - p; and its Wald-t intervals
  # (intervals()).
  tt <- summary(fit)$tTable
  df <- if (mixed) parity_column(tt, "DF") else fit$dims$N - fit$dims$p
  ci <- tryCatch(
    if (mixed) nlme::intervals(fit, level = level, which = "fixed")$fixed
    else nlme::intervals(fit, level = level, which = "coef")$coef,
    error = function(e) e)
  interval_method <- "Wald-t"
  if (inherits(ci, "error")) {
    caught$warnings <- c(caught$warnings, sprintf(
      "no nlme intervals (%s): Wald-t computed by parity", conditionMessage(ci)))
    q <- stats::qt(1 - (1 - level) / 2, df)
    ci <- cbind(lower = est - q * se, est. = est, upper = est + q * se)
    interval_method <- "Wald-t (parity)"
  }
  fixed <- parity_fixed_rows(
    est, se, statistic = parity_column(tt, "t-value"), statistic_kind = "t", df = df,
    df_method = if (mixed) "containment" else "residual",
    p_value = parity_column(tt, "p-value"),
    lower = stats::setNames(ci[, "lower"], rownames(ci)),
    upper = stats::setNames(ci[, "upper"], rownames(ci)), interval_method = interval_method)
  components <- list()
  group_effects <- list()
  if (mixed) {
    # reStruct holds the blocks innermost first; each matrix is relative to sigma^2.
    relative <- nlme::pdMatrix(fit$modelStruct$reStruct)
    layout <- lapply(blocks, parity_nlme_z, data = data)
    roots <- list()
    for (k in seq_along(blocks)) {
      b <- blocks[[k]]
      label <- paste(b$group, collapse = ":")
      S <- as.matrix(relative[[b$group[length(b$group)]]])
      terms <- layout[[k]]$terms
      sds <- sigma * sqrt(diag(S))
      for (a in seq_along(terms)) components[[length(components) + 1]] <- parity_component(
        label, terms[a], NULL, unname(sds[a]))
      if (b$correlated && length(terms) > 1) {
        R <- stats::cov2cor(S)
        for (a in seq_along(terms)) for (c in seq_along(terms)) if (a < c) {
          components[[length(components) + 1]] <- parity_component(
            label, terms[a], terms[c], unname(R[a, c]))
        }
      }
      roots[[k]] <- kronecker(diag(length(layout[[k]]$levels)), parity_nlme_root(S))
    }
    # The conditional modes of the group effects and their conditional SDs at the
    # estimates: b = R u with u | y ~ N((R'Z'ZR + I)^-1 R'Z'r, sigma^2 (R'Z'ZR + I)^-1),
    # r the residuals from the fixed part alone.
    Z <- do.call(cbind, lapply(layout, function(l) l$Z))
    R <- matrix(0, sum(vapply(roots, nrow, 1L)), sum(vapply(roots, ncol, 1L)))
    at <- 0
    for (root in roots) {
      R[at + seq_len(nrow(root)), at + seq_len(ncol(root))] <- root
      at <- at + nrow(root)
    }
    r <- as.numeric(nlme::getResponse(fit)) - as.numeric(stats::fitted(fit, level = 0))
    ZR <- Z %*% R
    inner <- solve(crossprod(ZR) + diag(ncol(ZR)))
    modes <- as.numeric(R %*% inner %*% crossprod(ZR, r))
    sds <- sqrt(pmax(diag(R %*% inner %*% t(R)), 0)) * sigma
    i <- 0
    for (k in seq_along(blocks)) {
      label <- paste(blocks[[k]]$group, collapse = ":")
      for (l in layout[[k]]$levels) for (t in layout[[k]]$terms) {
        i <- i + 1
        group_effects[[i]] <- list(group = label, level = l, term = t, estimate = modes[i],
                                   std_error = sds[i])
      }
    }
  }
  components[[length(components) + 1]] <- parity_component("Residual", NULL, NULL, sigma)
  # logLik under the criterion fitted; AIC and BIC as lme4 counts them (nlme's BIC for a
  # REML fit uses n - p observations, lme4's n).
  ll <- stats::logLik(fit)
  df <- as.numeric(attr(ll, "df"))
  loglik <- as.numeric(ll)
  stats_list <- parity_statistics(loglik, -2 * loglik + 2 * df,
                                  -2 * loglik + log(nrow(data)) * df, df)
  if (reml) stats_list$reml_criterion <- -2 * loglik
  described <- paste(deparse(parts$fixed, width.cutoff = 500L), collapse = " ")
  if (mixed) {
    described <- paste0(described, ", random = ", paste(vapply(blocks, function(b) {
      paste0(b$group[length(b$group)], " = ",
             if (b$correlated) "pdSymm(" else "pdDiag(",
             paste(deparse(b$formula, width.cutoff = 500L), collapse = " "), ")")
    }, ""), collapse = ", "))
  }
  parity_record(
    engine = "nlme",
    formula = described,
    method = sprintf("%s %s", if (mixed) "lme" else "gls", method),
    family = family,
    n_obs = nrow(data),
    n_dropped = prepared$n_dropped,
    fixed = fixed,
    components = components,
    converged = TRUE,  # lme() and gls() stop with an error where they do not converge
    singular = FALSE,
    warnings = unique(caught$warnings),
    fit_statistics = stats_list,
    criterion = parity_criterion(mixed, FALSE, reml, ols = FALSE),
    group_effects = group_effects,
    vcov = V,
    packages = c("nlme"),
    interval = level
  )
}

if (sys.nframe() == 0L) {
  parity_main(commandArgs(trailingOnly = TRUE), parity_nlme_fit, "nlme_fit.R")
}
