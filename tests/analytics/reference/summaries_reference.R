# Reference values from R's survey package for tests/analytics/test_summaries.py: weighted
# shares of each answer of a select_one question (don't know and refused as their own
# codes, not applicable out of the base) and of each option of a select_multiple question,
# overall and by sex, with Korn-Graubard intervals.
#
# Run from the repository root:
#   Rscript tests/analytics/reference/summaries_reference.R
# Output: summaries_sample.csv (the sample, written here with a fixed seed) and
# summaries_reference.csv (key, value), 17 significant digits. Recorded with R survey 4.1.1.

suppressMessages(library(survey))
here <- "tests/analytics/reference"
options(survey.lonely.psu = "adjust")
out <- list()
rec <- function(key, value) out[[key]] <<- as.numeric(value)

set.seed(20260512)
rows <- list()
for (h in 1:10) {
  for (c in 1:sample(2:4, 1)) {
    m <- sample(8:16, 1)
    lean <- rnorm(1, 0, 0.4)
    q <- sample(c(1, 2, 3, 4, -1, -2, -3), m, replace = TRUE,
      prob = c(0.25 + lean / 4, 0.3, 0.2, 0.1, 0.08, 0.04, 0.03 + abs(lean) / 8))
    answered <- rbinom(m, 1, 0.9)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = h, psu = c, sex = rbinom(m, 1, 0.5) + 1, w = round(runif(m, 40, 260), 3),
      q = q, answered = answered,
      m1 = ifelse(answered == 1, rbinom(m, 1, 0.4), NA),
      m2 = ifelse(answered == 1, rbinom(m, 1, 0.15), NA),
      m3 = ifelse(answered == 1, rbinom(m, 1, 0.6), NA)
    )
  }
}
s <- do.call(rbind, rows)
s$q[sample(nrow(s), 12)] <- NA  # no answer stored
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = s)

share <- function(var, d, key) {
  f <- as.formula(paste0("~", var))
  m <- svymean(f, d, na.rm = TRUE)
  rec(paste0(key, ".estimate"), coef(m)); rec(paste0(key, ".se"), SE(m))
  # Korn-Graubard on the base (rows with an answer), so its n is the base's size (NCHS),
  # as the platform computes it, with the full design's degrees of freedom.
  base <- d[!is.na(d$variables[[var]]), ]
  ci <- svyciprop(f, base, method = "beta", df = degf(des))
  rec(paste0(key, ".ci_low"), attr(ci, "ci")[1]); rec(paste0(key, ".ci_high"), attr(ci, "ci")[2])
}
for (code in c(1, 2, 3, 4, -1, -2)) {
  des <- update(des, y = ifelse(is.na(q) | q %in% c(-3, -9), NA, as.numeric(q == code)))
  share("y", des, paste0("q.", code))
  for (sx in 1:2) share("y", subset(des, sex == sx), paste0("q.", code, ".sex", sx))
}
for (opt in c("m1", "m2", "m3")) {
  share(opt, des, paste0(opt))
  for (sx in 1:2) share(opt, subset(des, sex == sx), paste0(opt, ".sex", sx))
}

write.csv(s, file.path(here, "summaries_sample.csv"), row.names = FALSE, na = "")
values <- unlist(out)
write.csv(
  data.frame(key = names(values), value = trimws(formatC(values, digits = 17, format = "g"))),
  file.path(here, "summaries_reference.csv"), row.names = FALSE, quote = FALSE
)
