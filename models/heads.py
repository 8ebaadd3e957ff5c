"""The five LightGBM heads: what each learns, how it is fitted, and how it is scored.

1. universe  — lambdarank over the symbols of each timestamp (which symbols to trade);
2. direction — binary classifier of the forward return's sign, Platt-calibrated on walk-forward
   predictions (side and confidence);
3. adverse   — quantile regression of the adverse excursion (stop distance, then leverage);
4. favourable_{lock,t1,t2,t3} — quantile regressions of the favourable excursion (harvest ladder);
5. kill      — binary classifier of "the edge has collapsed" (kill threshold by regime).

Excursion targets are in volatility units (excursion / (sigma * sqrt(horizon))) so one tree fits
quiet and wild symbols alike; the policy multiplies back by the bar's own sigma.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from models.config import LADDER, TrainConfig
from models.errors import TrainDataError

SIDE_INPUT = "side"  # extra input of the side heads: +1 long, -1 short


@dataclass(frozen=True)
class Head:
    """One booster to train: its name, objective and whether it also sees the side."""

    name: str
    objective: str
    with_side: bool
    alpha: float | None = None  # quantile level of quantile heads

    def input_names(self, features: Sequence[str]) -> list[str]:
        return [*features, SIDE_INPUT] if self.with_side else list(features)


def heads_for(cfg: TrainConfig) -> tuple[Head, ...]:
    """Every booster of a model set, in training order."""
    favourable = tuple(
        Head(f"favourable_{role}", "quantile", True, q)
        for role, q in zip(LADDER, cfg.favourable_quantiles, strict=True)
    )
    return (
        Head("universe", "lambdarank", False),
        Head("direction", "binary", False),
        Head("adverse", "quantile", True, cfg.adverse_quantile),
        *favourable,
        Head("kill", "binary", True),
    )


def lgb_params(cfg: TrainConfig, head: Head) -> dict[str, object]:
    """LightGBM parameters: deterministic (fixed seed, threads and row-wise histograms)."""
    params: dict[str, object] = {
        "objective": head.objective,
        "num_leaves": cfg.num_leaves,
        "learning_rate": cfg.learning_rate,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": 1 if cfg.bagging_fraction < 1 else 0,
        "lambda_l2": cfg.lambda_l2,
        "max_bin": cfg.max_bin,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.num_threads,
        "verbosity": -1,
    }
    if head.alpha is not None:
        params["alpha"] = head.alpha
    if head.objective == "lambdarank":
        params["label_gain"] = list(range(cfg.rank_grades))
        params["lambdarank_truncation_level"] = cfg.ndcg_at
    return params


def dataset(
    cfg: TrainConfig,
    x: np.ndarray,
    input_names: Sequence[str],
    group: np.ndarray | None = None,
) -> lgb.Dataset:
    """Binned inputs, built once and shared by every head that sees the same rows."""
    if len(x) == 0:
        raise TrainDataError(
            "no usable training rows: every bar lacks complete features or labels "
            "(too little history, or flat/degenerate prices); give more or other data"
        )
    params = {"verbosity": -1, "seed": cfg.seed, "max_bin": cfg.max_bin}
    data = lgb.Dataset(
        x, group=group, feature_name=list(input_names), params=params, free_raw_data=False
    )
    return data.construct()


def fit(cfg: TrainConfig, head: Head, data: lgb.Dataset, y: np.ndarray) -> lgb.Booster:
    """Train one booster for `cfg.rounds` rounds (no early stopping: same data, same bytes)."""
    data.set_label(y)
    return lgb.train(lgb_params(cfg, head), data, num_boost_round=cfg.rounds)


# ---------------------------------------------------------------------------------------------
# calibration and metrics


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def platt_fit(
    raw: np.ndarray, y: np.ndarray, iterations: int = 50, fit_intercept: bool = True
) -> tuple[float, float]:
    """Fit p = sigmoid(a * raw + b) by Newton's method on the log loss (Platt scaling).

    Fitted on walk-forward predictions the booster never trained on, so confidence means
    what it says out of sample. Without `fit_intercept`, b stays 0: only the slope is learnt.
    """
    x = np.column_stack([raw, np.ones_like(raw)]) if fit_intercept else raw[:, None]
    w = np.zeros(x.shape[1])
    w[0] = 1.0
    for _ in range(iterations):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y)
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.eye(x.shape[1]) * 1e-9
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(w[0]), float(w[1]) if fit_intercept else 0.0


def platt_apply(raw: np.ndarray, a: float, b: float) -> np.ndarray:
    return _sigmoid(a * np.asarray(raw, dtype=np.float64) + b)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney with average ranks); NaN with one class only."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def pinball(y: np.ndarray, pred: np.ndarray, alpha: float) -> float:
    """Mean quantile (pinball) loss at level alpha."""
    diff = np.asarray(y) - np.asarray(pred)
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))


def ndcg(relevance: np.ndarray, score: np.ndarray, groups: np.ndarray, k: int) -> float:
    """Mean NDCG@k over groups (LightGBM's gain 2^rel - 1); groups without any gain are skipped."""
    order = np.lexsort((-score, groups))
    rel, grp = relevance[order], groups[order]
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
    ends = np.r_[starts[1:], len(grp)]
    values = []
    for s, e in zip(starts, ends, strict=True):
        gains = 2.0 ** rel[s:e] - 1
        top = min(k, e - s)
        discount = 1 / np.log2(np.arange(2, top + 2))
        ideal = np.sort(gains)[::-1][:top] @ discount
        if ideal > 0:
            values.append((gains[:top] @ discount) / ideal)
    return float(np.mean(values)) if values else float("nan")


# ---------------------------------------------------------------------------------------------
# reasons


class PathContributions:
    """Per-feature contributions of a booster's prediction, read along each tree's path.

    The same additive decomposition as LightGBM's `pred_contrib` layout (one column per input
    plus the bias; the row sums to the raw score), but credited along the decision path
    (treeinterpreter / Saabas): each split gives its feature the change in the node value it
    causes. Precomputed per leaf at load time, a batch costs one `pred_leaf` predict and one
    gather — a small fraction of TreeSHAP's time, which would not fit a per-bar budget.
    """

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster = booster
        n_inputs = booster.num_feature()
        trees = booster.dump_model()["tree_info"]
        width = max(t["num_leaves"] for t in trees)
        self.table = np.zeros((len(trees), width, n_inputs))
        self.bias = 0.0
        for t, tree in enumerate(trees):
            root = tree["tree_structure"]
            if "leaf_value" in root:  # a tree without splits: all of it is bias
                self.bias += root["leaf_value"]
                continue
            self.bias += root["internal_value"]
            stack = [(root, np.zeros(n_inputs))]
            while stack:
                node, path = stack.pop()
                for side in ("left_child", "right_child"):
                    child = node[side]
                    step = path.copy()
                    value = child.get("leaf_value", child.get("internal_value"))
                    step[node["split_feature"]] += value - node["internal_value"]
                    if "leaf_index" in child:
                        self.table[t, child["leaf_index"]] = step
                    else:
                        stack.append((child, step))
        self._trees = np.arange(len(trees))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(rows, inputs + 1): contributions, then the bias; each row sums to the raw score."""
        leaves = self.booster.predict(x, pred_leaf=True, num_threads=1).astype(np.intp)
        contrib = self.table[self._trees[None, :], leaves].sum(axis=1)
        return np.column_stack([contrib, np.full(len(x), self.bias)])


# ---------------------------------------------------------------------------------------------
# isotonic calibration


def isotonic_fit(
    x: np.ndarray, y: np.ndarray, max_points: int = 64
) -> tuple[list[float], list[float]]:
    """Non-decreasing fit of y on x (pool-adjacent-violators), as interpolation knots.

    Used two ways: as a probability calibration (y in {0, 1}) and as the map from confidence to
    the edge realised on validation. Blocks are pooled to at most `max_points` knots, each
    resting on at least 1/max_points of the points; `isotonic_apply` interpolates between them
    and holds the ends flat.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("isotonic_fit needs at least one point")
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    # pool equal x first, then merge violating neighbours (classic PAV on block sums)
    ux, start = np.unique(xs, return_index=True)
    sums = np.add.reduceat(ys, start)
    counts = np.diff(np.r_[start, len(xs)]).astype(np.float64)
    block_sum: list[float] = []
    block_n: list[float] = []
    block_x: list[float] = []
    for s, n, xv in zip(sums, counts, ux, strict=True):
        block_sum.append(float(s))
        block_n.append(float(n))
        block_x.append(float(xv) * n)
        while len(block_sum) > 1 and block_sum[-2] / block_n[-2] > block_sum[-1] / block_n[-1]:
            s2, n2, x2 = block_sum.pop(), block_n.pop(), block_x.pop()
            block_sum[-1] += s2
            block_n[-1] += n2
            block_x[-1] += x2
    means = np.array(block_sum) / np.array(block_n)
    centres = np.array(block_x) / np.array(block_n)
    weights = np.array(block_n)
    # pool consecutive blocks until each holds at least 1/max_points of the weight: PAV's end
    # blocks can be single points, and a knot should rest on many (still monotone: the pooled
    # means of consecutive non-decreasing blocks do not decrease)
    need = weights.sum() / max_points
    groups: list[list[int]] = [[]]
    for i in range(len(means)):
        groups[-1].append(i)
        if weights[groups[-1]].sum() >= need:
            groups.append([])
    if not groups[-1]:
        groups.pop()
    if len(groups) > 1 and weights[groups[-1]].sum() < need:
        groups[-2].extend(groups.pop())
    w = np.array([weights[g].sum() for g in groups])
    means = np.array([(means[g] * weights[g]).sum() for g in groups]) / w
    centres = np.array([(centres[g] * weights[g]).sum() for g in groups]) / w
    return centres.tolist(), means.tolist()


def isotonic_apply(x: np.ndarray, knots_x: Sequence[float], knots_y: Sequence[float]) -> np.ndarray:
    """The isotonic fit at x: linear between knots, flat beyond the ends."""
    return np.interp(np.asarray(x, dtype=np.float64), knots_x, knots_y)


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Mean squared error of probabilities against 0/1 outcomes (lower is better calibrated)."""
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))
