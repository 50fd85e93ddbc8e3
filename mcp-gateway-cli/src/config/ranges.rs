//! The numbers a config file sets, each checked against the range the library accepts
//! ([`limits`]) with an error naming the key: the file refuses what the library's setters would
//! clamp. Also the `[gateway]` limits and `[events]` buffers, built from their checked keys.

use std::ops::RangeInclusive;
use std::time::Duration;

use mcp_gateway_core::{DownstreamConfig, EventBusConfig, RestartPolicy, limits};

use super::{RawEvents, RawGateway, RawServer};

/// The `[gateway]` limits of the downstream side, each checked against its range.
pub(super) fn downstream(gateway: &RawGateway) -> Result<DownstreamConfig, String> {
    let counts = [
        ("max_sessions", gateway.max_sessions, &limits::SESSIONS),
        (
            "max_sessions_per_peer",
            gateway.max_sessions_per_peer,
            &limits::SESSIONS,
        ),
        ("max_listeners", gateway.max_listeners, &limits::SESSIONS),
        (
            "max_calls_per_session",
            gateway.max_calls_per_session,
            &limits::CALLS,
        ),
        ("max_calls", gateway.max_calls, &limits::CALLS),
    ];
    for (key, value, range) in counts {
        check_count(&format!("gateway.{key}"), value, range)?;
    }
    check_duration(
        "gateway.session_idle_timeout_secs",
        gateway.session_idle_timeout_secs,
        Unit::Secs,
        &limits::SESSION_IDLE_TIMEOUT,
    )?;
    let mut config = DownstreamConfig::default();
    if let Some(max) = gateway.max_sessions {
        config = config.with_max_sessions(max);
    }
    if let Some(max) = gateway.max_sessions_per_peer {
        config = config.with_max_sessions_per_peer(max);
    }
    if let Some(max) = gateway.max_listeners {
        config = config.with_max_listeners(max);
    }
    if let Some(secs) = gateway.session_idle_timeout_secs {
        config = config.with_session_idle_timeout(Duration::from_secs(secs));
    }
    if let Some(max) = gateway.max_calls_per_session {
        config = config.with_max_calls_per_session(max);
    }
    if let Some(max) = gateway.max_calls {
        config = config.with_max_calls(max);
    }
    Ok(config)
}

/// The `[events]` buffers, each checked against its range.
pub(super) fn event_buffers(events: &RawEvents) -> Result<EventBusConfig, String> {
    check_count("events.history", events.history, &limits::EVENTS)?;
    check_count("events.history_bytes", events.history_bytes, &limits::BYTES)?;
    check_count(
        "events.subscriber_capacity",
        events.subscriber_capacity,
        &limits::EVENTS,
    )?;
    let mut config = EventBusConfig::default();
    config.history = events.history.unwrap_or(config.history);
    config.history_bytes = events.history_bytes.unwrap_or(config.history_bytes);
    config.subscriber_capacity = events
        .subscriber_capacity
        .unwrap_or(config.subscriber_capacity);
    Ok(config)
}

/// The unit a key's number is in.
#[derive(Clone, Copy)]
enum Unit {
    Secs,
    Millis,
}

impl Unit {
    fn duration(self, value: u64) -> Duration {
        match self {
            Unit::Secs => Duration::from_secs(value),
            Unit::Millis => Duration::from_millis(value),
        }
    }

    /// `range` in this unit, its ends rounded inwards.
    fn bounds(self, range: &RangeInclusive<Duration>) -> (u128, u128) {
        let per_unit = match self {
            Unit::Secs => 1_000_000,
            Unit::Millis => 1_000,
        };
        (
            range.start().as_micros().div_ceil(per_unit),
            range.end().as_micros() / per_unit,
        )
    }
}

/// Checks every timing and count of a server against the ranges the library accepts
/// ([`limits`]): the file refuses, naming the key, what the library's setters would clamp. A zero
/// probe interval once panicked the server's supervisor.
pub(super) fn check_ranges(raw: &RawServer) -> Result<(), String> {
    let health = raw.health.as_ref();
    let restart = raw.restart.as_ref();
    let durations = [
        (
            "connect_timeout_secs",
            raw.connect_timeout_secs,
            Unit::Secs,
            limits::TIMEOUT,
        ),
        (
            "request_timeout_secs",
            raw.request_timeout_secs,
            Unit::Secs,
            limits::TIMEOUT,
        ),
        (
            "health.interval_ms",
            health.and_then(|h| h.interval_ms),
            Unit::Millis,
            limits::PROBE_INTERVAL,
        ),
        (
            "health.timeout_ms",
            health.and_then(|h| h.timeout_ms),
            Unit::Millis,
            limits::TIMEOUT,
        ),
        (
            "restart.initial_backoff_ms",
            restart.and_then(|r| r.initial_backoff_ms),
            Unit::Millis,
            limits::BACKOFF,
        ),
        (
            "restart.max_backoff_ms",
            restart.and_then(|r| r.max_backoff_ms),
            Unit::Millis,
            limits::BACKOFF,
        ),
        (
            "restart.window_secs",
            restart.and_then(|r| r.window_secs),
            Unit::Secs,
            limits::WINDOW,
        ),
    ];
    for (key, value, unit, range) in durations {
        check_duration(key, value, unit, &range)?;
    }
    let counts = [
        (
            "health.healthy_threshold",
            health.and_then(|h| h.healthy_threshold),
            limits::THRESHOLD,
        ),
        (
            "health.unhealthy_threshold",
            health.and_then(|h| h.unhealthy_threshold),
            limits::THRESHOLD,
        ),
        (
            "restart.max_failures",
            restart.and_then(|r| r.max_failures),
            limits::MAX_FAILURES,
        ),
    ];
    for (key, value, range) in counts {
        check_count(key, value, &range)?;
    }
    check_count(
        "max_concurrent_calls",
        raw.max_concurrent_calls,
        &limits::CALLS,
    )?;
    let defaults = RestartPolicy::default();
    let initial = restart
        .and_then(|r| r.initial_backoff_ms)
        .map_or(defaults.initial_backoff, Duration::from_millis);
    let max = restart
        .and_then(|r| r.max_backoff_ms)
        .map_or(defaults.max_backoff, Duration::from_millis);
    if max < initial {
        return Err(format!(
            "restart.max_backoff_ms: {} is below initial_backoff_ms ({})",
            max.as_millis(),
            initial.as_millis()
        ));
    }
    Ok(())
}

/// An error naming `key` when it is set to a number of `unit`s outside `range`.
fn check_duration(
    key: &str,
    value: Option<u64>,
    unit: Unit,
    range: &RangeInclusive<Duration>,
) -> Result<(), String> {
    match value {
        Some(value) if !range.contains(&unit.duration(value)) => {
            let (min, max) = unit.bounds(range);
            Err(format!("{key}: {value} is outside {min}..={max}"))
        }
        _ => Ok(()),
    }
}

/// An error naming `key` when it is set to a count outside `range`.
pub(super) fn check_count<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: Option<T>,
    range: &RangeInclusive<T>,
) -> Result<(), String> {
    match value {
        Some(value) if !range.contains(&value) => Err(format!(
            "{key}: {value} is outside {}..={}",
            range.start(),
            range.end()
        )),
        _ => Ok(()),
    }
}
