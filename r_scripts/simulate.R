#!/usr/bin/env Rscript
# lme4's own simulate(): responses drawn from the fit of a model, the reference that
# parity study's simulation (parity/study/simulate.py) is tested against.
#
#   Rscript r_scripts/simulate.R data.csv "formula" nsim seed out.csv [family=gaussian]
#                                [trials=COLUMN] [categorical=COL1,COL2]
#
# A Gaussian model is fitted by lmer (REML), a binomial or Poisson one by glmer (Laplace),
# as parity's lme4 engine fits them; `trials` names a binomial count's trials column (the
# response becomes cbind(y, trials - y)). The formula is checked by parity.R as every fit
# script checks it (column names, operators and offset(column) only); every column the
# formula names that is not numeric, every grouping factor and every `categorical` column
# is read as text. out.csv has one column per simulated response, rows in the data's order
# of complete rows: for a cbind() response its successes (lme4 draws cbind(y, n - y) with
# n unchanged), for a factor response 1 where it is the second level.

suppressPackageStartupMessages(library(lme4))

parity_here <- function() {
  file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  dirname(normalizePath(file[[1]]))
}
source(file.path(parity_here(), "parity.R"))

parity_simulate_usage <- function() {
  cat("usage: Rscript simulate.R data.csv \"formula\" nsim seed out.csv [family=NAME]",
      "[trials=COLUMN] [categorical=COL1,COL2]\n", file = stderr())
  quit(status = 2)
}

# The key=value options after the five positional arguments.
parity_simulate_options <- function(extra) {
  options <- list(family = "gaussian", trials = NULL, categorical = character(0))
  for (a in extra) {
    kv <- regmatches(a, regexpr("=", a), invert = TRUE)[[1]]
    if (length(kv) != 2 || !(kv[[1]] %in% names(options))) parity_simulate_usage()
    options[[kv[[1]]]] <- if (kv[[1]] == "categorical") strsplit(kv[[2]], ",")[[1]] else kv[[2]]
  }
  options
}

# One simulated response as a number per row: a cbind() response's successes, a factor's
# second level as 1.
parity_simulated_column <- function(s) {
  if (is.matrix(s)) return(s[, 1])
  if (is.factor(s)) return(as.numeric(s == levels(s)[[2]]))
  s
}

parity_simulate_main <- function(args) {
  if (length(args) < 5) parity_simulate_usage()
  options <- parity_simulate_options(args[-(1:5)])
  expr <- str2lang(args[[2]])
  header <- names(utils::read.csv(args[[1]], nrows = 1, check.names = FALSE))
  parity_check_formula(expr, header)
  groups <- unique(unlist(lapply(lme4::findbars(stats::formula(expr)),
                                 function(b) all.vars(b[[3]]))))
  text <- intersect(union(groups, options$categorical), header)
  data <- utils::read.csv(args[[1]], stringsAsFactors = FALSE, check.names = FALSE,
                          colClasses = stats::setNames(rep("character", length(text)), text))
  vars <- all.vars(expr)
  factors <- intersect(vars[-1], union(text, names(data)[!vapply(data, is.numeric, TRUE)]))
  complete <- data[stats::complete.cases(data[, vars, drop = FALSE]), , drop = FALSE]
  levels <- lapply(factors, function(v) parity_levels(complete[[v]]))
  names(levels) <- factors
  prepared <- parity_prepare(data, args[[2]], levels, options$trials)
  fit <- if (options$family == "gaussian") {
    lme4::lmer(prepared$formula, data = prepared$data, REML = TRUE)
  } else {
    lme4::glmer(prepared$formula, data = prepared$data, family = parity_family(options$family))
  }
  sims <- stats::simulate(fit, nsim = as.integer(args[[3]]), seed = as.integer(args[[4]]))
  out <- as.data.frame(lapply(sims, parity_simulated_column))
  utils::write.csv(out, args[[5]], row.names = FALSE)
}

if (sys.nframe() == 0L) {
  parity_simulate_main(commandArgs(trailingOnly = TRUE))
}
