# Reference values from R's survey package for tests/analytics/test_estimation.py and
# tests/analytics/test_weighting.py.
#
# Inputs:
#   * NHANES II subset shipped with samplics, exported first with
#       python -c "from samplics.datasets import load_nhanes2; \
#                  load_nhanes2()['data'].to_csv('/tmp/nhanes2.csv', index=False)"
#   * synthetic.csv / population_*.csv, generated below with a fixed seed (committed).
#
# Run from the repository root:
#   Rscript tests/analytics/reference/survey_reference.R
# Output: tests/analytics/reference/survey_reference.csv (key, value), written with 17
# significant digits. Recorded with R survey 4.1.1.

suppressMessages(library(survey))
here <- "tests/analytics/reference"
out <- list()
rec <- function(key, value) {
  value <- as.numeric(value)
  if (length(value) == 1) {
    out[[key]] <<- value
  } else {
    for (i in seq_along(value)) out[[paste0(key, "[", i, "]")]] <<- value[i]
  }
}
se_of <- function(est) sqrt(diag(as.matrix(vcov(est))))
ci_of <- function(x) as.numeric(attr(x, "ci"))
# deff() on svyby objects rejects deff = "replace"; read the DEff column instead
deff_by <- function(b) as.numeric(as.data.frame(b)[, grep("^DEff", names(b))])

# --------------------------------------------------------------------------- NHANES II
nh <- read.csv("/tmp/nhanes2.csv")
options(survey.lonely.psu = "adjust")
des <- svydesign(ids = ~psuid, strata = ~stratid, weights = ~finalwgt, nest = TRUE, data = nh)
rec("nhanes.degf", degf(des))

m <- svymean(~highbp, des, deff = "replace")
rec("nhanes.highbp.mean", coef(m)); rec("nhanes.highbp.se", SE(m)); rec("nhanes.highbp.deff", deff(m))
rec("nhanes.highbp.logit", ci_of(svyciprop(~highbp, des, method = "logit")))
rec("nhanes.highbp.beta", ci_of(svyciprop(~highbp, des, method = "beta")))

m <- svymean(~zinc, des, na.rm = TRUE, deff = "replace")
rec("nhanes.zinc.mean", coef(m)); rec("nhanes.zinc.se", SE(m)); rec("nhanes.zinc.deff", deff(m))

by_race <- svyby(~highbp, ~race, des, svymean, deff = "replace", covmat = TRUE)
rec("nhanes.race.mean", coef(by_race)); rec("nhanes.race.se", SE(by_race))
rec("nhanes.race.deff", deff_by(by_race))
d13 <- svycontrast(by_race, c(1, 0, -1))
rec("nhanes.race.diff13", coef(d13)); rec("nhanes.race.diff13.se", SE(d13))

for (r in 1:3) {
  sub <- subset(des, race == r)
  rec(paste0("nhanes.race", r, ".logit"), ci_of(svyciprop(~highbp, sub, method = "logit", df = degf(des))))
  rec(paste0("nhanes.race", r, ".beta"), ci_of(svyciprop(~highbp, sub, method = "beta", df = degf(des))))
  # svyciprop's own default: the df of the domain subset
  rec(paste0("nhanes.race", r, ".degf"), degf(sub))
  rec(paste0("nhanes.race", r, ".beta_domaindf"), ci_of(svyciprop(~highbp, sub, method = "beta")))
}

# race 2 vs the rest of the sample, same design
nh$black <- as.numeric(nh$race == 2)
des <- update(des, black = as.numeric(race == 2))
by_black <- svyby(~highbp, ~black, des, svymean, covmat = TRUE)
d <- svycontrast(by_black, c(-1, 1))
rec("nhanes.black_vs_rest.diff", coef(d)); rec("nhanes.black_vs_rest.se", SE(d))

by_race_zinc <- svyby(~zinc, ~race, des, svymean, na.rm = TRUE, deff = "replace")
rec("nhanes.race.zinc.mean", coef(by_race_zinc)); rec("nhanes.race.zinc.se", SE(by_race_zinc))
rec("nhanes.race.zinc.deff", deff_by(by_race_zinc))

# --------------------------------------------------------------------------- synthetic
set.seed(20240601)
n_psu <- c(3, 2, 4, 5, 2, 3, 4, 2, 3, 5, 3, 1) # stratum 12 has a single PSU
rows <- list()
for (h in seq_along(n_psu)) {
  for (c in seq_len(n_psu[h])) {
    m_rows <- sample(12:28, 1)
    effect <- rnorm(1, 0, 0.5)
    region <- sample(1:5, m_rows, replace = TRUE, prob = c(1, 1, 1, 1, 1) + (1:5 == (h %% 5 + 1)) * 3)
    urban <- rbinom(m_rows, 1, 0.3 + 0.04 * h)
    sex <- sample(1:2, m_rows, replace = TRUE)
    age <- sample(1:4, m_rows, replace = TRUE, prob = c(3, 3, 2, 2))
    p <- plogis(-0.8 + 0.25 * region - 0.4 * urban + 0.2 * (sex == 2) + effect)
    y <- rbinom(m_rows, 1, p)
    y_na <- ifelse(runif(m_rows) < 0.06, NA, y)
    x <- round(rnorm(m_rows, 50 + 4 * region + 6 * effect, 10), 2)
    x[runif(m_rows) < 0.05] <- NA
    den <- rpois(m_rows, 1.6)
    num <- rbinom(m_rows, den, plogis(-1 + 0.3 * urban + effect))
    w <- round(runif(m_rows, 80, 400) * (1 + h / 6), 3)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = h, psu = c, region = region, urban = urban, sex = sex, age = age,
      w = w, y = y, y_na = y_na, x = x, num = num, den = den
    )
  }
}
syn <- do.call(rbind, rows)
write.csv(syn, file.path(here, "synthetic.csv"), row.names = FALSE, na = "")

# population tables: weighted sample totals perturbed, as a census table would differ
pop_ru <- aggregate(w ~ region + urban, data = syn, sum)
pop_ru$total <- round(pop_ru$w * runif(nrow(pop_ru), 0.8, 1.25))
pop_ru$w <- NULL
write.csv(pop_ru, file.path(here, "population_region_urban.csv"), row.names = FALSE)
pop_sa <- aggregate(w ~ sex + age, data = syn, sum)
pop_sa$total <- round(pop_sa$w * runif(nrow(pop_sa), 0.85, 1.2))
pop_sa$w <- NULL
pop_r <- aggregate(w ~ region, data = syn, sum)
pop_r$total <- round(pop_r$w * runif(nrow(pop_r), 0.9, 1.1))
pop_r$w <- NULL
# raking margins must agree on the grand total
pop_r$total <- pop_r$total * sum(pop_sa$total) / sum(pop_r$total)
write.csv(pop_sa, file.path(here, "population_sex_age.csv"), row.names = FALSE)
write.csv(pop_r, file.path(here, "population_region.csv"), row.names = FALSE)

ratio_contrast <- function(d, domain, a, b) {
  v <- d$variables
  ok <- !is.na(v$y_na)
  in_a <- v[[domain]] == a
  in_b <- if (is.null(b)) !in_a else v[[domain]] == b
  d <- update(d,
    da = as.numeric(ok & in_a), db = as.numeric(ok & in_b),
    ya = ifelse(ok & in_a, v$y_na, 0), yb = ifelse(ok & in_b, v$y_na, 0)
  )
  r <- svyratio(~ ya + yb, ~ da + db, d, covmat = TRUE)
  k <- c(1, 0, 0, -1) # ya/da - yb/db
  est <- sum(k * as.vector(r$ratio))
  c(est, sqrt(drop(t(k) %*% r$vcov %*% k)))
}

syn_estimates <- function(prefix, d) {
  message(prefix)
  m <- svymean(~y_na, d, na.rm = TRUE, deff = "replace")
  rec(paste0(prefix, ".y.mean"), coef(m)); rec(paste0(prefix, ".y.se"), SE(m))
  rec(paste0(prefix, ".y.deff"), deff(m))
  m <- svymean(~x, d, na.rm = TRUE)
  rec(paste0(prefix, ".x.mean"), coef(m)); rec(paste0(prefix, ".x.se"), SE(m))
  b <- svyby(~y_na, ~region, d, svymean, na.rm = TRUE, deff = "replace")
  rec(paste0(prefix, ".region.y.mean"), coef(b)); rec(paste0(prefix, ".region.y.se"), SE(b))
  rec(paste0(prefix, ".region.y.deff"), deff_by(b))
  # region 2 minus region 4 with the covariance: svyby(covmat = TRUE) fails with NAs and
  # with calibrated designs, so write both domain means as ratios of domain indicators
  # and take the contrast from svyratio's joint covariance matrix
  dd <- ratio_contrast(d, "region", 2, 4)
  rec(paste0(prefix, ".region.y.diff24"), dd[1]); rec(paste0(prefix, ".region.y.diff24.se"), dd[2])
  dd <- ratio_contrast(d, "region", 3, NULL)
  rec(paste0(prefix, ".region.y.diff3rest"), dd[1]); rec(paste0(prefix, ".region.y.diff3rest.se"), dd[2])
  r <- svyratio(~num, ~den, d, deff = "replace")
  rec(paste0(prefix, ".ratio"), coef(r)); rec(paste0(prefix, ".ratio.se"), SE(r))
  rec(paste0(prefix, ".ratio.deff"), deff(r))
  rb <- svyby(~num, ~region, d, svyratio, denominator = ~den)
  rec(paste0(prefix, ".region.ratio"), coef(rb)); rec(paste0(prefix, ".region.ratio.se"), SE(rb))
  rec(paste0(prefix, ".ybin.logit"), ci_of(svyciprop(~y, d, method = "logit")))
  rec(paste0(prefix, ".ybin.beta"), ci_of(svyciprop(~y, d, method = "beta")))
}

base <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = syn)
rec("syn.degf", degf(base))
options(survey.lonely.psu = "adjust")
syn_estimates("syn.adjust", base)
# the same contrast through svyby(covmat = TRUE) + svycontrast, as a cross-check
b <- svyby(~y_na, ~region, subset(base, !is.na(y_na)), svymean, covmat = TRUE)
dd <- svycontrast(b, c(0, 1, 0, -1, 0))
rec("syn.adjust.svycontrast24", coef(dd)); rec("syn.adjust.svycontrast24.se", SE(dd))
options(survey.lonely.psu = "certainty")
syn_estimates("syn.certainty", base)

options(survey.lonely.psu = "adjust")
ps <- postStratify(base, ~region + urban, pop_ru)
rec("syn.ps.weights", weights(ps)[c(1, 50, 100, 400, 700)])
syn_estimates("syn.ps", ps)

rk <- rake(base, list(~sex + age, ~region),
           list(pop_sa, pop_r), control = list(maxit = 100, epsilon = 1e-12))
rec("syn.rake.weights", weights(rk)[c(1, 50, 100, 400, 700)])
syn_estimates("syn.rake", rk)

res <- data.frame(key = names(out), value = format(unlist(out), digits = 17), stringsAsFactors = FALSE)
write.csv(res, file.path(here, "survey_reference.csv"), row.names = FALSE, quote = TRUE)
cat("wrote", nrow(res), "values\n")
