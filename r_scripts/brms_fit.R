#!/usr/bin/env Rscript
# parity's brms engine: the model in lme4's syntax, sampled by Stan (rstan's NUTS) through
# brms, a Bayesian implementation independent of the PyMC stack Bambi and the pymc engine
# share. brms reads lme4's syntax as it is: `(x | g)` is a correlated block with an LKJ
# prior on its correlations, `(x || g)` an independent one.
#
# Priors come from parity's priors document, translated by the Python side into one entry
# per coefficient and SD (its `priors` argument, as JSON); a class the document leaves out
# keeps brms's own default, which the record says. Every prior's numbers reach Stan as data
# (brms stanvars), so the compiled program depends on the model's structure and the
# priors' distributions only: it is compiled once and kept in `cache_dir`, keyed by its
# Stan code, rstan's version and the compiler flags, and checked against that code when it
# is read back.
#
# Sourced by the Python bridge after parity.R, which reads the draws this function returns
# (`draws`: one column a parameter, chain after chain) and computes every summary and
# diagnostic as it does for the other samplers. Run on its own it prints the record with
# each parameter's posterior mean:
#
#   Rscript r_scripts/brms_fit.R data.csv "Reaction ~ Days + (Days | Subject)" Subject
#
# Debian's r-cran-bh is empty: rstan is pointed at Boost's headers (libboost-dev) where it
# finds none of its own (parity_stan_boost()).

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
suppressPackageStartupMessages({
  library(brms)
  library(rstan)
})

# Where rstan finds Boost: its BH package's include folder, else the first of
# $PARITY_BOOST_INCLUDE, /usr/include and /usr/local/include that holds boost/version.hpp.
parity_stan_boost <- function() {
  own <- rstan::rstan_options("boost_lib")
  if (length(own) == 1 && file.exists(file.path(own, "boost", "version.hpp"))) return(own)
  for (dir in c(Sys.getenv("PARITY_BOOST_INCLUDE"), "/usr/include", "/usr/local/include")) {
    if (nzchar(dir) && file.exists(file.path(dir, "boost", "version.hpp"))) {
      rstan::rstan_options(boost_lib = dir)
      return(dir)
    }
  }
  stop("Boost's C++ headers were not found, and rstan needs them to compile a model ",
       "(Debian's r-cran-bh holds none): install libboost-dev (`make r-deps`) or set ",
       "PARITY_BOOST_INCLUDE to the folder that holds boost/")
}

# The compiler flags a model is built with: the analyst's own (R_MAKEVARS_USER or
# ~/.R/Makevars) where there are any, else parity's (stan_makevars beside this script:
# -O1 without debugging symbols, which halves the compile and samples as fast as -O2 on
# these models).
parity_stan_makevars <- function() {
  user <- Sys.getenv("R_MAKEVARS_USER")
  if (nzchar(user)) return(user)
  home <- file.path(Sys.getenv("HOME"), ".R", "Makevars")
  if (file.exists(home)) return(home)
  own <- Sys.getenv("PARITY_STAN_MAKEVARS")
  if (nzchar(own) && file.exists(own)) return(own)
  ""
}

# The programs this R session compiled or read, by key.
if (!exists("parity_stan_models", inherits = FALSE)) parity_stan_models <- new.env()

# The compiled program of `code`, from `cache_dir` when it holds one for the same code,
# rstan and flags, else compiled and stored there. list(model, cached, seconds, key).
parity_stan_model <- function(code, cache_dir) {
  parity_stan_boost()
  makevars <- parity_stan_makevars()
  flags <- if (nzchar(makevars)) paste(readLines(makevars, warn = FALSE), collapse = "\n") else ""
  text <- paste(code, as.character(utils::packageVersion("rstan")),
                as.character(utils::packageVersion("StanHeaders")), R.version.string,
                flags, sep = "\n--\n")
  tmp <- tempfile()
  writeLines(text, tmp)
  key <- unname(tools::md5sum(tmp))
  unlink(tmp)
  # A program this R session already holds is used as it is: reading its file again
  # would load a second copy of the same shared library, which rstan cannot.
  held <- parity_stan_models[[key]]
  if (!is.null(held)) return(list(model = held, cached = TRUE, seconds = 0, key = key))
  path <- if (is.null(cache_dir)) NULL else file.path(cache_dir, paste0("brms-", key, ".rds"))
  if (!is.null(path) && file.exists(path)) {
    model <- tryCatch(readRDS(path), error = function(e) NULL)
    # Read back only what was written for this very program.
    if (inherits(model, "stanmodel") &&
        identical(as.vector(rstan::get_stancode(model)), as.vector(code))) {
      parity_stan_models[[key]] <- model
      return(list(model = model, cached = TRUE, seconds = 0, key = key))
    }
  }
  old <- Sys.getenv("R_MAKEVARS_USER", unset = NA)
  if (nzchar(makevars)) Sys.setenv(R_MAKEVARS_USER = makevars)
  on.exit(if (is.na(old)) Sys.unsetenv("R_MAKEVARS_USER") else Sys.setenv(R_MAKEVARS_USER = old))
  start <- proc.time()[["elapsed"]]
  utils::capture.output(model <- rstan::stan_model(model_code = code, save_dso = TRUE))
  seconds <- proc.time()[["elapsed"]] - start
  if (!is.null(path)) {
    dir.create(cache_dir, recursive = TRUE, showWarnings = FALSE)
    part <- tempfile(tmpdir = cache_dir, fileext = ".part")
    saveRDS(model, part)
    file.rename(part, path)  # whole or not at all, for a worker compiling beside it
  }
  parity_stan_models[[key]] <- model
  list(model = model, cached = FALSE, seconds = seconds, key = key)
}

# The fixed-effect part of a formula's right-hand side (lme4's nobars()).
parity_nobars <- function(expr) {
  if (is.call(expr)) {
    op <- as.character(expr[[1]])
    if (op %in% c("|", "||")) return(NULL)
    if (op == "(") return(parity_nobars(expr[[2]]))
    if (op == "+" && length(expr) == 3) {
      a <- parity_nobars(expr[[2]])
      b <- parity_nobars(expr[[3]])
      if (is.null(a)) return(b)
      if (is.null(b)) return(a)
      return(call("+", a, b))
    }
  }
  expr
}

# A Stan distribution statement for one of parity's priors, its numbers as data: `add`
# registers a number under a fresh name and returns the name.
parity_stan_prior <- function(p, add) {
  a <- p$args
  switch(p$dist,
    Normal = sprintf("normal(%s, %s)", add(a$mu), add(a$sigma)),
    StudentT = sprintf("student_t(%s, %s, %s)", add(a$nu), add(a$mu), add(a$sigma)),
    HalfNormal = sprintf("normal(0, %s)", add(a$sigma)),
    HalfStudentT = sprintf("student_t(%s, 0, %s)", add(a$nu), add(a$sigma)),
    Exponential = sprintf("exponential(%s)", add(a$lam)),
    stop("brms: no translation of the prior ", p$dist))
}

# parity's priors, as the Python side resolved the document for this model, as brms
# priors and stanvars: `intercept`, `residual` and `lkj_eta` (or null: brms's default);
# `fixed`, one {term, prior} per fixed column in model.matrix's order, and `sd`, one
# {group, term, prior} per group-level coefficient, both under lme4's names (a null prior
# keeps brms's default). `map` is parity_brms_terms()'s, `coefs` brms's fixed coefficients.
parity_brms_priors <- function(priors, map, coefs, defaults, brms_group) {
  doc <- if (is.null(priors) || !nzchar(priors)) list() else
    jsonlite::fromJSON(priors, simplifyVector = FALSE)
  values <- list()
  add <- function(x) {
    name <- sprintf("parity_p%d", length(values) + 1L)
    values[[name]] <<- as.numeric(x)
    name
  }
  out <- list()
  one <- function(text, ...) out[[length(out) + 1L]] <<- brms::set_prior(text, ...)
  if (!is.null(doc$intercept)) one(parity_stan_prior(doc$intercept, add), class = "Intercept")
  fixed <- doc$fixed
  if (length(fixed) && length(fixed) != length(coefs)) {
    stop(sprintf("%d fixed-effect priors for brms's %d coefficients", length(fixed), length(coefs)))
  }
  if (length(fixed)) {
    known <- vapply(fixed, function(p) !is.null(p$prior), TRUE)
    dists <- unique(vapply(fixed[known], function(p) p$prior$dist, ""))
    if (all(known) && identical(dists, "Normal")) {
      # One vectorised statement over brms's b, in model.matrix's order: its K - 1 means
      # and SDs are data of the program's own size.
      values$parity_b_mu <- vapply(fixed, function(p) as.numeric(p$prior$args$mu), 0)
      values$parity_b_sigma <- vapply(fixed, function(p) as.numeric(p$prior$args$sigma), 0)
      one("normal(parity_b_mu, parity_b_sigma)", class = "b")
    } else {
      for (i in which(known)) one(parity_stan_prior(fixed[[i]]$prior, add), class = "b",
                                  coef = coefs[i])
    }
  }
  for (s in doc$sd) {
    if (is.null(s$prior)) next
    lme4_names <- map[[s$group]]
    coef <- names(lme4_names)[match(s$term, lme4_names)]
    if (is.null(lme4_names) || is.na(coef)) {
      stop(sprintf("brms has no coefficient %s in ( | %s)", s$term, s$group))
    }
    one(parity_stan_prior(s$prior, add), class = "sd", group = brms_group[[s$group]],
        coef = coef)
  }
  if (!is.null(doc$residual)) one(parity_stan_prior(doc$residual, add), class = "sigma")
  if (!is.null(doc$lkj_eta)) one(sprintf("lkj(%s)", add(doc$lkj_eta)), class = "cor")
  # brms's own defaults of the classes the document leaves out, their numbers (computed
  # from the data) moved into data too, so that one program serves every data set of a
  # model's structure: `student_t(3, 0, 82.7)` becomes `student_t(p1, p2, p3)`.
  defaulted <- character(0)
  set_classes <- c(if (!is.null(doc$intercept)) "Intercept",
                   if (!is.null(doc$residual)) "sigma", if (!is.null(doc$lkj_eta)) "cor")
  for (i in seq_len(nrow(defaults))) {
    row <- defaults[i, ]
    if (row$coef != "" || row$group != "" || row$prior == "" || row$class %in% set_classes) next
    parts <- regmatches(row$prior, regexec("^([a-z_]+)\\((.*)\\)$", row$prior))[[1]]
    if (length(parts) != 3) next
    numbers <- suppressWarnings(as.numeric(trimws(strsplit(parts[3], ",")[[1]])))
    if (anyNA(numbers)) next
    one(sprintf("%s(%s)", parts[2], paste(vapply(numbers, add, ""), collapse = ", ")),
        class = row$class)
    defaulted <- c(defaulted, row$class, if (row$class == "cor") "L")
  }
  stanvars <- NULL
  for (name in names(values)) {
    vector <- name %in% c("parity_b_mu", "parity_b_sigma")
    # A vector as a one-dimensional array, so that one coefficient's is not a scalar.
    x <- if (vector) array(values[[name]], dim = length(values[[name]])) else values[[name]]
    sv <- brms::stanvar(x = x, name = name, block = "data",
                        scode = sprintf(if (vector) "vector[K - 1] %s;" else "real %s;", name))
    stanvars <- if (is.null(stanvars)) sv else stanvars + sv
  }
  prior <- if (length(out)) do.call(c, out) else NULL
  list(prior = prior, stanvars = stanvars, values = values, defaulted = defaulted)
}

# lme4's name of each of brms's coefficients, grouping factor by grouping factor (named
# as the analyst's data names it), in model.matrix's order within a factor's blocks:
# brms names them from the columns it was given and its own renaming. `brms_group` is
# each factor's name in brms's data.
parity_brms_terms <- function(f, data, ranef, brms_group) {
  out <- list()
  for (bar in parity_bars(f)) {
    group <- paste(deparse(bar[[3]]), collapse = "")
    lhs <- bar[[2]]
    names <- colnames(stats::model.matrix(stats::as.formula(call("~", lhs)), data))
    out[[group]] <- c(out[[group]], names)
  }
  map <- list()
  for (group in names(out)) {
    coefs <- as.character(ranef$coef[ranef$group == brms_group[[group]]])
    if (length(coefs) != length(out[[group]])) {
      stop(sprintf("brms has %d coefficients for %s, lme4's model %d", length(coefs), group,
                   length(out[[group]])))
    }
    map[[group]] <- stats::setNames(out[[group]], coefs)
  }
  map
}

# `expr` with every symbol named in `map` replaced by its value (a call's function, as
# offset, is kept).
parity_rename_symbols <- function(expr, map) {
  if (is.symbol(expr)) {
    name <- as.character(expr)
    return(if (name %in% names(map)) as.symbol(map[[name]]) else expr)
  }
  if (is.call(expr)) for (i in seq_along(expr)[-1]) expr[[i]] <- parity_rename_symbols(expr[[i]], map)
  expr
}

parity_brms_fit <- function(data, formula_text, levels = list(), reml = TRUE, level = 0.95,
                            family = "gaussian", trials = NULL, nagq = 1L, weights = NULL,
                            draws = 1000L, tune = 1000L, chains = 4L, target_accept = 0.8,
                            seed = 1L, priors = NULL, cache_dir = NULL, loglik = TRUE) {
  if (family != "gaussian") stop("parity's brms engine fits Gaussian models only")
  prepared <- parity_prepare(data, formula_text, levels, trials, weights)
  f <- prepared$formula
  data <- prepared$data
  response <- all.vars(f[[2]])[1]
  if (!is.numeric(data[[response]]) || length(unique(data[[response]])) < 2) {
    # brms would sample it, toward a residual SD of 0 that the likelihood rewards
    # without bound; lme4 and Bambi stop here too.
    stop(sprintf("the response %s is constant: there is no variance to model", response))
  }
  # brms takes no column name with a double underscore or a trailing one, and renames
  # some others: it is given the columns as v1, v2, ..., and every name it returns is
  # mapped back to the analyst's by position.
  safe <- stats::setNames(as.list(sprintf("v%d", seq_along(data))), names(data))
  brms_data <- data
  names(brms_data) <- unlist(safe[names(data)])
  brms_formula <- parity_rename_symbols(f, safe)
  base <- list(formula = brms_formula, data = brms_data, family = stats::gaussian())
  caught <- parity_quietly({
    # brms's names of the coefficients (the priors name them), from the model without
    # priors: neither compiled nor sampled.
    bare <- do.call(brms::brm, c(base, list(empty = TRUE, backend = "rstan")))
    groups <- unique(vapply(parity_bars(f), function(b) paste(deparse(b[[3]]), collapse = ""), ""))
    brms_group <- stats::setNames(lapply(groups, function(g) safe[[g]]), groups)
    map <- parity_brms_terms(f, data, bare$ranef, brms_group)
    X <- colnames(do.call(brms::make_standata, base)$X)
    defaults <- as.data.frame(do.call(brms::get_prior, base))
    spec <- parity_brms_priors(priors, map, setdiff(X, "Intercept"), defaults, brms_group)
    args <- c(base, list(prior = spec$prior, stanvars = spec$stanvars))
    code <- do.call(brms::make_stancode, args)
    sdata <- do.call(brms::make_standata, args)
    compiled <- parity_stan_model(as.character(code), cache_dir)
    empty <- do.call(brms::brm, c(args, list(empty = TRUE, backend = "rstan")))
    printed <- utils::capture.output(stanfit <- rstan::sampling(
      compiled$model, data = sdata, chains = as.integer(chains),
      iter = as.integer(tune + draws), warmup = as.integer(tune), seed = as.integer(seed),
      control = list(adapt_delta = target_accept), refresh = 0, cores = 1,
      show_messages = FALSE), type = "message")
    if (stanfit@mode != 0L) {  # rstan reports a failure to start and returns no draws
      stop("Stan did not sample: ", paste(trimws(c(printed, warnings)), collapse = "; "))
    }
    empty$fit <- stanfit
    brms::rename_pars(empty)
  })
  fit <- caught$value
  warnings <- caught$warnings
  a <- brms::as_draws_array(fit)
  variables <- dimnames(a)$variable
  n_chains <- dim(a)[2]
  columns <- list()
  cols <- list()
  take <- function(variable, meta) {
    if (!(variable %in% variables)) stop("brms gave no draws of ", variable)
    cols[[length(cols) + 1L]] <<- as.vector(a[, , variable])  # chain after chain
    columns[[length(columns) + 1L]] <<- meta
  }
  # Fixed effects, in model.matrix's order under lme4's names.
  rhs <- parity_nobars(f[[3]])
  fixed_names <- if (is.null(rhs)) character(0) else
    colnames(stats::model.matrix(stats::as.formula(call("~", rhs)), data))
  b <- grep("^b_", variables, value = TRUE)
  if (length(b) != length(fixed_names)) {
    stop(sprintf("brms has %d fixed coefficients, lme4's model %d", length(b), length(fixed_names)))
  }
  for (i in seq_along(b)) take(b[i], list(kind = "fixed", term = fixed_names[i]))
  for (group in names(map)) {
    coefs <- names(map[[group]])
    g <- brms_group[[group]]
    for (k in seq_along(coefs)) {
      take(sprintf("sd_%s__%s", g, coefs[k]),
           list(kind = "sd", group = group, term = map[[group]][[k]]))
    }
    for (k in seq_along(coefs)) for (j in seq_along(coefs)) if (k < j) {
      name <- sprintf("cor_%s__%s__%s", g, coefs[k], coefs[j])
      if (name %in% variables) take(name, list(kind = "corr", group = group,
                                               term = map[[group]][[k]],
                                               term2 = map[[group]][[j]]))
    }
    # Each level's effect by position: brms renames levels in its names ("a b" is
    # "a.b"), in the factor's order.
    lv <- levels(data[[group]])
    for (k in seq_along(coefs)) {
      suffix <- paste0(",", coefs[k], "]")
      names_k <- variables[startsWith(variables, paste0("r_", g, "[")) &
                             endsWith(variables, suffix)]
      if (length(names_k) != length(lv)) {
        stop(sprintf("brms has %d levels of %s, the data %d", length(names_k), group, length(lv)))
      }
      for (i in seq_along(lv)) take(names_k[i], list(kind = "effect", group = group,
                                                     level = lv[i], term = map[[group]][[k]]))
    }
  }
  take("sigma", list(kind = "sd", group = "Residual"))
  take("lprior", list(kind = "lprior"))
  # The log-likelihood of every draw, summed over the rows (prior sensitivity), where
  # the caller can hold its rows x draws.
  if (isTRUE(loglik)) {
    cols[[length(cols) + 1L]] <- rowSums(brms::log_lik(fit))
    columns[[length(columns) + 1L]] <- list(kind = "loglik")
  }
  sp <- rstan::get_sampler_params(fit$fit, inc_warmup = FALSE)
  divergences <- sum(vapply(sp, function(s) sum(s[, "divergent__"]), 0))
  treedepth <- max(vapply(sp, function(s) max(s[, "treedepth__"]), 0))
  args_ran <- fit$fit@stan_args[[1]]
  ps <- brms::prior_summary(fit)
  # The priors with their numbers in place of the names they reached Stan under.
  shown <- ps$prior
  for (name in rev(names(spec$values))) {
    v <- spec$values[[name]]
    text <- if (length(v) == 1) format(v, digits = 6) else
      sprintf("[%s]", paste(format(v, digits = 6, trim = TRUE), collapse = ", "))
    shown <- gsub(paste0("\\b", name, "\\b"), text, shown)
  }
  # Under the analyst's names: brms's groups and coefficients are those of v1, v2, ...
  original_group <- stats::setNames(names(brms_group), unlist(brms_group))
  fixed_coef <- stats::setNames(fixed_names[fixed_names != "(Intercept)"],
                                setdiff(X, "Intercept"))
  rename_back <- function(cls, group, coef) {
    g <- if (group %in% names(original_group)) original_group[[group]] else group
    c2 <- coef
    if (nzchar(coef) && cls == "b" && coef %in% names(fixed_coef)) c2 <- fixed_coef[[coef]]
    if (nzchar(coef) && nzchar(g) && !is.null(map[[g]]) && coef %in% names(map[[g]])) {
      c2 <- map[[g]][[coef]]
    }
    c(g, if (identical(c2, "(Intercept)")) "Intercept" else c2)
  }
  used <- lapply(seq_len(nrow(ps)), function(i) {
    named <- rename_back(ps$class[i], ps$group[i], ps$coef[i])
    list(prior = shown[i], class = ps$class[i], coef = named[2], group = named[1],
    source = if (ps$class[i] %in% spec$defaulted && ps$coef[i] == "" && ps$group[i] == "")
      "default" else ps$source[i])
  })
  doc <- list(
    engine = "brms",
    formula = paste(deparse(f, width.cutoff = 500L), collapse = " "),
    brms_formula = paste(deparse(brms_formula, width.cutoff = 500L), collapse = " "),
    method = "brms (Stan NUTS through rstan)",
    family = family,
    n_obs = nrow(data),
    n_dropped = prepared$n_dropped,
    chains = n_chains,
    columns = columns,
    ran = list(chains = fit$fit@sim$chains, iter = args_ran$iter, warmup = args_ran$warmup,
               draws = fit$fit@sim$iter - fit$fit@sim$warmup,
               tune = fit$fit@sim$warmup, seed = args_ran$seed,
               adapt_delta = args_ran$control$adapt_delta,
               max_treedepth_hit = treedepth, sampler = "rstan NUTS"),
    divergences = divergences,
    compiled = list(cached = compiled$cached, seconds = compiled$seconds, key = compiled$key),
    priors = used,
    prior_values = spec$values,
    stan_code_lines = length(strsplit(as.character(code), "\n")[[1]]),
    warnings = as.list(unique(warnings)),
    versions = parity_versions(c("brms", "rstan", "StanHeaders"))
  )
  list(json = as.character(jsonlite::toJSON(doc, auto_unbox = TRUE, digits = NA,
                                            null = "null", na = "null")),
       draws = do.call(cbind, cols))
}

if (sys.nframe() == 0L) {
  parity_main(commandArgs(trailingOnly = TRUE), function(...) {
    out <- parity_brms_fit(..., cache_dir = file.path(tempdir(), "stan"))
    doc <- jsonlite::fromJSON(out$json, simplifyVector = FALSE)
    doc$posterior_means <- unname(colMeans(out$draws))
    as.character(jsonlite::toJSON(doc, auto_unbox = TRUE, digits = NA, null = "null"))
  }, "brms_fit.R")
}
