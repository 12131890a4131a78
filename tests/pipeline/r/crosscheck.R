# R reference for tests/pipeline/test_report_r_crosscheck.py: reads an ADTTE file (and an
# optional ratings file) and prints the survival package's numbers as key,value CSV lines.
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = FALSE)
d <- d[d$PARAMCD == "TTHEAL", ]
d$event <- 1 - d$CNSR
ref <- args[2]
d$x <- as.numeric(d$TRT01P != ref)
out <- function(k, v) cat(sprintf("%s,%.12g\n", k, v))
for (arm in sort(unique(d$TRT01P))) {
  s <- d[d$TRT01P == arm, ]
  fit <- survfit(Surv(AVAL, event) ~ 1, data = s, conf.type = "log-log")
  for (i in seq_along(fit$time)) {
    if (fit$n.event[i] == 0) next
    t <- fit$time[i]
    out(sprintf("km|%s|%g|surv", arm, t), fit$surv[i])
    out(sprintf("km|%s|%g|lower", arm, t), fit$lower[i])
    out(sprintf("km|%s|%g|upper", arm, t), fit$upper[i])
  }
}
lr <- survdiff(Surv(AVAL, event) ~ TRT01P, data = d)
out("logrank|chisq", lr$chisq)
out("logrank|p", pchisq(lr$chisq, length(lr$n) - 1, lower.tail = FALSE))
cx <- coxph(Surv(AVAL, event) ~ x, data = d, ties = "efron")
ci <- exp(confint(cx))
out("cox|hr", exp(coef(cx)[1]))
out("cox|lower", ci[1, 1])
out("cox|upper", ci[1, 2])
out("cox|p", summary(cx)$coefficients[1, 5])
if (length(args) >= 3 && requireNamespace("psych", quietly = TRUE)) {
  x <- as.matrix(read.csv(args[3], header = FALSE))
  r <- psych::ICC(x, lmer = FALSE)$results
  out("icc|value", r[2, "ICC"])
  out("icc|lower", r[2, "lower bound"])
  out("icc|upper", r[2, "upper bound"])
}
