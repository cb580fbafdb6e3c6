//! Quantiles estimated from the cumulative buckets of a histogram, the way
//! PromQL's `histogram_quantile()` estimates them for classic histograms.

/// Estimates the `q` quantile from histogram buckets given as
/// `(upper bound, cumulative count)` pairs in any order.
///
/// Within the bucket that contains the quantile, observations are assumed to be
/// spread evenly, so the result is interpolated between its bounds. The lowest
/// bucket starts at 0, unless its upper bound is 0 or less, and then that
/// bound is returned. A quantile in the `+Inf` bucket returns the highest
/// finite bound.
///
/// Returns `None` where PromQL returns NaN: `q` is NaN, a bound or count is
/// NaN, there is no `+Inf` bucket, there are fewer than two distinct bounds,
/// or there are no observations. A `q` below 0 returns negative infinity and a
/// `q` above 1 returns positive infinity, as PromQL does.
///
/// Buckets with equal bounds are added together, and a count lower than the
/// bucket below it is raised to that count. A scrape taken while the
/// application was updating its buckets can give such counts.
pub fn histogram_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Some(f64::INFINITY);
    }

    let buckets = normalize(buckets)?;
    let observations = buckets.last()?.1;
    if observations <= 0.0 {
        return None;
    }

    let rank = q * observations;
    let last = buckets.len() - 1;
    let index = buckets[..last]
        .iter()
        .position(|&(_, count)| count >= rank)
        .unwrap_or(last);

    interpolate(&buckets, index, rank)
}

/// Interpolates `rank` inside bucket `index` of normalized buckets.
fn interpolate(buckets: &[(f64, f64)], index: usize, rank: f64) -> Option<f64> {
    let (upper, count) = buckets[index];
    if index == buckets.len() - 1 {
        return Some(buckets[index - 1].0);
    }
    if index == 0 && upper <= 0.0 {
        return Some(upper);
    }

    let (lower, count_below) = match index {
        0 => (0.0, 0.0),
        _ => buckets[index - 1],
    };
    let in_bucket = count - count_below;

    // Only q = 0 with an empty lowest bucket gets here; PromQL returns NaN.
    if in_bucket <= 0.0 {
        return None;
    }

    Some(lower + (upper - lower) * ((rank - count_below) / in_bucket))
}

/// Sorts buckets by bound, adds up equal bounds, and makes the counts
/// non-decreasing. Returns `None` for input that has no quantile.
fn normalize(buckets: &[(f64, f64)]) -> Option<Vec<(f64, f64)>> {
    if buckets
        .iter()
        .any(|(le, count)| le.is_nan() || count.is_nan())
    {
        return None;
    }

    let mut sorted = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(sorted.len());
    for (le, count) in sorted {
        match merged.last_mut() {
            Some(last) if last.0 == le => last.1 += count,
            _ => merged.push((le, count)),
        }
    }

    if merged.len() < 2 || merged.last()?.0 != f64::INFINITY {
        return None;
    }

    let mut highest = f64::NEG_INFINITY;
    for bucket in &mut merged {
        highest = highest.max(bucket.1);
        bucket.1 = highest;
    }

    Some(merged)
}
