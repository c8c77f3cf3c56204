//! Predictions from usage series, as plain statistics a reviewer can check by hand: a robust
//! linear trend (Theil–Sen, with Sen's confidence interval) and the time until it reaches a
//! capacity; a daily profile of seasonal medians and the peak it forecasts for the next day;
//! robust z-scores (median and MAD) that flag anomalies; and the gaps in a series. No model
//! weights, nothing fitted that the pull request cannot state. Pure.

/// Points a Theil–Sen fit uses at most: an evenly spaced subsample keeps the pairwise slopes
/// (quadratic in the points) to about 20,000.
const FIT_POINTS: usize = 200;

/// A robust line through a series: `value = intercept + slope × seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Units a second; the median of the pairwise slopes.
    pub slope: f64,
    /// The value at time 0 (the median of `value - slope × time`).
    pub intercept: f64,
    /// The slope's 95 % interval (Sen's, from Kendall's statistic).
    pub slope_low: f64,
    /// Upper end of that interval.
    pub slope_high: f64,
    /// The points the fit used.
    pub points: usize,
}

impl Trend {
    /// The fitted value at `at` (unix seconds).
    pub fn at(&self, at: f64) -> f64 {
        self.intercept + self.slope * at
    }
}

/// When a rising trend reaches a capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    /// Seconds from `now` at the fitted slope.
    pub seconds: f64,
    /// At the interval's steepest slope (the earliest).
    pub earliest: f64,
    /// At the interval's shallowest slope (the latest); infinite when that slope does not rise.
    pub latest: f64,
}

/// The Theil–Sen fit of `points` (`(unix seconds, value)`); `None` with fewer than three
/// points or no two at different times.
pub fn theil_sen(points: &[(f64, f64)]) -> Option<Trend> {
    let sample: Vec<(f64, f64)> = if points.len() > FIT_POINTS {
        let step = points.len() as f64 / FIT_POINTS as f64;
        (0..FIT_POINTS)
            .map(|i| points[(i as f64 * step) as usize])
            .collect()
    } else {
        points.to_vec()
    };
    let n = sample.len();
    if n < 3 {
        return None;
    }
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    for (i, a) in sample.iter().enumerate() {
        for b in &sample[i + 1..] {
            let dt = b.0 - a.0;
            if dt != 0.0 {
                slopes.push((b.1 - a.1) / dt);
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_unstable_by(f64::total_cmp);
    let slope = median_sorted(&slopes);
    let mut offsets: Vec<f64> = sample.iter().map(|(t, v)| v - slope * t).collect();
    offsets.sort_unstable_by(f64::total_cmp);
    let intercept = median_sorted(&offsets);
    // Sen (1968): the interval's ends are the slopes ranked (N ∓ C) / 2, C = z √Var(S).
    let nf = n as f64;
    let c = 1.96 * (nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0).sqrt();
    let count = slopes.len() as f64;
    let rank = |r: f64| slopes[(r.round().max(0.0) as usize).min(slopes.len() - 1)];
    Some(Trend {
        slope,
        intercept,
        slope_low: rank((count - c) / 2.0),
        slope_high: rank((count + c) / 2.0),
        points: n,
    })
}

/// When `trend` reaches `capacity`, counted from `now`; `None` when it does not rise.
pub fn time_to(trend: &Trend, capacity: f64, now: f64) -> Option<Eta> {
    if trend.slope <= 0.0 {
        return None;
    }
    let current = trend.at(now);
    let left = (capacity - current).max(0.0);
    let at = |slope: f64| {
        if slope > 0.0 {
            left / slope
        } else {
            f64::INFINITY
        }
    };
    Some(Eta {
        seconds: at(trend.slope),
        earliest: at(trend.slope_high),
        latest: at(trend.slope_low),
    })
}

/// A series' typical day: the median of every hour of the day (UTC) over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyProfile {
    /// The median of each hour, 0 to 23; `None` for an hour with no point.
    pub hours: [Option<f64>; 24],
    /// The 10th and 90th percentiles of each hour: the spread the median leaves out.
    pub spread: [Option<(f64, f64)>; 24],
    /// How many whole days the series covers.
    pub days: f64,
}

impl DailyProfile {
    /// The forecast peak of the next day: the highest hourly median, and its hour.
    pub fn peak(&self) -> Option<(usize, f64)> {
        self.hours
            .iter()
            .enumerate()
            .filter_map(|(h, v)| Some((h, (*v)?)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// The daily profile of `points` (seasonal medians by hour of day).
pub fn daily_profile(points: &[(f64, f64)]) -> DailyProfile {
    let mut by_hour: Vec<Vec<f64>> = vec![vec![]; 24];
    for (t, v) in points {
        let hour = ((t.rem_euclid(86_400.0)) / 3_600.0) as usize;
        by_hour[hour.min(23)].push(*v);
    }
    let mut hours = [None; 24];
    let mut spread = [None; 24];
    for (h, values) in by_hour.iter_mut().enumerate() {
        if !values.is_empty() {
            values.sort_unstable_by(f64::total_cmp);
            hours[h] = Some(median_sorted(values));
            let at = |p: f64| values[((values.len() - 1) as f64 * p).round() as usize];
            spread[h] = Some((at(0.1), at(0.9)));
        }
    }
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (b.0 - a.0) / 86_400.0,
        _ => 0.0,
    };
    DailyProfile {
        hours,
        spread,
        days: span,
    }
}

/// The profile of one day of the week (0 is Thursday, as 1970-01-01 was; use
/// [`weekday_of`]): the median of each of its hours over the weeks of the series. `None` when
/// that weekday has no point.
pub fn weekday_profile(points: &[(f64, f64)], weekday: usize) -> Option<DailyProfile> {
    let day: Vec<(f64, f64)> = points
        .iter()
        .filter(|(t, _)| weekday_of(*t) == weekday)
        .copied()
        .collect();
    if day.is_empty() {
        return None;
    }
    let mut profile = daily_profile(&day);
    profile.days = match (points.first(), points.last()) {
        (Some(a), Some(b)) => (b.0 - a.0) / 86_400.0,
        _ => 0.0,
    };
    Some(profile)
}

/// The day of the week of `t` (unix seconds), 0 for Thursday.
pub fn weekday_of(t: f64) -> usize {
    ((t / 86_400.0).floor() as i64).rem_euclid(7) as usize
}

/// The score above which a point is an anomaly (Iglewicz and Hoaglin's modified z-score).
pub const ANOMALY_SCORE: f64 = 3.5;

/// Each value's modified z-score against the series' median and MAD:
/// `0.6745 × (x − median) / MAD`. All zero when the MAD is zero (a flat series).
pub fn robust_z(values: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        return vec![];
    }
    let median = median_of(&mut values.to_vec());
    let mad = median_of(
        &mut values
            .iter()
            .map(|v| (v - median).abs())
            .collect::<Vec<_>>(),
    );
    if mad == 0.0 {
        return vec![0.0; values.len()];
    }
    values.iter().map(|v| 0.6745 * (v - median) / mad).collect()
}

/// The points of `points` whose value is an anomaly against the whole series.
pub fn anomalies(points: &[(f64, f64)]) -> Vec<(f64, f64, f64)> {
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    robust_z(&values)
        .into_iter()
        .zip(points)
        .filter(|(z, _)| z.abs() > ANOMALY_SCORE)
        .map(|(z, (t, v))| (*t, *v, z))
        .collect()
}

/// The stretches longer than `longest` between consecutive points, as `(from, to)`.
pub fn gaps(points: &[(f64, f64)], longest: f64) -> Vec<(f64, f64)> {
    points
        .windows(2)
        .filter(|w| w[1].0 - w[0].0 > longest)
        .map(|w| (w[0].0, w[1].0))
        .collect()
}

/// The median by selection (the values are reordered), not by a sort.
fn median_of(values: &mut [f64]) -> f64 {
    let n = values.len();
    let (below, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::MIN, f64::max);
        (lower + upper) / 2.0
    }
}

fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise in [-1, 1].
    fn noise(i: usize) -> f64 {
        let x = (i as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((x >> 33) as f64 / (1u64 << 31) as f64) - 1.0
    }

    const DAY: f64 = 86_400.0;

    #[test]
    fn a_linear_fill_reaching_capacity_in_three_days_gives_the_eta_within_ten_percent() {
        // 10 GiB volume, 7 days of history at 5-minute steps, filling to be full 3 days on,
        // with noise and a few outliers a least-squares fit would follow.
        let capacity = 10.0 * 1024f64.powi(3);
        let now = 1_800_000_000.0;
        let rate = capacity * 0.5 / (10.0 * DAY);
        let points: Vec<(f64, f64)> = (0..2016)
            .map(|i| {
                let t = now - 7.0 * DAY + i as f64 * 300.0;
                let full_at = now + 3.0 * DAY;
                let mut v = capacity - rate * (full_at - t) + noise(i) * 0.01 * capacity;
                if i % 400 == 7 {
                    v *= 0.3;
                }
                (t, v)
            })
            .collect();
        let trend = theil_sen(&points).unwrap();
        let eta = time_to(&trend, capacity, now).unwrap();
        let days = eta.seconds / DAY;
        assert!((days - 3.0).abs() <= 0.3, "{days} days");
        assert!(
            eta.earliest <= eta.seconds && eta.seconds <= eta.latest,
            "{eta:?}"
        );
        assert!(
            time_to(
                &Trend {
                    slope: -1.0,
                    ..trend
                },
                capacity,
                now
            )
            .is_none()
        );
    }

    #[test]
    fn a_daily_sine_with_noise_forecasts_its_peak_within_ten_percent() {
        // Two weeks of CPU at 5-minute steps: 1 core at 03:00 UTC, 3 cores at 15:00, noise ±10 %.
        let points: Vec<(f64, f64)> = (0..4032)
            .map(|i| {
                let t = 1_800_000_000.0 - (1_800_000_000.0f64).rem_euclid(DAY) + i as f64 * 300.0;
                let phase = (t.rem_euclid(DAY) / DAY - 0.375) * std::f64::consts::TAU;
                let v = 2.0 + phase.sin() + noise(i) * 0.2;
                (t, v)
            })
            .collect();
        let profile = daily_profile(&points);
        let (hour, peak) = profile.peak().unwrap();
        assert!((peak - 3.0).abs() <= 0.3, "{peak}");
        assert!((14..=16).contains(&hour), "{hour}");
        assert!(profile.days > 13.9);
    }

    #[test]
    fn a_weekly_pattern_forecasts_the_busy_weekday_higher_than_the_typical_day() {
        // Four weeks, hourly: 1 core at 14:00 every day but 3 cores at 14:00 on one weekday.
        let busy = weekday_of(1_800_000_000.0);
        let points: Vec<(f64, f64)> = (0..24 * 28)
            .map(|h| {
                let t = 1_800_000_000.0 - 28.0 * DAY + f64::from(h) * 3600.0;
                let hour = (t.rem_euclid(DAY) / 3600.0) as usize;
                let peak = if weekday_of(t) == busy { 3.0 } else { 1.0 };
                (t, if hour == 14 { peak } else { 0.3 })
            })
            .collect();
        let typical = daily_profile(&points).peak().unwrap();
        assert!((typical.1 - 1.0).abs() < 1e-9, "{typical:?}");
        let on_busy = weekday_profile(&points, busy).unwrap().peak().unwrap();
        assert_eq!(on_busy, (14, 3.0));
    }

    #[test]
    fn an_injected_spike_is_flagged_and_a_normal_day_is_not() {
        let day: Vec<(f64, f64)> = (0..288)
            .map(|i| (i as f64 * 300.0, 0.5 + noise(i) * 0.05))
            .collect();
        assert!(anomalies(&day).is_empty(), "{:?}", anomalies(&day));
        let mut spiked = day.clone();
        spiked[100].1 = 2.5;
        let found = anomalies(&spiked);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, 100.0 * 300.0);
        assert!(robust_z(&[1.0, 1.0, 1.0]).iter().all(|z| *z == 0.0));
    }

    #[test]
    fn a_six_hour_gap_is_reported_as_a_gap() {
        let points: Vec<(f64, f64)> = (0..288)
            .map(|i| i as f64 * 300.0)
            .filter(|t| !(36_000.0..57_600.0).contains(t))
            .map(|t| (t, 1.0))
            .collect();
        let found = gaps(&points, 900.0);
        assert_eq!(found, [(35_700.0, 57_600.0)]);
        assert!((found[0].1 - found[0].0 - 6.0 * 3600.0).abs() <= 300.0);
    }
}
