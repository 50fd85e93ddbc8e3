use std::time::Duration;

use super::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

fn spec() -> ServerSpec {
    ServerSpec::streamable_http("x", "http://127.0.0.1:1/mcp").expect("valid spec")
}

#[test]
fn setters_clamp_into_the_limits() {
    let health = HealthConfig::default()
        .with_interval(Duration::ZERO)
        .with_timeout(Duration::MAX)
        .with_thresholds(0, u32::MAX);
    assert_eq!(health.interval, Duration::from_millis(10));
    assert_eq!(health.timeout, DAY);
    assert_eq!(
        (health.healthy_threshold, health.unhealthy_threshold),
        (1, 1000)
    );

    let restart = RestartPolicy::default()
        .with_backoff(Duration::ZERO, Duration::MAX)
        .with_max_failures(0, Duration::ZERO);
    assert_eq!(restart.initial_backoff, Duration::from_millis(1));
    assert_eq!(restart.max_backoff, DAY);
    assert_eq!(
        (restart.max_failures, restart.window),
        (1, Duration::from_millis(1))
    );
    let inverted =
        RestartPolicy::default().with_backoff(Duration::from_secs(5), Duration::from_secs(1));
    assert_eq!(inverted.max_backoff, Duration::from_secs(5));

    let spec = spec()
        .with_connect_timeout(Duration::ZERO)
        .with_request_timeout(Duration::MAX)
        .with_health(health)
        .with_restart(restart)
        .with_max_concurrent_calls(0);
    assert_eq!(spec.connect_timeout, Duration::from_millis(1));
    assert_eq!(spec.request_timeout, DAY);
    assert_eq!(spec.max_concurrent_calls, 1);
    let spec = spec.with_max_concurrent_calls(usize::MAX);
    assert_eq!(spec.max_concurrent_calls, 1_000_000);
    spec.validate().expect("clamped values are valid");
}

#[test]
fn the_first_retry_goes_at_once_and_later_ones_back_off_with_jitter() {
    let restart = RestartPolicy::default()
        .with_backoff(Duration::from_millis(100), Duration::from_millis(1000));
    for _ in 0..100 {
        assert_eq!(restart.backoff(1), Duration::ZERO);
        // From the second consecutive failure: the initial delay, doubled each time, ±20 %.
        for (attempt, base) in [
            (2, 100),
            (3, 200),
            (4, 400),
            (5, 800),
            (6, 1000),
            (30, 1000),
        ] {
            let delay = restart.backoff(attempt).as_secs_f64() * 1e3;
            let (low, high) = (f64::from(base) * 0.8, f64::from(base) * 1.2);
            assert!(
                (low..=high).contains(&delay),
                "retry {attempt}: {delay} ms outside {low}..={high}"
            );
        }
    }
}

#[test]
fn validate_refuses_each_value_outside_its_range_and_names_it() {
    type Edit = fn(&mut ServerSpec);
    let cases: [(&str, Edit); 13] = [
        ("connect_timeout", |s| s.connect_timeout = Duration::ZERO),
        ("request_timeout", |s| s.request_timeout = DAY * 2),
        ("health.interval", |s| s.health.interval = Duration::ZERO),
        ("health.interval", |s| s.health.interval = Duration::MAX),
        ("health.timeout", |s| s.health.timeout = Duration::ZERO),
        ("health.healthy_threshold", |s| {
            s.health.healthy_threshold = 0
        }),
        ("health.unhealthy_threshold", |s| {
            s.health.unhealthy_threshold = u32::MAX
        }),
        ("restart.initial_backoff", |s| {
            s.restart.initial_backoff = Duration::ZERO
        }),
        ("restart.max_backoff", |s| {
            s.restart.max_backoff = Duration::MAX
        }),
        ("restart.max_backoff", |s| {
            s.restart.initial_backoff = Duration::from_secs(10);
            s.restart.max_backoff = Duration::from_secs(1);
        }),
        ("restart.max_failures", |s| s.restart.max_failures = 0),
        ("restart.window", |s| s.restart.window = Duration::ZERO),
        ("max_concurrent_calls", |s| s.max_concurrent_calls = 0),
    ];
    spec().validate().expect("the defaults are valid");
    for (key, edit) in cases {
        let mut spec = spec();
        edit(&mut spec);
        match spec.validate() {
            Err(Error::InvalidSpec(message)) => {
                assert!(
                    message.contains("server `x`") && message.contains(key),
                    "{key}: {message}"
                );
            }
            other => panic!("{key}: expected an invalid spec, got {other:?}"),
        }
    }
}

#[test]
fn a_spec_printed_for_debugging_shows_no_password_or_header_value() {
    let spec = ServerSpec::streamable_http("x", "http://user:hunter2@127.0.0.1:1/mcp")
        .expect("valid spec")
        .with_header("Authorization", "Bearer t0ken");
    let printed = format!("{spec:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!printed.contains("t0ken"), "{printed}");
    assert!(printed.contains("127.0.0.1:1/mcp"), "{printed}");
}
