//! Predictions from usage series, as plain statistics a reviewer can check by hand: a robust
//! linear trend (Theil–Sen, with Sen's confidence interval) and the time until it reaches a
//! capacity; a daily profile of seasonal medians and the peak it forecasts for the next day;
//! anomalies as robust scores of what is left once the season is taken out, above a threshold
//! that keeps false alarms on noise under 1 % a series; and the gaps in a series. No model
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

/// The false alarms a series of pure noise may raise in one window: at most 1 % of such series
/// show any anomaly at all, however many points they have.
pub const FALSE_ALARM_RATE: f64 = 0.01;

/// The score above which one of `n` points is an anomaly: the two-sided Gaussian quantile of
/// `FALSE_ALARM_RATE / n` (Bonferroni), so that noise of `n` points raises a false alarm with
/// probability at most [`FALSE_ALARM_RATE`]. About 4.4 for 1,000 points, 4.9 for a fortnight
/// at 2-minute steps; never below Iglewicz and Hoaglin's 3.5.
pub fn anomaly_threshold(n: usize) -> f64 {
    let per_point = FALSE_ALARM_RATE / n.max(1) as f64;
    normal_quantile(1.0 - per_point / 2.0).max(3.5)
}

/// Each value's robust score against the series' median, in robust standard deviations: the
/// MAD's (`0.6745 × (x − median) / MAD`); when more than half the values are equal (MAD 0), the
/// mean absolute deviation's (`(x − median) / (1.2533 × meanAD)`); and for a constant series,
/// a hundredth of its level (a millionth when the level is 0), so that any departure from a
/// constant shows.
pub fn robust_z(values: &[f64]) -> Vec<f64> {
    if values.is_empty() {
        return vec![];
    }
    let median = median_of(&mut values.to_vec());
    let deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
    let mad = median_of(&mut deviations.clone());
    let mean_ad = deviations.iter().sum::<f64>() / deviations.len() as f64;
    let sigma = if mad > 0.0 {
        mad / 0.6745
    } else if mean_ad > 0.0 {
        1.2533 * mean_ad
    } else {
        (median.abs() / 100.0).max(1e-6)
    };
    values.iter().map(|v| (v - median) / sigma).collect()
}

/// The points of `points` far from their season: each value less its seasonal level, the
/// medians of its time of day (of its weekday and time, when the series spans two weeks or
/// more) in slots of 15, 30 or 60 minutes (the finest with five points a slot), interpolated
/// between slot centres; scored by [`robust_z`] over these residuals, above
/// [`anomaly_threshold`] for the series' length. As `(time, value, score)`. A daily peak is
/// the season, not an anomaly.
pub fn anomalies(points: &[(f64, f64)]) -> Vec<(f64, f64, f64)> {
    if points.is_empty() {
        return vec![];
    }
    let span = points[points.len() - 1].0 - points[0].0;
    let period = if span >= 14.0 * 86_400.0 {
        7.0 * 86_400.0
    } else {
        86_400.0
    };
    let slot = [900.0, 1800.0, 3600.0]
        .into_iter()
        .find(|slot| points.len() as f64 * slot / period >= 5.0)
        .unwrap_or(3600.0);
    let slots = (period / slot) as usize;
    let index = |t: f64| ((t.rem_euclid(period) / slot) as usize).min(slots - 1);
    let mut by_slot: Vec<Vec<f64>> = vec![Vec::new(); slots];
    for (t, v) in points {
        by_slot[index(*t)].push(*v);
    }
    let medians: Vec<Option<f64>> = by_slot
        .into_iter()
        .map(|mut values| (!values.is_empty()).then(|| median_of(&mut values)))
        .collect();
    // The level at `t`: between the medians of the two slot centres around it, on the cycle;
    // a slot without points takes its neighbour's. One of the two is `t`'s own slot, which
    // holds `t`: both are never empty.
    let level = |t: f64, value: f64| {
        let at = t.rem_euclid(period) / slot - 0.5;
        let before = at.floor().rem_euclid(slots as f64) as usize;
        let after = (before + 1) % slots;
        let share = at - at.floor();
        match (medians[before], medians[after]) {
            (Some(a), Some(b)) => a + (b - a) * share,
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => value,
        }
    };
    let residuals: Vec<f64> = points.iter().map(|(t, v)| v - level(*t, *v)).collect();
    let threshold = anomaly_threshold(points.len());
    robust_z(&residuals)
        .into_iter()
        .zip(points)
        .filter(|(z, _)| z.abs() > threshold)
        .map(|(z, (t, v))| (*t, *v, z))
        .collect()
}

/// The evidence line of `found` anomalies among `points`, the latest at `latest` with `score`:
/// the count, the method and its false-alarm rate, in words a reviewer can check.
pub fn describe_anomalies(found: usize, points: usize, latest: &str, score: f64) -> String {
    format!(
        "{found} point{} of {points} more than {:.1} robust standard deviations from the usual level of their hour (a threshold that noise crosses in under 1 % of series), the latest {latest} ({score:.1})",
        if found == 1 { "" } else { "s" },
        anomaly_threshold(points)
    )
}

/// The standard normal quantile of `p` (Acklam's rational approximation, relative error under
/// 1.2e-9).
fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The share of a series' span (first to last point) that lies in gaps: each stretch between
/// consecutive points longer than one and a half steps, less the one step it should have been.
pub fn gap_share(points: &[(f64, f64)], step: f64) -> f64 {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return 0.0;
    };
    let span = last.0 - first.0;
    if span <= 0.0 {
        return 0.0;
    }
    let missing: f64 = points
        .windows(2)
        .map(|w| w[1].0 - w[0].0)
        .filter(|dt| *dt > 1.5 * step)
        .map(|dt| dt - step)
        .sum();
    missing / span
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

    /// Gaussian noise by Box–Muller from a seeded generator.
    fn gaussian(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        move || (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos()
    }

    /// A fortnight at 2-minute steps.
    fn fortnight(mut value: impl FnMut(f64, usize) -> f64) -> Vec<(f64, f64)> {
        let start = 1_700_000_000.0;
        (0..14 * 720)
            .map(|i| {
                let t = start + i as f64 * 120.0;
                (t, value(t, i))
            })
            .collect()
    }

    #[test]
    fn noise_raises_an_alarm_in_at_most_five_of_a_hundred_series() {
        let alarmed = (0..100)
            .filter(|seed| {
                let mut noise = gaussian(*seed);
                let series = fortnight(|_, _| 0.5 + 0.05 * noise());
                !anomalies(&series).is_empty()
            })
            .count();
        assert!(alarmed <= 5, "{alarmed} of 100 noise series alarmed");
        assert!(
            (anomaly_threshold(10_080) - 4.9).abs() < 0.1,
            "{}",
            anomaly_threshold(10_080)
        );
    }

    #[test]
    fn a_daily_peak_is_the_season_not_an_anomaly() {
        let mut noise = gaussian(7);
        let peaked = fortnight(|t, _| {
            let hour = (t / 3600.0) % 24.0;
            let peak = 2.5 * (-((hour - 14.0) / 1.5).powi(2)).exp();
            0.5 + peak + 0.03 * noise()
        });
        assert_eq!(anomalies(&peaked), vec![], "a daily peak");
    }

    #[test]
    fn a_single_spike_shows_on_a_flat_series_and_on_a_noisy_one() {
        let mut flat = fortnight(|_, _| 0.25);
        flat[5000].1 = 2.2;
        let found = anomalies(&flat);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, 2.2);
        let mut noise = gaussian(3);
        let mut noisy = fortnight(|_, _| 0.25 + 0.02 * noise());
        noisy[7000].1 = 2.2;
        let found = anomalies(&noisy);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, 2.2);
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
    }

    #[test]
    fn the_gap_share_is_the_part_of_the_span_without_points() {
        let every_minute: Vec<(f64, f64)> = (0..=100).map(|i| (f64::from(i) * 60.0, 1.0)).collect();
        assert_eq!(gap_share(&every_minute, 60.0), 0.0);
        // Minutes 20 to 50 missing: 30 of the 100 minutes.
        let holed: Vec<(f64, f64)> = every_minute
            .iter()
            .copied()
            .filter(|(t, _)| *t <= 20.0 * 60.0 || *t >= 50.0 * 60.0)
            .collect();
        assert!(
            (gap_share(&holed, 60.0) - 0.29).abs() < 1e-9,
            "{}",
            gap_share(&holed, 60.0)
        );
        assert_eq!(gap_share(&[], 60.0), 0.0);
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
