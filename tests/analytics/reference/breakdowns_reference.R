# Reference values from R's survey package for tests/analytics/test_breakdown_cells.py:
# every breakdown (sex, age band, urban/rural, education, employment, settlement type)
# nationally with each group against the rest (Holm across the groups), region x sex,
# and the same breakdowns after raking, on a small synthetic wave on the 2013 geography.
#
# Run from the repository root:
#   Rscript tests/analytics/reference/breakdowns_reference.R
# Writes (committed): breakdowns_wave.csv (the interviews), breakdowns_margins.csv
# (population margins in the admin upload format) and breakdowns_reference.csv (key,
# value; 17 significant digits).

suppressMessages(library(survey))
here <- "tests/analytics/reference"
set.seed(1313)
regions <- c("KZ-AKM", "KZ-AKT", "KZ-ALA", "KZ-ALM", "KZ-AST", "KZ-ATY", "KZ-KAR", "KZ-KUS",
             "KZ-KZY", "KZ-MAN", "KZ-PAV", "KZ-SEV", "KZ-VOS", "KZ-YUZ", "KZ-ZAP", "KZ-ZHA")
pick <- function(m, values, refused = 0.03) {
  ifelse(runif(m) < refused, -2, sample(values, m, TRUE))
}
rows <- list()
for (r in seq_along(regions)) {
  effect <- rnorm(1, 0, 0.6)
  for (u in 1:2) {
    for (p in 1:8) {
      m <- 12
      psu_effect <- rnorm(1, 0, 0.4)
      sex <- pick(m, 1:2)
      born <- sample(1933:1995, m, TRUE)
      edu <- pick(m, 1:6)
      lin <- 1.0 + effect + psu_effect + 0.4 * (sex == 2) + 0.15 * (edu >= 4)
      perc <- runif(m) < plogis(lin)
      p1 <- ifelse(perc, sample(1:2, m, TRUE), sample(3:4, m, TRUE))
      special <- runif(m)
      p1 <- ifelse(special < 0.04, -1, ifelse(special < 0.06, -2, p1))
      e1 <- ifelse(runif(m) < plogis(-0.4 + effect / 2 + psu_effect + (born > 1975) * 0.5),
                   sample(1:2, m, TRUE), 3)
      e1 <- ifelse(runif(m) < 0.05, -2, e1)
      rows[[length(rows) + 1]] <- data.frame(
        region = regions[r], urban_rural = u,
        stratum = paste0(regions[r], ifelse(u == 1, "-U", "-R")),
        psu = paste0(regions[r], "-", u, "-", p),
        weight = round(rlnorm(m, log(1000 * r^0.3), 0.3), 3),
        SEX = sex, BIRTH_YEAR = born,
        # the form's AGE is missing in some interviews: the age comes from the birth year
        AGE = ifelse(runif(m) < 0.15, -9, 2013 - born),
        EDU = edu, EMP = pick(m, 1:7),
        SETTLEMENT = if (u == 2) rep(4, m) else sample(1:3, m, TRUE),
        P1 = p1, E1 = e1)
    }
  }
}
d <- do.call(rbind, rows)
write.csv(d, file.path(here, "breakdowns_wave.csv"), row.names = FALSE)

age <- ifelse(d$AGE >= 0, d$AGE, 2013 - d$BIRTH_YEAR)
na_if <- function(x) { x[x < 0] <- NA; x }
d$sex <- factor(na_if(d$SEX), levels = 1:2)
d$age_band <- cut(age, c(17, 29, 44, 59, 120), labels = FALSE)
d$urban_rural <- factor(d$urban_rural, levels = 1:2)
d$education <- factor(c(1, 2, 3, 4, 4, 4)[na_if(d$EDU)], levels = 1:4)
d$employment <- factor(na_if(d$EMP), levels = 1:7)
d$settlement_type <- factor(na_if(d$SETTLEMENT), levels = 1:4)
d$age_band <- factor(d$age_band, levels = 1:4)
breakdowns <- c("sex", "age_band", "urban_rural", "education", "employment", "settlement_type")

# Margins as calibration uses them: region x urban/rural and sex x age band, interviews of
# unknown sex or age in a cell of their own with their base-weight share of the total.
band <- c("18-29", "30-44", "45-59", "60+")[d$age_band]
known <- !is.na(d$sex) & !is.na(band)
d$ru <- paste(d$region, d$urban_rural)
d$sexage <- ifelse(known, paste(d$SEX, band, sep = ":"), "unknown")
pop_ru <- data.frame(ru = sort(unique(d$ru)))
pop_ru$Freq <- round(seq(80000, 240000, length.out = nrow(pop_ru))[sample(nrow(pop_ru))])
cells_sa <- sort(unique(d$sexage[known]))
shares <- c(0.13, 0.14, 0.12, 0.13, 0.10, 0.11, 0.11, 0.16)
grand <- sum(pop_ru$Freq)
unknown_share <- sum(d$weight[!known]) / sum(d$weight)
pop_sa <- data.frame(sexage = c(cells_sa, "unknown"),
                     Freq = c(grand * (1 - unknown_share) * shares / sum(shares),
                              grand * unknown_share))
margins <- rbind(
  data.frame(dimension = "region_urban", region = sub(" .*", "", pop_ru$ru),
             urban_rural = sub(".* ", "", pop_ru$ru), sex = "", age_band = "",
             total = pop_ru$Freq),
  data.frame(dimension = "sex_age", region = "", urban_rural = "",
             sex = sub(":.*", "", cells_sa), age_band = sub(".*:", "", cells_sa),
             total = sprintf("%.6f", grand * shares / sum(shares))))
write.csv(margins, file.path(here, "breakdowns_margins.csv"), row.names = FALSE, quote = FALSE)

out <- list()
rec <- function(key, value) {
  value <- as.numeric(value)
  if (length(value) == 1) out[[key]] <<- value
  else for (i in seq_along(value)) out[[paste0(key, "[", i, "]")]] <<- value[i]
}
d$perc <- ifelse(d$P1 %in% c(1, 2, 3, 4, -1), as.numeric(d$P1 %in% c(1, 2)), NA)
d$ever <- ifelse(d$E1 %in% 1:3, as.numeric(d$E1 %in% 1:2), NA)
options(survey.lonely.psu = "adjust")
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d)
rec("degf", degf(des))

for (b in breakdowns) {
  # PERC_BRIBE per group: a domain of the full design (svyby), Korn-Graubard with the
  # domain's own df (svyciprop on the design restricted to the group)
  by_group <- svyby(as.formula("~perc"), as.formula(paste0("~", b)), des, svymean,
                    na.rm = TRUE, drop.empty.groups = FALSE)
  rec(paste0(b, ".perc"), coef(by_group)); rec(paste0(b, ".perc.se"), SE(by_group))
  groups <- levels(d[[b]])
  kg <- sapply(groups, function(g) {
    sub <- des[which(d[[b]] == g & !is.na(d$perc)), ]
    c(attr(svyciprop(~perc, sub, method = "beta"), "ci"), degf(sub))
  })
  rec(paste0(b, ".perc.kg_low"), kg[1, ]); rec(paste0(b, ".perc.kg_high"), kg[2, ])
  rec(paste0(b, ".perc.df"), kg[3, ])
  # each group against everyone else (missing group included), Holm across the groups
  diffs <- c(); ses <- c(); ps <- c()
  for (g in groups) {
    d$ing <- factor(ifelse(!is.na(d[[b]]) & d[[b]] == g, "a", "b"))
    des_g <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d)
    fit <- svyby(~perc, ~ing, subset(des_g, !is.na(perc)), svymean, covmat = TRUE)
    con <- svycontrast(fit, c(1, -1))
    diffs <- c(diffs, coef(con)); ses <- c(ses, SE(con))
    ps <- c(ps, 2 * pt(-abs(coef(con) / SE(con)), degf(des)))
  }
  rec(paste0(b, ".perc.vs_rest"), diffs); rec(paste0(b, ".perc.vs_rest.se"), ses)
  rec(paste0(b, ".perc.vs_rest.p"), ps); rec(paste0(b, ".perc.vs_rest.p_holm"), p.adjust(ps, "holm"))
}

# region x sex (regions in code order, then groups)
d$region_sex <- factor(ifelse(is.na(d$sex), NA, paste(d$region, d$sex)),
                       levels = as.vector(t(outer(regions, 1:2, paste))))
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d)
rs <- svyby(~perc, ~region_sex, des, svymean, na.rm = TRUE, drop.empty.groups = FALSE)
rec("region_sex.perc", coef(rs)); rec("region_sex.perc.se", SE(rs))

# EXP_BRIBE_EVER after raking, by every breakdown
raked <- rake(des, list(~ru, ~sexage), list(pop_ru, pop_sa),
              control = list(maxit = 200, epsilon = 1e-10))
for (b in breakdowns) {
  fit <- svyby(~ever, as.formula(paste0("~", b)), raked, svymean, na.rm = TRUE,
               drop.empty.groups = FALSE)
  rec(paste0(b, ".ever.raked"), coef(fit)); rec(paste0(b, ".ever.raked.se"), SE(fit))
}

write.csv(data.frame(key = names(out), value = sprintf("%.17g", unlist(out))),
          file.path(here, "breakdowns_reference.csv"), row.names = FALSE)
cat("wrote", length(out), "reference values with R survey", as.character(packageVersion("survey")), "\n")
