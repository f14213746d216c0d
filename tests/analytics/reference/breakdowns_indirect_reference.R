# Reference values from R's survey package for tests/analytics/test_breakdown_cells.py: the
# indirect designs (list experiment, forced response, crosswise and their gaps with the
# direct question E1) by breakdown group, on the wave of breakdowns_reference.R.
#
# Run from the repository root (after breakdowns_reference.R, whose wave it reads):
#   Rscript tests/analytics/reference/breakdowns_indirect_reference.R
# Writes (committed): breakdowns_indirect.csv (the indirect answers, one row per interview
# of breakdowns_wave.csv, in its order) and breakdowns_indirect_reference.csv (key, value;
# 17 significant digits).
#
# Each estimate is a smooth function of domain totals on the full design (zero outside the
# group), linearised by svycontrast: the same as svycontrast over svyby(..., covmat = TRUE)
# of the terms' means. Answers that are not valid (refused, not asked) leave their term.

suppressMessages(library(survey))
here <- "tests/analytics/reference"
d <- read.csv(file.path(here, "breakdowns_wave.csv"))
set.seed(2015)
n <- nrow(d)
trait <- runif(n) < plogis(-1.4 + 0.6 * (d$SEX == 2) + 0.3 * (d$EDU >= 4))
arm <- ifelse(runif(n) < 0.03, -9, rbinom(n, 1, 0.5))
items <- rbinom(n, 3, 0.4)
refused <- function(x, share, code = -2) ifelse(runif(n) < share, code, x)
answers <- data.frame(
  LE_ARM = arm,
  LE_C = ifelse(arm == 0, refused(items, 0.04), -9),
  LE_T = ifelse(arm == 1, refused(items + trait, 0.04), -9),
  RR_E1 = refused(ifelse({die <- runif(n); die < 0.7}, ifelse(trait, 1, 2),
                         ifelse(die < 0.9, 1, 2)), 0.04),
  CW_E1 = refused(ifelse(trait == (runif(n) < 0.25), 1, 2), 0.04, -1)
)
write.csv(answers, file.path(here, "breakdowns_indirect.csv"), row.names = FALSE)

na_if <- function(x) { x[x < 0] <- NA; x }
s <- cbind(d, answers)
count <- ifelse(s$LE_ARM == 1, s$LE_T, ifelse(s$LE_ARM == 0, s$LE_C, -9))
count[count < 0] <- NA
s$le_ok <- !is.na(count)
s$count <- ifelse(s$le_ok, count, 0)
s$treated <- as.numeric(s$LE_ARM == 1)
s$rr_ok <- s$RR_E1 %in% 1:2
s$rr_yes <- as.numeric(s$RR_E1 == 1)
s$cw_ok <- s$CW_E1 %in% 1:2
s$cw_same <- as.numeric(s$CW_E1 == 1)
s$e1_ok <- s$E1 %in% 1:3
s$e1_yes <- as.numeric(s$E1 == 1)
s$sex <- na_if(s$SEX)
s$education <- c(1, 2, 3, 4, 4, 4)[na_if(s$EDU)]
regions <- sort(unique(s$region))
options(survey.lonely.psu = "adjust")
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = s)

p_truth <- 0.7; p_yes <- 0.2; p_unrelated <- 0.25
formulas <- list(
  INDIRECT_BRIBE_12M_LIST = "ct{g} / tr{g} - cc{g} / co{g}",
  INDIRECT_BRIBE_12M_RR = sprintf("(rr{g} / rv{g} - %.17g) / %.17g", p_yes, p_truth),
  INDIRECT_BRIBE_12M_CW = sprintf("(cw{g} / cv{g} + %.17g - 1) / (2 * %.17g - 1)",
                                  p_unrelated, p_unrelated)
)
for (name in names(formulas)) {
  formulas[[sub("INDIRECT", "GAP", name)]] <- paste0("(", formulas[[name]], ") - di{g} / dv{g}")
}
counted <- list(
  INDIRECT_BRIBE_12M_LIST = s$le_ok, INDIRECT_BRIBE_12M_RR = s$rr_ok,
  INDIRECT_BRIBE_12M_CW = s$cw_ok, GAP_BRIBE_12M_LIST = s$le_ok | s$e1_ok,
  GAP_BRIBE_12M_RR = s$rr_ok | s$e1_ok, GAP_BRIBE_12M_CW = s$cw_ok | s$e1_ok
)
expr <- function(formula, g) parse(text = gsub("{g}", g, formula, fixed = TRUE))[[1]]

# The terms' totals within a domain (1/0 per interview), suffixed with g.
with_domain <- function(design, inside, g) {
  v <- list(
    ct = s$count * s$treated * s$le_ok, tr = s$treated * s$le_ok,
    cc = s$count * (1 - s$treated) * s$le_ok, co = (1 - s$treated) * s$le_ok,
    rr = s$rr_yes * s$rr_ok, rv = as.numeric(s$rr_ok),
    cw = s$cw_same * s$cw_ok, cv = as.numeric(s$cw_ok),
    di = s$e1_yes * s$e1_ok, dv = as.numeric(s$e1_ok)
  )
  for (name in names(v)) design$variables[[paste0(name, g)]] <- v[[name]] * inside
  design
}
totals <- function(design, g) {
  names <- paste0(c("ct", "tr", "cc", "co", "rr", "rv", "cw", "cv", "di", "dv"), g)
  svytotal(as.formula(paste("~", paste(names, collapse = " + "))), design)
}

out <- list()
rec <- function(key, value) {
  value <- as.numeric(value)
  for (i in seq_along(value)) out[[paste0(key, "[", i, "]")]] <<- value[i]
}
for (b in c("sex", "education")) {
  groups <- sort(unique(na.omit(s[[b]])))
  for (name in names(formulas)) {
    est <- c(); se <- c(); df <- c(); diff <- c(); diff_se <- c(); p <- c()
    for (g in groups) {
      inside <- as.numeric(!is.na(s[[b]]) & s[[b]] == g)
      dg <- with_domain(with_domain(des, inside, "_a"), 1 - inside, "_b")
      t <- totals(dg, "_a")
      one <- svycontrast(t, expr(formulas[[name]], "_a"))
      est <- c(est, coef(one)); se <- c(se, SE(one))
      df <- c(df, degf(des[which(inside == 1 & counted[[name]]), ]))
      both <- svytotal(as.formula(paste("~", paste(c(names(coef(t)),
                       sub("_a$", "_b", names(coef(t)))), collapse = " + "))), dg)
      versus <- svycontrast(both, call("-", expr(formulas[[name]], "_a"),
                                       expr(formulas[[name]], "_b")))
      diff <- c(diff, coef(versus)); diff_se <- c(diff_se, SE(versus))
      p <- c(p, 2 * pt(-abs(coef(versus) / SE(versus)), degf(des)))
    }
    key <- paste0(b, ".", name)
    rec(key, est); rec(paste0(key, ".se"), se); rec(paste0(key, ".df"), df)
    rec(paste0(key, ".vs_rest"), diff); rec(paste0(key, ".vs_rest.se"), diff_se)
    rec(paste0(key, ".vs_rest.p"), p); rec(paste0(key, ".vs_rest.p_holm"), p.adjust(p, "holm"))
  }
}
# region x sex (regions in code order, then men, women)
for (name in c("INDIRECT_BRIBE_12M_LIST", "GAP_BRIBE_12M_RR")) {
  est <- c(); se <- c()
  for (r in regions) for (g in 1:2) {
    inside <- as.numeric(s$region == r & !is.na(s$sex) & s$sex == g)
    one <- svycontrast(totals(with_domain(des, inside, "_a"), "_a"), expr(formulas[[name]], "_a"))
    est <- c(est, coef(one)); se <- c(se, SE(one))
  }
  rec(paste0("region_sex.", name), est); rec(paste0("region_sex.", name, ".se"), se)
}

values <- unlist(out)
write.csv(data.frame(key = names(values), value = sprintf("%.17g", values)),
          file.path(here, "breakdowns_indirect_reference.csv"), row.names = FALSE)
cat("wrote", length(values), "reference values with R survey", as.character(packageVersion("survey")), "\n")
