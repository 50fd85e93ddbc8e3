//! [`WebhookSink`]: POSTs alerts (or every event) as JSON to a URL, with a Slack-compatible
//! `text` field, through a bounded queue and one delivery task that retries with backoff.
//!
//! The payload is the event envelope exactly as the event stream serialises it (`version`, `seq`,
//! `time_ms`, `type` and the event's own fields) plus `text`, one line for a person: `text` is
//! what a Slack incoming webhook posts to the channel, and the other fields carry the structured
//! event for any other receiver.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Counters, SinkError, runtime};
use crate::error::error_chain;
use crate::events::{EventEnvelope, EventSink, GatewayEvent};
use crate::spec::{Secret, ServerId};

/// Which events a [`WebhookSink`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EventFilter {
    /// Only [`GatewayEvent::AlertRaised`] and [`GatewayEvent::AlertResolved`].
    #[default]
    Alerts,
    /// Every event. Mind the volume: tool calls and upstream log lines are events too.
    All,
}

impl EventFilter {
    fn accepts(self, event: &GatewayEvent) -> bool {
        match self {
            EventFilter::Alerts => matches!(
                event,
                GatewayEvent::AlertRaised { .. } | GatewayEvent::AlertResolved { .. }
            ),
            EventFilter::All => true,
        }
    }
}

/// How a [`WebhookSink`] queues and delivers.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// Which events are sent (default: alerts only).
    pub filter: EventFilter,
    /// Extra request headers, e.g. `authorization`. Values are secrets: never logged or printed.
    pub headers: BTreeMap<String, Secret>,
    /// Events that may wait for delivery; more are dropped and counted (default 256).
    pub queue_capacity: usize,
    /// Deadline of one request, connecting included (default 10 s).
    pub request_timeout: Duration,
    /// Tries per event, the first included (default 5).
    pub max_attempts: u32,
    /// Delay before the first retry; doubled on each further one (default 500 ms).
    pub initial_backoff: Duration,
    /// Longest delay between tries, also the cap on a receiver's `Retry-After` (default 30 s).
    pub max_backoff: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            filter: EventFilter::default(),
            headers: BTreeMap::new(),
            queue_capacity: 256,
            request_timeout: Duration::from_secs(10),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl WebhookConfig {
    /// Sets which events are sent.
    pub fn with_filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Adds a request header; its value is kept as a [`Secret`].
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Secret>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets how many events may wait for delivery (at least 1).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Sets the deadline of one request.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the tries per event, the first included (at least 1).
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the retry backoff bounds.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }
}

/// An [`EventSink`] that POSTs alerts as JSON to a webhook (Slack-compatible `text` included).
///
/// `on_event` never blocks: it puts the event in a bounded queue, or drops and counts it when the
/// queue is full. One background task sends the queued events in order, each with a deadline,
/// retrying connection errors, timeouts, 5xx and 429 with exponential backoff and jitter (a 429's
/// or 503's `Retry-After` is honoured up to the backoff cap); any other answer, or running out of
/// tries, counts the event as failed. Redirects are not followed.
///
/// The constructor spawns that task, so it must run inside a tokio runtime. Dropping the sink
/// stops the task at once, abandoning what is still queued; call [`flush`](Self::flush) first to
/// deliver it. The URL (Slack's carries its token) and header values never appear in `Debug`
/// output or logs: only the URL's origin does.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use mcp_gateway_core::sinks::WebhookConfig;
/// use mcp_gateway_core::{Gateway, WebhookSink};
///
/// let alerts = Arc::new(WebhookSink::new(
///     "https://hooks.slack.com/services/T000/B000/XXXX",
///     WebhookConfig::default().with_header("authorization", "Bearer s3cret"),
/// )?);
/// let gateway = Gateway::builder().event_sink(alerts.clone()).build();
/// gateway.start().await;
/// // ... later, on the way out:
/// gateway.shutdown().await;
/// alerts.flush(Duration::from_secs(5)).await;
/// println!("{} alerts sent, {} failed, {} dropped", alerts.delivered(), alerts.failed(), alerts.dropped());
/// # Ok(())
/// # }
/// ```
pub struct WebhookSink {
    filter: EventFilter,
    queue: mpsc::Sender<EventEnvelope>,
    counters: Arc<Counters>,
    origin: String,
    _stop: DropGuard,
}

impl WebhookSink {
    /// Validates the URL and headers, builds the HTTP client and spawns the delivery task.
    pub fn new(url: impl AsRef<str>, config: WebhookConfig) -> Result<Self, SinkError> {
        let handle = runtime()?;
        let url = Url::parse(url.as_ref()).map_err(|err| SinkError::InvalidUrl(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SinkError::InvalidUrl(format!(
                "scheme `{}` is not http or https",
                url.scheme()
            )));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SinkError::InvalidHeader(name.clone()))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| SinkError::InvalidHeader(name.clone()))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| SinkError::Client(err.without_url()))?;

        let origin = url.origin().ascii_serialization();
        let counters = Arc::new(Counters::new());
        let (queue, inbox) = mpsc::channel(config.queue_capacity.max(1));
        let stop = CancellationToken::new();
        let delivery = Delivery {
            client,
            url,
            origin: origin.clone(),
            request_timeout: config.request_timeout,
            max_attempts: config.max_attempts.max(1),
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff.max(config.initial_backoff),
            counters: counters.clone(),
        };
        handle.spawn(delivery.run(inbox, stop.clone()));
        Ok(Self {
            filter: config.filter,
            queue,
            counters,
            origin,
            _stop: stop.drop_guard(),
        })
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        Counters::get(&self.counters.dropped)
    }

    /// Events the receiver accepted (a 2xx answer).
    pub fn delivered(&self) -> u64 {
        Counters::get(&self.counters.delivered)
    }

    /// Events given up on: refused with a 4xx other than 429, or still failing after every try.
    pub fn failed(&self) -> u64 {
        Counters::get(&self.counters.failed)
    }

    /// Waits until every event queued before the call is delivered or given up on. Returns
    /// `false` if that did not happen within `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.counters.flush(timeout).await
    }
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("endpoint", &format_args!("{}/***", self.origin))
            .field("filter", &self.filter)
            .field("delivered", &self.delivered())
            .field("failed", &self.failed())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl EventSink for WebhookSink {
    fn on_event(&self, event: &EventEnvelope) {
        if !self.filter.accepts(&event.event) {
            return;
        }
        // Reserve first, so a full queue costs no clone.
        match self.queue.try_reserve() {
            Ok(permit) => {
                self.counters.accept();
                permit.send(event.clone());
            }
            Err(_) => self.counters.drop_one(),
        }
    }
}

/// What is POSTed: the envelope's fields plus `text`.
#[derive(Serialize)]
struct Payload<'a> {
    text: String,
    #[serde(flatten)]
    envelope: &'a EventEnvelope,
}

/// The JSON body for one event.
pub(super) fn payload(envelope: &EventEnvelope) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Payload {
        text: text(&envelope.event),
        envelope,
    })
}

/// One line for a person, with Slack's emoji shortcodes.
pub(super) fn text(event: &GatewayEvent) -> String {
    match event {
        GatewayEvent::AlertRaised {
            server,
            kind,
            message,
        } => {
            format!(
                ":rotating_light: mcp-gateway alert: {}",
                about(server, &snake_name(kind), message)
            )
        }
        GatewayEvent::AlertResolved {
            server,
            kind,
            message,
        } => format!(
            ":white_check_mark: mcp-gateway alert resolved: server `{server}` is no longer {}: {message}",
            snake_name(kind)
        ),
        GatewayEvent::StatusChanged {
            server,
            from,
            to,
            reason,
        } => format!(
            ":information_source: mcp-gateway: server `{server}` {} → {}: {reason}",
            snake_name(from),
            snake_name(to)
        ),
        other => {
            let kind = serde_json::to_value(other)
                .ok()
                .and_then(|value| value.get("type")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            format!(":information_source: mcp-gateway event `{kind}`")
        }
    }
}

/// The engine's alert messages already start with "server `id` …"; others get that prefix.
fn about(server: &ServerId, kind: &str, message: &str) -> String {
    if message.starts_with(&format!("server `{server}` ")) {
        message.to_owned()
    } else {
        format!("server `{server}` {kind}: {message}")
    }
}

/// The serde (snake case) name of a unit enum value.
fn snake_name(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The delivery task's state.
struct Delivery {
    client: reqwest::Client,
    url: Url,
    origin: String,
    request_timeout: Duration,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    counters: Arc<Counters>,
}

/// How one try ended, when it did not succeed.
struct Refusal {
    problem: String,
    retry: bool,
    retry_after: Option<Duration>,
}

impl Delivery {
    /// Sends queued events one at a time, in order, until the sink is dropped.
    async fn run(self, mut inbox: mpsc::Receiver<EventEnvelope>, stop: CancellationToken) {
        while let Some(Some(envelope)) = stop.run_until_cancelled(inbox.recv()).await {
            let body = match payload(&envelope) {
                Ok(body) => Bytes::from(body),
                Err(err) => {
                    tracing::warn!(sink = "webhook", seq = envelope.seq, error = %err, "could not serialise an event");
                    self.counters.failed(1);
                    continue;
                }
            };
            match stop
                .run_until_cancelled(self.deliver(body, envelope.seq))
                .await
            {
                Some(true) => self.counters.delivered(1),
                Some(false) => self.counters.failed(1),
                None => break,
            }
        }
    }

    /// Tries to deliver one body; `true` once the receiver accepted it.
    async fn deliver(&self, body: Bytes, seq: u64) -> bool {
        let mut attempt = 1;
        loop {
            let refusal = match self.try_once(body.clone()).await {
                Ok(()) => return true,
                Err(refusal) => refusal,
            };
            if !refusal.retry || attempt >= self.max_attempts {
                tracing::warn!(
                    sink = "webhook",
                    endpoint = %self.origin,
                    seq,
                    attempts = attempt,
                    error = %refusal.problem,
                    "webhook delivery failed; the event is dropped"
                );
                return false;
            }
            let delay = refusal
                .retry_after
                .unwrap_or_else(|| self.backoff(attempt))
                .min(self.max_backoff);
            tracing::debug!(
                sink = "webhook",
                endpoint = %self.origin,
                seq,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %refusal.problem,
                "webhook delivery will be retried"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn try_once(&self, body: Bytes) -> Result<(), Refusal> {
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => {
                let status = response.status();
                let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                Err(Refusal {
                    problem: format!("the receiver answered {status}"),
                    retry,
                    retry_after: retry.then(|| retry_after(response.headers())).flatten(),
                })
            }
            Err(err) => {
                // The URL may carry a token (Slack's does): keep it out of the message.
                let err = err.without_url();
                let problem = if err.is_timeout() {
                    format!("no answer within {:?}", self.request_timeout)
                } else {
                    error_chain(&err)
                };
                Err(Refusal {
                    problem,
                    retry: !err.is_builder(),
                    retry_after: None,
                })
            }
        }
    }

    /// The delay after try number `attempt` (1-based): doubling, capped, with ±20 % jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20);
        let base = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        base.mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

/// A `Retry-After` given in seconds (the HTTP-date form is ignored: backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests;
