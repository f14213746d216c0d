# Reference values from R's survey package for tests/analytics/test_indirect.py: the three
# indirect questioning designs and their under-reporting gaps, as contrasts of domain means
# (ratios of totals) linearised jointly on one stratified cluster design.
#
# Run from the repository root:
#   Rscript tests/analytics/reference/indirect_reference.R
# Output: indirect_sample.csv (the sample, written here with a fixed seed) and
# indirect_reference.csv (key, value), written with 17 significant digits. Recorded with R
# survey 4.1.1 (Debian package r-cran-survey).

suppressMessages(library(survey))
here <- "tests/analytics/reference"
options(survey.lonely.psu = "adjust")
out <- list()
rec <- function(key, est) {
  out[[paste0(key, ".estimate")]] <<- as.numeric(coef(est))
  out[[paste0(key, ".se")]] <<- as.numeric(SE(est))
}

# --------------------------------------------------------------------------- the sample
set.seed(20131201)
p_truth <- 4 / 6; p_yes <- 1 / 6; p_unrelated <- 0.25
rows <- list()
for (h in 1:12) {
  for (c in 1:sample(3:5, 1)) {
    m <- sample(10:20, 1)
    trait <- rbinom(m, 1, plogis(-1.2 + 0.12 * h + rnorm(1, 0, 0.6)))
    treated <- rbinom(m, 1, 0.5)
    die <- sample(1:6, m, replace = TRUE)
    unrelated <- rbinom(m, 1, p_unrelated)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = h, psu = c, region = ((h - 1) %% 4) + 1, sex = rbinom(m, 1, 0.5) + 1,
      w = round(runif(m, 50, 250), 3),
      treated = treated,
      count = rbinom(m, 4, 0.4) + treated * trait,
      rr_yes = ifelse(die <= 4, trait, as.numeric(die == 5)),
      cw_same = as.numeric(trait == unrelated),
      # people under-report on the direct question: a third of those with the trait deny it
      direct = trait * rbinom(m, 1, 2 / 3)
    )
  }
}
s <- do.call(rbind, rows)
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = s)
out[["degf"]] <- degf(des)

# Every estimator as a smooth function of domain totals (zero outside the domain, on the full
# design), so svycontrast linearises them jointly: the same as svyby(..., covmat = TRUE)
# followed by svycontrast, written once for the country and for each region.
formulas <- list(
  list = quote(ct / tr - cc / co),
  forced = substitute((rr / one - q) / p, list(q = p_yes, p = p_truth)),
  crosswise = substitute((cw / one + p - 1) / (2 * p - 1), list(p = p_unrelated))
)
run <- function(prefix, d, inside) {
  d <- update(d,
    ct = count * treated * inside, tr = treated * inside,
    cc = count * (1 - treated) * inside, co = (1 - treated) * inside,
    rr = rr_yes * inside, cw = cw_same * inside, di = direct * inside, one = inside
  )
  t <- svytotal(~ ct + tr + cc + co + rr + cw + di + one, d)
  for (name in names(formulas)) {
    rec(paste0(prefix, name), svycontrast(t, formulas[[name]]))
    gap <- substitute(a - di / one, list(a = formulas[[name]]))
    rec(paste0(prefix, name, ".gap"), svycontrast(t, gap))
  }
  rec(paste0(prefix, "direct"), svycontrast(t, quote(di / one)))
}
run("national.", des, 1)
for (r in 1:4) run(paste0("region", r, "."), des, as.numeric(s$region == r))

# Post-stratified on region x sex (calibrated weights, calibration-aware variances).
pop <- expand.grid(region = 1:4, sex = 1:2)
pop$Freq <- c(410, 380, 520, 300, 440, 400, 560, 330) * 100
ps <- postStratify(des, ~ region + sex, pop)
s$w_ps <- weights(ps)
run("poststratified.", ps, 1)

write.csv(s, file.path(here, "indirect_sample.csv"), row.names = FALSE)
values <- unlist(out)
write.csv(
  data.frame(key = names(values), value = trimws(formatC(values, digits = 17, format = "g"))),
  file.path(here, "indirect_reference.csv"), row.names = FALSE, quote = FALSE
)
