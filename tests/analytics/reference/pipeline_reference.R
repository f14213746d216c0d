# Reference values from R's survey package for tests/analytics/test_computation.py:
# a regional comparison (each region against the rest of the country, Holm-adjusted)
# and a raked indicator, on a small synthetic wave on the 2013 geography.
#
# Run from the repository root:
#   Rscript tests/analytics/reference/pipeline_reference.R
# Writes (committed): pipeline_wave.csv (the interviews), pipeline_margins.csv (population
# margins in the admin upload format) and pipeline_reference.csv (key, value; 17
# significant digits). Recorded with R survey 4.1.1.

suppressMessages(library(survey))
here <- "tests/analytics/reference"
set.seed(4242)
regions <- c("KZ-AKM", "KZ-AKT", "KZ-ALA", "KZ-ALM", "KZ-AST", "KZ-ATY", "KZ-KAR", "KZ-KUS",
             "KZ-KZY", "KZ-MAN", "KZ-PAV", "KZ-SEV", "KZ-VOS", "KZ-YUZ", "KZ-ZAP", "KZ-ZHA")
rows <- list()
for (r in seq_along(regions)) {
  effect <- rnorm(1, 0, 0.6)
  for (u in 1:2) {
    for (p in 1:8) {
      m <- 10
      psu_effect <- rnorm(1, 0, 0.4)
      lin <- 1.2 + effect + psu_effect
      perc <- runif(m) < plogis(lin)
      p1 <- ifelse(perc, sample(1:2, m, TRUE), sample(3:4, m, TRUE))
      special <- runif(m)
      p1 <- ifelse(special < 0.04, -1, ifelse(special < 0.06, -2, p1))
      e1 <- ifelse(runif(m) < plogis(-0.4 + effect / 2 + psu_effect), sample(1:2, m, TRUE), 3)
      e1 <- ifelse(runif(m) < 0.05, -2, e1)
      rows[[length(rows) + 1]] <- data.frame(
        region = regions[r], urban_rural = u,
        stratum = paste0(regions[r], ifelse(u == 1, "-U", "-R")),
        psu = paste0(regions[r], "-", u, "-", p),
        weight = round(rlnorm(m, log(1000 * r^0.3), 0.3), 3),
        SEX = sample(1:2, m, TRUE), AGE = sample(18:80, m, TRUE),
        P1 = p1, E1 = e1)
    }
  }
}
d <- do.call(rbind, rows)
write.csv(d, file.path(here, "pipeline_wave.csv"), row.names = FALSE)

band <- cut(d$AGE, c(17, 29, 44, 59, 200), labels = c("18-29", "30-44", "45-59", "60+"))
d$ru <- paste(d$region, d$urban_rural)
d$sexage <- paste(d$SEX, band, sep = ":")
# Population margins: region x urban/rural and sex x age band, same grand total.
pop_ru <- data.frame(ru = sort(unique(d$ru)))
pop_ru$Freq <- round(seq(80000, 240000, length.out = nrow(pop_ru))[sample(nrow(pop_ru))])
pop_sa <- data.frame(sexage = sort(unique(d$sexage)))
shares <- c(0.13, 0.14, 0.12, 0.13, 0.10, 0.11, 0.11, 0.16)
pop_sa$Freq <- sum(pop_ru$Freq) * shares / sum(shares)
margins <- rbind(
  data.frame(dimension = "region_urban", region = sub(" .*", "", pop_ru$ru),
             urban_rural = sub(".* ", "", pop_ru$ru), sex = "", age_band = "",
             total = pop_ru$Freq),
  data.frame(dimension = "sex_age", region = "", urban_rural = "",
             sex = sub(":.*", "", pop_sa$sexage), age_band = sub(".*:", "", pop_sa$sexage),
             total = sprintf("%.6f", pop_sa$Freq)))
write.csv(margins, file.path(here, "pipeline_margins.csv"), row.names = FALSE, quote = FALSE)

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

# PERC_BRIBE nationally and per region (Korn-Graubard with the domain's own df: the
# design restricted to the region, as svyciprop on a subset computes it)
m <- svymean(~perc, des, na.rm = TRUE)
rec("perc.national", coef(m)); rec("perc.national.se", SE(m))
by_region <- svyby(~perc, ~region, des, svymean, na.rm = TRUE)
rec("perc.region", coef(by_region)); rec("perc.region.se", SE(by_region))
kg <- sapply(regions, function(r) {
  sub <- subset(des, region == r & !is.na(perc))
  c(attr(svyciprop(~perc, sub, method = "beta"), "ci"), degf(sub))
})
rec("perc.region.kg_low", kg[1, ]); rec("perc.region.kg_high", kg[2, ])
rec("perc.region.df", kg[3, ])

# Each region against the rest of the country (joint linearisation), Holm across regions
diffs <- c(); ses <- c(); ps <- c()
for (r in regions) {
  d$inr <- factor(ifelse(d$region == r, "a", "b"))
  des_r <- svydesign(ids = ~psu, strata = ~stratum, weights = ~weight, nest = TRUE, data = d)
  b <- svyby(~perc, ~inr, subset(des_r, !is.na(perc)), svymean, covmat = TRUE)
  con <- svycontrast(b, c(1, -1))
  t <- coef(con) / SE(con)
  diffs <- c(diffs, coef(con)); ses <- c(ses, SE(con))
  ps <- c(ps, 2 * pt(-abs(t), degf(des)))
}
rec("perc.vs_rest", diffs); rec("perc.vs_rest.se", ses); rec("perc.vs_rest.p", ps)
rec("perc.vs_rest.p_holm", p.adjust(ps, "holm"))

# EXP_BRIBE_EVER after raking to both margins
raked <- rake(des, list(~ru, ~sexage), list(pop_ru, pop_sa), control = list(maxit = 200, epsilon = 1e-10))
m <- svymean(~ever, raked, na.rm = TRUE)
rec("ever.raked.national", coef(m)); rec("ever.raked.national.se", SE(m))
b <- svyby(~ever, ~region, raked, svymean, na.rm = TRUE)
rec("ever.raked.region", coef(b)); rec("ever.raked.region.se", SE(b))

write.csv(data.frame(key = names(out), value = sprintf("%.17g", unlist(out))),
          file.path(here, "pipeline_reference.csv"), row.names = FALSE)
cat("wrote", length(out), "reference values\n")
