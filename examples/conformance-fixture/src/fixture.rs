//! The fixture server: one [`Fixture`] per session (or per request in the stateless 2026-07-28
//! era), all sharing one [`Shared`].
//!
//! Names, texts and shapes follow the "Server Implementation Requirements" of the conformance
//! suite's server scenarios (`conformance list`), so the suite can run against this server
//! directly or through the gateway.
//!
//! Logging, sampling and roots are deprecated by SEP-2577, but the legacy scenarios exercise them.
#![expect(
    deprecated,
    reason = "the legacy scenarios exercise logging (SEP-2577)"
)]

mod content;
mod mrtr;
mod tools;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, ErrorData, GetPromptRequestParams,
    GetPromptResponse, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference,
    RequestStateCodec, ResourceContents, ServerCapabilities, ServerConfig, SetLevelRequestParams,
    SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext, SubscriptionSendError};
use rmcp::{Peer, RoleServer, ServerHandler, tool_handler};
use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior};

use content::{PNG_1X1, WATCHED_RESOURCE};

/// How often `test://watched-resource` changes (as in the suite's TypeScript reference server).
const WATCH_PERIOD: Duration = Duration::from_secs(3);

/// A list that `test_trigger_tool_change` / `test_trigger_prompt_change` announce as changed.
#[derive(Debug, Clone, Copy)]
enum ListChange {
    Tools,
    Prompts,
}

/// State shared by every session and request of one fixture process.
pub struct Shared {
    tools: ToolRouter<Fixture>,
    /// Seals MRTR `requestState` so that a tampered echo is detected.
    request_state: RequestStateCodec,
    /// List changes, fanned out to every open `subscriptions/listen` stream.
    list_changes: broadcast::Sender<ListChange>,
    /// The watched resource's revision is the number of periods since this instant.
    started: Instant,
}

impl Shared {
    /// Builds the shared state with a fresh per-process request-state key.
    pub fn new() -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            tools: Fixture::tool_router() + Fixture::mrtr_router(),
            request_state: RequestStateCodec::try_new(mrtr::random_key())?,
            list_changes: broadcast::channel(16).0,
            started: Instant::now(),
        }))
    }

    fn watched_revision(&self) -> u64 {
        let periods = self.started.elapsed().as_millis() / WATCH_PERIOD.as_millis();
        u64::try_from(periods).unwrap_or(u64::MAX)
    }
}

/// The per-session half of the fixture: `logging/setLevel` and `resources/subscribe` state.
#[derive(Default)]
struct Session {
    /// `None` until the client sets a level: everything is sent.
    log_level: Mutex<Option<LoggingLevel>>,
    subscriptions: Mutex<Subscriptions>,
}

#[derive(Default)]
struct Subscriptions {
    uris: HashSet<String>,
    /// Whether a [`push_watched_updates`] task runs for this session; kept under the same lock
    /// as `uris` so that unsubscribing and subscribing again never leaves zero or two tasks.
    pushing: bool,
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The MCP server handler; `StreamableHttpService` makes one per session.
pub struct Fixture {
    shared: Arc<Shared>,
    session: Arc<Session>,
}

impl Fixture {
    /// A handler for a new session.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            session: Arc::default(),
        }
    }

    /// Sends a log message if the request's threshold lets it through: the stateless era's
    /// per-request `_meta` level (no level, no logs), or else the session's `logging/setLevel`.
    async fn log(&self, context: &RequestContext<RoleServer>, level: LoggingLevel, text: &str) {
        let threshold = if stateless(context) {
            context.meta.log_level()
        } else {
            Some(lock(&self.session.log_level).unwrap_or(LoggingLevel::Debug))
        };
        if threshold.is_none_or(|threshold| severity(level) < severity(threshold)) {
            return;
        }
        let message =
            LoggingMessageNotificationParam::new(level, json!(text)).with_logger(SERVER_NAME);
        if let Err(err) = context.peer.notify_logging_message(message).await {
            tracing::debug!(error = %err, "log message not delivered");
        }
    }
}

/// Whether a request belongs to the stateless 2026-07-28 era: those carry their protocol version
/// in `_meta`, session-era requests negotiated it once with `initialize`.
fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context.meta.protocol_version().is_some()
}

/// The server name in `serverInfo` and in log messages.
const SERVER_NAME: &str = "conformance-fixture";

/// RFC 5424 order, lowest first (`LoggingLevel` is not `Ord`).
fn severity(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

#[tool_handler(router = self.shared.tools)]
impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_logging()
            .enable_completions()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
            .with_instructions("Fixture server for the MCP conformance suite's server scenarios.")
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        *lock(&self.session.log_level) = Some(request.level);
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let candidates: &[&str] = match (&request.r#ref, request.argument.name.as_str()) {
            (Reference::Prompt(prompt), "arg1" | "arg2")
                if prompt.name == "test_prompt_with_arguments" =>
            {
                &["paris", "park", "party", "test", "testing"]
            }
            (Reference::Resource(template), "id") if template.uri == content::TEMPLATE => {
                &["1", "2", "3", "123"]
            }
            _ => &[],
        };
        let values = candidates
            .iter()
            .filter(|value| value.starts_with(&request.argument.value))
            .map(|value| (*value).to_owned())
            .collect();
        let completion =
            CompletionInfo::new(values).map_err(|err| ErrorData::internal_error(err, None))?;
        Ok(CompleteResult::new(completion))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(content::prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name == mrtr::PROMPT {
            return mrtr::prompt(request);
        }
        content::get_prompt(&request.name, request.arguments.unwrap_or_default()).map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(content::resources()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            content::resource_templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let contents = match uri.as_str() {
            content::STATIC_TEXT => {
                ResourceContents::text(content::STATIC_TEXT_BODY, &uri).with_mime_type("text/plain")
            }
            content::STATIC_BINARY => {
                ResourceContents::blob(PNG_1X1, &uri).with_mime_type("image/png")
            }
            WATCHED_RESOURCE => ResourceContents::text(
                format!(
                    "Watched resource, revision {}",
                    self.shared.watched_revision()
                ),
                &uri,
            )
            .with_mime_type("text/plain"),
            _ => match content::template_id(&uri) {
                Some(id) => ResourceContents::text(
                    json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")})
                        .to_string(),
                    &uri,
                )
                .with_mime_type("application/json"),
                // rmcp turns this code into -32602 for 2026-07-28 peers (SEP-2164).
                None => {
                    return Err(ErrorData::resource_not_found(
                        "Resource not found",
                        Some(json!({ "uri": uri })),
                    ));
                }
            },
        };
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let start_pushing = {
            let mut subscriptions = lock(&self.session.subscriptions);
            subscriptions.uris.insert(request.uri.clone());
            let start = request.uri == WATCHED_RESOURCE && !subscriptions.pushing;
            subscriptions.pushing |= start;
            start
        };
        if start_pushing {
            tokio::spawn(push_watched_updates(
                self.session.clone(),
                context.peer.clone(),
            ));
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        lock(&self.session.subscriptions).uris.remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        _requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(
            SubscriptionFilter::builder()
                .tools_list_changed()
                .prompts_list_changed()
                .resource_subscriptions([WATCHED_RESOURCE])
                .build(),
        )
    }

    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let sink = subscription.sink();
        let watched = subscription
            .accepted()
            .resource_subscriptions
            .as_ref()
            .is_some_and(|uris| uris.iter().any(|uri| uri == WATCHED_RESOURCE));
        let mut changes = self.shared.list_changes.subscribe();
        let mut ticks = watch_ticks();
        loop {
            let sent = tokio::select! {
                () = subscription.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(ListChange::Tools) => sink.notify_tool_list_changed().await,
                    Ok(ListChange::Prompts) => sink.notify_prompt_list_changed().await,
                    Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = ticks.tick(), if watched => sink.notify_resource_updated(WATCHED_RESOURCE).await,
            };
            match sent {
                // The client did not ask for this kind: the sink filtered it out.
                Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                Err(err) => {
                    tracing::debug!(error = %err, "subscription stream ended");
                    return Ok(());
                }
            }
        }
    }
}

/// A ticker for the watched resource whose first tick is one period away.
fn watch_ticks() -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(Instant::now() + WATCH_PERIOD, WATCH_PERIOD);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// Sends `notifications/resources/updated` to a session-era client while it stays subscribed
/// to the watched resource; ends on unsubscribe or when the session is gone.
async fn push_watched_updates(session: Arc<Session>, peer: Peer<RoleServer>) {
    let mut ticks = watch_ticks();
    loop {
        ticks.tick().await;
        {
            let mut subscriptions = lock(&session.subscriptions);
            if !subscriptions.uris.contains(WATCHED_RESOURCE) {
                subscriptions.pushing = false;
                return;
            }
        }
        let update = rmcp::model::ResourceUpdatedNotificationParam::new(WATCHED_RESOURCE);
        if let Err(err) = peer.notify_resource_updated(update).await {
            tracing::debug!(error = %err, "watched-resource updates stopped");
            lock(&session.subscriptions).pushing = false;
            return;
        }
    }
}
