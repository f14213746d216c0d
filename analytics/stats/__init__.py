"""Statistics: plain functions over arrays and DataFrames, with no Django import, so they
are tested against reference values (R's survey package, published figures) and can be
used from a notebook. A test imports every module here in a fresh interpreter and fails if
any Django module is loaded.

* `estimation`: design-based means, proportions, differences and their variances (Taylor
  linearisation with strata and PSUs), confidence intervals, Holm adjustment;
* `weighting`: post-stratification and raking to population margins;
* `cells`: the same estimates for many cells at once, from per-cell sums;
* `publication`: the rules that decide whether a cell is published;
* `disclosure`: complementary suppression, so no hidden count comes back by subtraction;
* `indirect`: indirect questioning designs (list experiment, forced response, crosswise);
* `summaries`: weighted shares per answer code and per select_multiple option.
"""
