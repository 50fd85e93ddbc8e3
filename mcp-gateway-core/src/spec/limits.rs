//! The ranges every configurable timing and count of the engine must lie in.
//!
//! A zero interval or timeout, a zero threshold or a duration that overflows a clock would stop a
//! supervisor or spin it, so [`ServerSpec::validate`](super::ServerSpec::validate) refuses values
//! outside them (the gateway runs no server whose spec fails it), and the `with_*` setters clamp
//! into them. The CLI's config file checks its keys against the same ranges, naming the key.

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

/// The longest any duration may be: a day. Longer ones are mistakes, and would overflow the clock
/// arithmetic of timers.
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Connect, request and health-probe deadlines.
pub const TIMEOUT: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// Time between health probes: a shorter one would be a busy loop of probes.
pub const PROBE_INTERVAL: RangeInclusive<Duration> = Duration::from_millis(10)..=DAY;
/// Health thresholds: how many probes in a row change the status.
pub const THRESHOLD: RangeInclusive<u32> = 1..=1000;
/// Reconnect backoff, the first delay and the longest.
pub const BACKOFF: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// Failures within the restart window before a server is given up.
pub const MAX_FAILURES: RangeInclusive<u32> = 1..=1000;
/// The window failures are counted in.
pub const WINDOW: RangeInclusive<Duration> = Duration::from_millis(1)..=DAY;
/// Calls in flight at once: towards one upstream (`ServerSpec::max_concurrent_calls`), from one
/// downstream session (`DownstreamConfig::max_calls_per_session`) or from all clients together
/// (`DownstreamConfig::max_calls`). Zero would refuse every call.
pub const CALLS: RangeInclusive<usize> = 1..=1_000_000;
/// Downstream sessions and stateless listen streams open at once.
pub const SESSIONS: RangeInclusive<usize> = 1..=1_000_000;
/// How long a downstream session may sit idle before it is closed.
pub const SESSION_IDLE_TIMEOUT: RangeInclusive<Duration> = Duration::from_secs(1)..=DAY;

/// Events a subscriber may fall behind, and events the history keeps.
pub const EVENTS: RangeInclusive<usize> = 1..=1_000_000;
/// Byte budgets: an HTTP request body, the event history. Below a kibibyte no MCP message fits;
/// above a gibibyte one client could take the gateway's memory.
pub const BYTES: RangeInclusive<usize> = 1024..=1 << 30;

/// `value` moved into `range`.
pub(crate) fn clamp<T: Ord + Copy>(value: T, range: &RangeInclusive<T>) -> T {
    value.clamp(*range.start(), *range.end())
}

/// An error naming `key` when `value` is outside `range`.
pub(crate) fn check<T: PartialOrd + fmt::Debug>(
    key: &str,
    value: T,
    range: &RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{key} is {value:?}, outside {:?}..={:?}",
            range.start(),
            range.end()
        ))
    }
}
