//! Latency histograms, processes' CPU time, and the JSON report of one load run.
//!
//! Latencies are recorded in nanoseconds in an HDR histogram (three significant digits, up to a
//! minute) per worker, merged at the end, and reported in microseconds. CPU time per call is what
//! a process's user and system time grew by over the measured window, divided by the calls: on a
//! shared machine it moves far less than latency does, since waiting for a core costs no CPU.

use std::collections::BTreeMap;
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
    /// CPU time per successful operation of each watched process (`--cpu-pid`), by name.
    #[serde(default)]
    pub cpu: BTreeMap<String, CpuPerCall>,
}

/// CPU time one process spent per successful operation in the measured window, µs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CpuPerCall {
    /// User time.
    pub user_us: f64,
    /// System (kernel) time.
    pub system_us: f64,
}

/// The kernel's clock ticks per second in `/proc/PID/stat` (`USER_HZ`: 100 on Linux, whatever
/// the kernel's own tick rate).
const USER_HZ: f64 = 100.0;

/// A process's CPU time so far, all its threads (exited ones included): (user, system) seconds,
/// from `/proc/PID/stat`. `None` if the process is gone or this is not Linux.
pub fn process_cpu(pid: u32) -> Option<(f64, f64)> {
    cpu_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// (user, system) seconds from the text of `/proc/PID/stat`.
fn cpu_of_stat(stat: &str) -> Option<(f64, f64)> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    // The fields after it start with field 3; utime and stime are fields 14 and 15.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user / USER_HZ, system / USER_HZ))
}

impl CpuPerCall {
    /// CPU per call between two [`process_cpu`] readings.
    pub fn between(before: (f64, f64), after: (f64, f64), calls: u64) -> Self {
        let per_call = |seconds: f64| seconds * 1e6 / calls.max(1) as f64;
        Self {
            user_us: per_call(after.0 - before.0),
            system_us: per_call(after.1 - before.1),
        }
    }

    /// User plus system time.
    pub fn total_us(&self) -> f64 {
        self.user_us + self.system_us
    }
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
            cpu: BTreeMap::new(),
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

#[cfg(test)]
mod tests;
