"""Grouped, stratified train / val / test splits of a labelled item table.

Items of one product (``product_id``) always land in the same split, and the split is
stratified over every label of every attribute at once with iterative stratification
(Sechidis, Tsoumakas & Vlahavas, ECML PKDD 2011) run at the product level: a product is
one example whose label vector is the number of its items carrying each label, and whose
size is its number of items. Subset k wants fraction r_k of every label's items and of
all items.

Sechidis takes the label with the fewest remaining examples and hands its examples, one by
one, to the subset that still wants the most of that label (ties: the subset wanting more
items, then at random). Handing out one unit at a time to the neediest subset ends where
the remaining wants are levelled ("water filling"), so here each label's examples are
handed out in one vectorised step: level the wants, round to integers, deal. The loop
left is over labels (at most L passes), which is what makes 300,000 products take about
a second. Two additions keep the label counts close to wanted beyond the label being
placed:

- dealing: the examples of a pass are sorted so that alike ones (same counts of the
  labels still to come, same size) sit together, and dealt like cards, so each subset
  gets its share of every kind of example rather than a random stretch (Sechidis visits
  them in random order, whose noise piles up on the frequent labels placed last);
- refinement: a few single-product moves, each the one that most reduces the chi-square
  distance between the label and item counts and the wanted ones.

Products with no label at all are dealt by item count at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from tailtag.attributes import KINDS, SINGLE_LABEL

SPLITS: tuple[str, ...] = ("train", "val", "test")


def _list_array(values: Any, attribute: str) -> pa.Array:
    """One list<string> array (nulls kept) from a pyarrow array, pandas Series or list."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        try:
            values = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise TypeError(
                f"attribute {attribute!r}: cells must be lists of strings or null: {err}"
            ) from err
    if pa.types.is_null(values.type):  # every cell null: nothing to type it from
        values = pa.nulls(len(values), pa.list_(pa.string()))
    if not (pa.types.is_list(values.type) or pa.types.is_large_list(values.type)) or not (
        pa.types.is_string(values.type.value_type)
        or pa.types.is_large_string(values.type.value_type)
        or pa.types.is_null(values.type.value_type)
    ):
        raise TypeError(
            f"attribute {attribute!r}: expected list<string> cells (null = not labelled), "
            f"got {values.type}"
        )
    return values.cast(pa.list_(pa.string()))


def _item_name(item_ids: Sequence[Any] | None, row: int) -> str:
    return f"item {item_ids[row]!r} (row {row})" if item_ids is not None else f"row {row}"


def labelled_mask(values: Any, *, attribute: str) -> np.ndarray:
    """[n] bool: the cell is not null, so the item is labelled for this attribute."""
    return _list_array(values, attribute).is_valid().to_numpy(zero_copy_only=False)


def label_indicators(
    values: Any,
    labels: Sequence[str],
    *,
    attribute: str,
    kind: str,
    item_ids: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Indicators of one attribute's labels.

    values: n cells, each a list of label strings or null (not labelled for this attribute),
    as a pyarrow list<string> array, a pandas Series or a list. labels: the vocabulary (C).
    Returns (indicators [n, C] bool, labelled [n] bool). A label outside the vocabulary, a null
    or repeated label inside a cell, or a single_label cell without exactly one label is a
    ValueError naming the item (``item_ids[row]`` when given) and the label.
    """
    if kind not in KINDS:
        raise ValueError(f"attribute {attribute!r}: kind must be one of {KINDS}, got {kind!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"attribute {attribute!r}: vocabulary lists a label twice: {list(labels)}")
    arr = _list_array(values, attribute)
    n, c = len(arr), len(labels)
    if item_ids is not None and len(item_ids) != n:
        raise ValueError(f"attribute {attribute!r}: {n} cells but {len(item_ids)} item ids")
    labelled = arr.is_valid().to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(arr)
    # list_parent_indices would also count values hidden behind null cells; flatten skips them
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    parents = np.repeat(np.arange(n, dtype=np.int64), lengths)
    codes_arr = pc.index_in(flat, value_set=pa.array(list(labels), pa.string()))
    if codes_arr.null_count:
        bad = int(np.flatnonzero(codes_arr.is_null().to_numpy(zero_copy_only=False))[0])
        label = flat[bad].as_py()
        what = "a null label" if label is None else f"label {label!r}, not in the vocabulary"
        raise ValueError(
            f"attribute {attribute!r}: {_item_name(item_ids, int(parents[bad]))} has {what} "
            f"{list(labels)}"
        )
    codes = codes_arr.to_numpy(zero_copy_only=False).astype(np.int64)
    per_cell = np.bincount(parents * c + codes, minlength=n * c).reshape(n, c)
    if per_cell.size and per_cell.max() > 1:
        row, col = np.argwhere(per_cell > 1)[0]
        raise ValueError(
            f"attribute {attribute!r}: {_item_name(item_ids, int(row))} lists label "
            f"{labels[col]!r} more than once"
        )
    if kind == SINGLE_LABEL:
        counts = per_cell.sum(axis=1)
        wrong = np.flatnonzero(labelled & (counts != 1))
        if wrong.size:
            row = int(wrong[0])
            raise ValueError(
                f"attribute {attribute!r} is single_label but {_item_name(item_ids, row)} has "
                f"{int(counts[row])} labels: {arr[row].as_py()}"
            )
    return per_cell.astype(bool), labelled


def label_matrix(
    columns: Mapping[str, Any],
    attributes: Mapping[str, Mapping[str, Any]],
    *,
    item_ids: Sequence[Any] | None = None,
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """All attributes' indicators side by side: one column per (attribute, label).

    columns: attribute name -> its n cells (see `label_indicators`). attributes: name ->
    {"kind": ..., "labels": [...]}, as params.yaml's `attributes`. Returns ([n, L] bool,
    the L (attribute, label) pairs, attributes and labels in the given order).
    """
    missing = [name for name in attributes if name not in columns]
    if missing:
        raise KeyError(f"no label column for attribute(s) {missing}")
    blocks, names = [], []
    for name, spec in attributes.items():
        ind, _ = label_indicators(
            columns[name], spec["labels"], attribute=name, kind=spec["kind"], item_ids=item_ids
        )
        blocks.append(ind)
        names += [(name, label) for label in spec["labels"]]
    if not blocks:
        n = len(item_ids) if item_ids is not None else 0
        return np.zeros((n, 0), dtype=bool), names
    return np.concatenate(blocks, axis=1), names


def _fractions(fractions: Mapping[str, float]) -> np.ndarray:
    if set(fractions) != set(SPLITS):
        raise ValueError(f"split fractions must name exactly {SPLITS}, got {sorted(fractions)}")
    r = np.array([float(fractions[s]) for s in SPLITS])
    if (r < 0).any() or not np.isclose(r.sum(), 1.0, rtol=0, atol=1e-9):
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {dict(fractions)}")
    return r


def _water_level(need: np.ndarray, total: float) -> np.ndarray:
    """Amounts a_k >= 0 with sum total that level the wants: a_k = max(need_k - t, 0).

    This is where handing out `total` units one at a time to the currently neediest
    subset ends (up to the rounding done by `_round_shares`).
    """
    if total <= 0:
        return np.zeros_like(need)
    ranked = np.sort(need)[::-1]
    for k in range(1, len(ranked) + 1):
        level = (ranked[:k].sum() - total) / k
        if k == len(ranked) or level >= ranked[k]:
            break
    return np.maximum(need - level, 0.0)


def _round_shares(
    shares: np.ndarray, total: int, tiebreak: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Integers summing to `total`, floor(shares) plus one for the largest remainders.

    Equal remainders go to the larger `tiebreak` (wanted items), then at random.
    """
    shares = np.round(shares, 9)  # float noise must not turn 3.0 into 2.999... + a unit
    base = np.floor(shares).astype(np.int64)
    extra = int(total - base.sum())
    if extra > 0:
        frac = shares - base
        order = np.lexsort((rng.random(len(shares)), -tiebreak, -frac))
        base[order[:extra]] += 1
    elif extra < 0:  # cannot happen unless shares overshoot total; take from the smallest
        order = np.lexsort((rng.random(len(shares)), tiebreak, shares - base))
        for k in order:
            take = min(-extra, int(base[k]))
            base[k] -= take
            extra += take
    return base


def _deal_slots(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """sum(counts) subset indices in which subset k appears counts[k] times, evenly spread.

    Subset k's j-th slot sits at (j + u_k) / counts[k] (u_k random); slots in that order.
    """
    owner = np.repeat(np.arange(len(counts)), counts)
    within = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    position = (within + rng.random(len(counts))[owner]) / np.repeat(np.maximum(counts, 1), counts)
    return owner[np.argsort(position, kind="stable")]


def _deal(
    weights: np.ndarray, targets: np.ndarray, tiebreak: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Subset of each of m ordered examples, so subset k gets weights summing to ~targets[k].

    Dealt like cards rather than cut in stretches, so every run of alike examples in the
    order is shared in proportion to the targets. Examples of equal weight are dealt
    together, heaviest first, each in proportion to what the subsets still lack; the
    lightest are levelled last, so with any unit-weight examples the sums are exact.
    """
    out = np.empty(len(weights), dtype=np.int64)
    lack = targets.astype(float)
    classes = np.unique(weights)[::-1]
    for i, w in enumerate(classes):
        members = np.flatnonzero(weights == w)
        mass = float(w) * len(members)
        positive = np.maximum(lack, 0.0)
        if i == len(classes) - 1 or positive.sum() <= 0:
            shares = _water_level(lack, mass)
        else:
            shares = positive * (mass / positive.sum())
        counts = _round_shares(shares / w, len(members), tiebreak, rng)
        out[members] = _deal_slots(counts, rng)
        lack -= counts * float(w)
    return out


def _alike_together(
    y: np.ndarray, sizes: np.ndarray, remaining: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Order of m examples that puts alike ones next to each other, at random among equals.

    Sorted by their counts of the labels still to come, the most frequent first (those have
    the least room left to even out later), then by size. Dealing this order (`_deal`)
    shares every combination of labels in proportion, not just the label being placed.
    """
    later = np.flatnonzero(remaining > 0)
    later = later[np.argsort(remaining[later], kind="stable")]  # lexsort: last key is primary
    return np.lexsort((rng.random(len(sizes)), sizes, *(y[:, j] for j in later)))


def _refine(
    y: np.ndarray,
    sizes: np.ndarray,
    subset: np.ndarray,
    r: np.ndarray,
    *,
    max_moves: int,
    candidates: int = 20_000,
) -> int:
    """Move single groups between subsets while that brings the counts closer to wanted.

    Minimises sum_k sum_j (n_kj - r_k n_j)^2 / (r_k n_j) over the labels j and the item
    count (a chi-square distance, so a unit off on a rare label weighs more than on a
    frequent one), one best move at a time; never moves into a subset wanted empty. Only
    the first `candidates` groups may move (the caller's order is random), which keeps a
    move cheap on large data; what is left to repair by then is a few units per label.
    Changes `subset` in place; returns the number of moves.
    """
    z_all = np.column_stack([y, sizes]).astype(float)  # [P, J]
    n_subsets = len(r)
    expected = np.outer(r, z_all.sum(axis=0))  # [K, J]
    inv = np.divide(1.0, expected, out=np.zeros_like(expected), where=expected > 0)
    dev = np.stack([z_all[subset == k].sum(axis=0) for k in range(n_subsets)]) - expected
    z = z_all[:candidates]
    own = subset[:candidates]  # a view: moves write through to `subset`
    rows = np.arange(len(z))
    # Moving group p from a to b changes the distance by
    #   sum_j z_pj^2 (inv_aj + inv_bj) - 2 z_pj (dev_aj inv_aj - dev_bj inv_bj).
    square = (z * z) @ inv.T  # [C, K]
    linear = z @ (dev * inv).T  # [C, K], kept up to date move by move
    closed = r <= 0
    moves = 0
    while moves < max_moves:
        delta = (square[rows, own] - 2 * linear[rows, own])[:, None] + square + 2 * linear
        delta[rows, own] = np.inf
        delta[:, closed] = np.inf
        p, to = divmod(int(np.argmin(delta)), n_subsets)
        if not delta[p, to] < -1e-9:
            break
        was = own[p]
        dev[was] -= z[p]
        dev[to] += z[p]
        linear[:, was] -= z @ (z[p] * inv[was])
        linear[:, to] += z @ (z[p] * inv[to])
        own[p] = to
        moves += 1
    return moves


def iterative_stratification(
    label_counts: np.ndarray,
    sizes: np.ndarray,
    fractions: Sequence[float],
    *,
    seed: int,
    refine: int = 1000,
    progress: bool = False,
) -> np.ndarray:
    """Assign P groups to K subsets, stratified over L labels (Sechidis et al., 2011).

    label_counts: [P, L] non-negative ints, how many items of group p carry label l.
    sizes: [P] items per group (>= 1). fractions: [K] wanted shares of items, summing to 1.
    Subset k wants r_k * sum_p label_counts[p, l] items of label l and r_k * sum(sizes)
    items. Labels are placed rarest remaining first (see the module docstring); then at
    most `refine` single-group moves repair what is left (0: none). Returns [P] subset
    indices in 0..K-1, the same for the same inputs and seed.
    """
    y = np.asarray(label_counts)
    sizes = np.asarray(sizes, dtype=np.int64)
    r = np.asarray(fractions, dtype=float)
    if r.ndim != 1 or not len(r) or (r < 0).any() or not np.isclose(r.sum(), 1.0, atol=1e-9):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {list(r)}")
    if y.ndim != 2 or sizes.shape != (y.shape[0],):
        raise ValueError(f"label_counts must be [P, L] and sizes [P], got {y.shape}, {sizes.shape}")
    if (y < 0).any() or (sizes < 1).any():
        raise ValueError("label counts must be >= 0 and group sizes >= 1")
    n_groups, n_labels = y.shape
    rng = np.random.default_rng(seed)
    # Examples are visited in a random order, as Sechidis visits them one by one.
    order = rng.permutation(n_groups)
    y_cols = np.asfortranarray(y[order].astype(np.int64))  # column slices are contiguous
    sizes = sizes[order]
    want_labels = np.outer(r, y_cols.sum(axis=0)).astype(float)  # [K, L]
    want_items = r * float(sizes.sum())  # [K]
    remaining = y_cols.sum(axis=0)
    open_ = np.ones(n_groups, dtype=bool)
    subset = np.full(n_groups, -1, dtype=np.int64)

    def give(batch: np.ndarray, weights: np.ndarray, need: np.ndarray) -> None:
        total = int(weights.sum())
        targets = _round_shares(_water_level(need, total), total, want_items, rng)
        to = _deal(weights, targets, want_items, rng)
        subset[batch] = to
        open_[batch] = False
        for k in range(len(r)):
            chosen = batch[to == k]
            want_labels[k] -= y_cols[chosen].sum(axis=0)
            want_items[k] -= sizes[chosen].sum()

    n_passes = int((remaining > 0).sum())
    with tqdm(total=n_passes, desc="stratify", unit="label", disable=not progress) as bar:
        while (remaining > 0).any():
            fewest = np.where(remaining > 0, remaining, np.iinfo(np.int64).max)
            tied = np.flatnonzero(fewest == fewest.min())
            label = int(tied[rng.integers(len(tied))]) if len(tied) > 1 else int(tied[0])
            batch = np.flatnonzero(open_ & (y_cols[:, label] > 0))
            batch = batch[_alike_together(y_cols[batch], sizes[batch], remaining, rng)]
            remaining -= y_cols[batch].sum(axis=0)
            give(batch, y_cols[batch, label], want_labels[:, label].copy())
            bar.update(1)
        bar.update(n_passes - bar.n)  # a pass can use up rarer labels' examples too
        rest = np.flatnonzero(open_)
        if rest.size:  # groups without any label: level the item counts
            rest = rest[np.lexsort((rng.random(rest.size), sizes[rest]))]
            give(rest, sizes[rest], want_items.copy())
    if refine and n_groups:
        _refine(y_cols, sizes, subset, r, max_moves=refine)
    out = np.empty(n_groups, dtype=np.int64)
    out[order] = subset
    return out


def _group_codes(groups: Any) -> np.ndarray:
    """[n] int64 codes 0..G-1 of the group keys, -1 for a null key."""
    if isinstance(groups, pa.ChunkedArray):
        groups = groups.combine_chunks()
    if isinstance(groups, pa.Array):
        encoded = pc.dictionary_encode(groups)
        return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if not isinstance(groups, (pd.Series, pd.Index, np.ndarray)):
        groups = np.asarray(list(groups), dtype=object)
    codes, _ = pd.factorize(groups, use_na_sentinel=True)
    return codes.astype(np.int64)


def _split_counts(indicators: np.ndarray, split: np.ndarray, n_splits: int) -> np.ndarray:
    """[K, L] items of each split carrying each label."""
    split = np.asarray(split, dtype=np.int64)
    out = np.empty((n_splits, indicators.shape[1]), dtype=np.int64)
    for col in range(indicators.shape[1]):
        out[:, col] = np.bincount(split, weights=indicators[:, col], minlength=n_splits)
    return out


def grouped_stratified_split(
    indicators: np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    fractions: Mapping[str, float],
    *,
    seed: int,
    refine: int = 1000,
    progress: bool = False,
) -> np.ndarray:
    """Split n items into SPLITS, whole groups at a time, stratified over L labels.

    indicators: [n, L] bool or counts (see `label_matrix`). groups: [n] group keys
    (product ids, never null). fractions: {"train": .8, "val": .1, "test": .1}.
    Returns [n] int8 codes into SPLITS. Items of a group share one code.
    """
    r = _fractions(fractions)
    indicators = np.asarray(indicators)
    codes = _group_codes(groups)
    if len(codes) != indicators.shape[0]:
        raise ValueError(f"{indicators.shape[0]} indicator rows but {len(codes)} group keys")
    if (codes < 0).any():
        raise ValueError(f"row {int(np.flatnonzero(codes < 0)[0])} has no group key (null)")
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    sizes = np.bincount(codes, minlength=n_groups)
    per_group = np.empty((n_groups, indicators.shape[1]), dtype=np.int64)
    for col in range(indicators.shape[1]):
        per_group[:, col] = np.bincount(codes, weights=indicators[:, col], minlength=n_groups)
    subset = iterative_stratification(
        per_group, sizes, r, seed=seed, refine=refine, progress=progress
    )
    return subset[codes].astype(np.int8)


def split_label_counts(
    indicators: np.ndarray, columns: Sequence[tuple[str, str]], split: np.ndarray
) -> pd.DataFrame:
    """Items per (attribute, label) and split: columns attribute, label, train, val, test, total.

    indicators: [n, L] bool; columns: the L (attribute, label) pairs; split: [n] codes into SPLITS.
    """
    if indicators.shape[1] != len(columns):
        raise ValueError(f"{indicators.shape[1]} indicator columns but {len(columns)} names")
    counts = _split_counts(indicators, split, len(SPLITS))
    table = pd.DataFrame(list(columns), columns=["attribute", "label"])
    for k, name in enumerate(SPLITS):
        table[name] = counts[k]
    table["total"] = counts.sum(axis=0)
    return table


def missing_in_eval(
    label_counts: pd.DataFrame, splits: Sequence[str] = ("val", "test")
) -> list[str]:
    """One message per (attribute, label, split) in `splits` with no example there."""
    return [
        f"{row.attribute}/{row.label}: no example in {name} "
        f"({int(row.total)} in all, {int(row.train)} in train)"
        for row in label_counts.itertuples(index=False)
        for name in splits
        if getattr(row, name) == 0
    ]


def share_deviation(indicators: np.ndarray, split: np.ndarray) -> float:
    """max over labels l and non-empty splits k of |n_kl / n_k - n_l / n|.

    n_kl: items of split k with label l; n_k: items in split k; n_l, n: the same over all.
    """
    split = np.asarray(split, dtype=np.int64)
    n_splits = int(split.max()) + 1 if len(split) else 0
    counts = _split_counts(indicators, split, n_splits)
    items = np.bincount(split, minlength=n_splits)
    overall = counts.sum(axis=0) / max(len(split), 1)
    used = items > 0
    shares = counts[used] / items[used, None]
    return float(np.abs(shares - overall).max(initial=0.0))


def fraction_deviation(
    indicators: np.ndarray, split: np.ndarray, fractions: Mapping[str, float]
) -> float:
    """max over labels l (with any example) and splits k of |n_kl / n_l - r_k|.

    The share of each label's items that went to split k against the wanted fraction r_k;
    rare labels dominate it (a label with 10 items cannot do better than 1/10 steps).
    """
    r = _fractions(fractions)
    counts = _split_counts(indicators, split, len(SPLITS))
    total = counts.sum(axis=0)
    used = total > 0
    got = counts[:, used] / total[used]
    return float(np.abs(got - r[:, None]).max(initial=0.0))
