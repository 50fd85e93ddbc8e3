//! Latency histograms and the JSON report of one load run.
//!
//! Latencies are recorded in nanoseconds in an HDR histogram (three significant digits, up to a
//! minute) per worker, merged at the end, and reported in microseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::Era;

/// Longest latency a histogram records; longer ones are clamped to it.
const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds.
pub fn histogram() -> Histogram<u64> {
    // Bounds are constants, valid by construction: 1 ns … 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// Records one latency, clamped to the histogram's range.
pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
    histogram.saturating_record(nanos.clamp(1, MAX_LATENCY_NS));
}

/// What one load run measured, as `loadgen` prints it (one JSON object).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// A label the caller chose (`direct`, `gateway-http`, …).
    pub label: String,
    /// `call` (tools/call) or `setup` (initialize + tools/list per iteration).
    pub mode: String,
    /// The protocol era.
    pub era: Era,
    /// Concurrent workers, one connection each.
    pub concurrency: usize,
    /// Successful operations in the measured window.
    pub calls: u64,
    /// Failed operations in the measured window.
    pub errors: u64,
    /// Length of the measured window, in seconds.
    pub elapsed_s: f64,
    /// Successful operations per second.
    pub throughput: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 90th percentile latency, µs.
    pub p90_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
    /// Largest latency, µs.
    pub max_us: f64,
    /// Mean latency, µs.
    pub mean_us: f64,
    /// The first error seen, if any.
    pub first_error: Option<String>,
}

impl Report {
    /// Builds the report from the merged histogram of successful operations.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        label: String,
        mode: String,
        era: Era,
        concurrency: usize,
        latencies: &Histogram<u64>,
        errors: u64,
        elapsed: Duration,
        first_error: Option<String>,
    ) -> Self {
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        let calls = latencies.len();
        let elapsed_s = elapsed.as_secs_f64();
        Self {
            label,
            mode,
            era,
            concurrency,
            calls,
            errors,
            elapsed_s,
            throughput: if elapsed_s > 0.0 {
                calls as f64 / elapsed_s
            } else {
                0.0
            },
            p50_us: micros(latencies.value_at_quantile(0.50)),
            p90_us: micros(latencies.value_at_quantile(0.90)),
            p99_us: micros(latencies.value_at_quantile(0.99)),
            max_us: micros(latencies.max()),
            mean_us: latencies.mean() / 1_000.0,
            first_error,
        }
    }
}

/// The median of some figures (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return 0.0;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}
