#!/usr/bin/env Rscript
# Write a data set shipped with an installed R package as CSV, for parity's --r-dataset:
#
#   Rscript r_scripts/r_dataset.R PKG NAME OUT.csv [FACTORS.json]
#
# FACTORS.json (default: OUT.csv with ".factors.json" in place of ".csv") maps each
# factor column to its levels in R's order, so parity keeps R's reference levels.
#
# PKG and NAME arrive as command-line arguments and are used only as values: they are
# checked against a strict pattern here too (parity checks them before it runs R), and
# they are never pasted into R code.

parity_name_ok <- function(x) grepl("^[A-Za-z][A-Za-z0-9._]*$", x) && nchar(x) <= 100

parity_fail <- function(msg) {
  cat(msg, "\n", sep = "", file = stderr())
  quit(status = 3, save = "no")
}

parity_dataset <- function(pkg, name) {
  if (!parity_name_ok(pkg) || !parity_name_ok(name)) parity_fail("invalid package or data set name")
  if (!requireNamespace(pkg, quietly = TRUE)) {
    parity_fail(sprintf("R package '%s' is not installed", pkg))
  }
  e <- new.env()
  found <- tryCatch({
    suppressMessages(utils::data(list = name, package = pkg, envir = e))
    exists(name, envir = e, inherits = FALSE)
  }, warning = function(w) FALSE, error = function(err) FALSE)
  if (!found) parity_fail(sprintf("R package '%s' has no data set '%s'", pkg, name))
  d <- get(name, envir = e, inherits = FALSE)
  if (!is.data.frame(d)) {
    parity_fail(sprintf("%s::%s is not a data frame (it is a %s)", pkg, name, class(d)[1]))
  }
  as.data.frame(d)
}

parity_dataset_main <- function(args) {
  if (length(args) < 3) {
    cat("usage: Rscript r_dataset.R PKG NAME OUT.csv [FACTORS.json]\n", file = stderr())
    quit(status = 2, save = "no")
  }
  d <- parity_dataset(args[[1]], args[[2]])
  out <- args[[3]]
  sidecar <- if (length(args) >= 4) args[[4]] else sub("\\.csv$", ".factors.json", out)
  factors <- list()
  for (v in names(d)) {
    if (is.factor(d[[v]])) factors[[v]] <- levels(d[[v]])
  }
  utils::write.csv(d, out, row.names = FALSE, na = "")
  json <- if (length(factors)) jsonlite::toJSON(factors, auto_unbox = FALSE) else "{}"
  writeLines(as.character(json), sidecar)
}

if (sys.nframe() == 0L) {
  parity_dataset_main(commandArgs(trailingOnly = TRUE))
}
