"""The numbers behind the paper's Figures 3-6: rank correlation with its p-value and a
bootstrap interval, the Pareto front of score against cost, and the noise floor."""
import numpy as np


EXACT_MAX_N = 8  # up to 8! = 40320 pairings, the exact p-value takes a second


def spearman(x, y):
    """(rho, two-sided p-value) of Spearman's rank correlation; (None, None) below 3
    pairs. The p-value is exact (every pairing of x with y) up to `EXACT_MAX_N` pairs,
    where the t approximation is far off (rho = 1 at n = 4: exactly 1/12, t says 0),
    else scipy's t distribution with n - 2 degrees of freedom."""
    from scipy import stats

    if len(x) < 3:
        return None, None
    rho = float(stats.spearmanr(x, y).statistic)
    if np.isnan(rho):
        return None, None
    if len(x) > EXACT_MAX_N:
        return rho, float(stats.spearmanr(x, y).pvalue)
    exact = stats.permutation_test(
        (x,), lambda a: stats.spearmanr(a, y).statistic, permutation_type="pairings",
        n_resamples=np.inf, alternative="two-sided")
    return rho, float(exact.pvalue)


def bootstrap_interval(x, y, samples=2000, confidence=0.95, seed=0):
    """Percentile interval of rho over pairs resampled with replacement (resamples whose
    ranks are all tied are dropped); None below 3 pairs."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return None
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(samples):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) == 0 or np.ptp(y[i]) == 0:
            continue
        rhos.append(stats.spearmanr(x[i], y[i]).statistic)
    if not rhos:
        return None
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(rhos, tail)), float(np.percentile(rhos, 100 - tail))


def pareto_front(costs, scores):
    """Indices of the points no other point beats (cost no higher and score higher, or
    cost lower and score no lower), by increasing cost."""
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -scores[i]))
    front, best = [], -np.inf
    for i in order:
        if scores[i] > best:
            front.append(i)
            best = scores[i]
    return front


def spread(values):
    """Standard deviation (n - 1) and range of a list; None for fewer than 2 values."""
    if len(values) < 2:
        return None
    values = np.asarray(values, float)
    return {"std": float(values.std(ddof=1)), "range": float(np.ptp(values)),
            "min": float(values.min()), "max": float(values.max()), "n": len(values)}
