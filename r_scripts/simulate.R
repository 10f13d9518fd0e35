#!/usr/bin/env Rscript
# lme4's own simulate(): responses drawn from the REML fit of a model, the reference that
# parity study's simulation (parity/study/simulate.py) is tested against.
#
#   Rscript r_scripts/simulate.R data.csv "formula" nsim seed out.csv
#
# The formula is checked by parity.R as every fit script checks it (column names and
# operators only);
# every column the formula names that is not numeric, and every grouping factor, is read
# as text. out.csv has one column per simulated response, rows in the data's order of
# complete rows.

suppressPackageStartupMessages(library(lme4))

parity_here <- function() {
  file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  dirname(normalizePath(file[[1]]))
}
source(file.path(parity_here(), "parity.R"))

parity_simulate_main <- function(args) {
  if (length(args) != 5) {
    cat("usage: Rscript simulate.R data.csv \"formula\" nsim seed out.csv\n", file = stderr())
    quit(status = 2)
  }
  expr <- str2lang(args[[2]])
  header <- names(utils::read.csv(args[[1]], nrows = 1, check.names = FALSE))
  parity_check_formula(expr, header)
  groups <- unique(unlist(lapply(lme4::findbars(stats::formula(expr)),
                                 function(b) all.vars(b[[3]]))))
  data <- utils::read.csv(args[[1]], stringsAsFactors = FALSE, check.names = FALSE,
                          colClasses = stats::setNames(rep("character", length(groups)), groups))
  vars <- all.vars(expr)
  factors <- intersect(vars[-1], union(groups, names(data)[!vapply(data, is.numeric, TRUE)]))
  complete <- data[stats::complete.cases(data[, vars, drop = FALSE]), , drop = FALSE]
  levels <- lapply(factors, function(v) parity_levels(complete[[v]]))
  names(levels) <- factors
  prepared <- parity_prepare(data, args[[2]], levels)
  fit <- lme4::lmer(prepared$formula, data = prepared$data, REML = TRUE)
  sims <- stats::simulate(fit, nsim = as.integer(args[[3]]), seed = as.integer(args[[4]]))
  utils::write.csv(as.data.frame(sims), args[[5]], row.names = FALSE)
}

if (sys.nframe() == 0L) {
  parity_simulate_main(commandArgs(trailingOnly = TRUE))
}
