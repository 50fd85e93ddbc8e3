//! Benchmarks and the load generator for mcp-gateway (see BENCHMARKS.md).
//!
//! * [`fixture`] — the fast upstream: an rmcp server with `echo` and `sleep_ms`, served over
//!   Streamable HTTP or stdio by the `bench-fixture` binary and in process by the micro-benchmarks.
//! * [`client`] — a minimal Streamable HTTP MCP client over raw hyper (one keep-alive connection,
//!   both protocol eras, JSON and SSE answers), used by the `loadgen` binary and the runner.
//! * [`stdio_client`] — the same over a child's stdin/stdout, for stdio servers driven directly.
//! * [`process`] — the gateway as a child process (config, start, readiness, stop) and what
//!   `/proc` tells of a process.
//! * [`stats`] — latency histograms and the JSON report of one load run.
//!
//! Binaries: `bench-fixture`, `loadgen`, `bench-gateway` (the runner), `memory_throughput`,
//! `recovery` (reconnection after a killed upstream), `isolation` (a sibling's latency while an
//! upstream turns hostile) and `soak`.
//! The micro-benchmarks are `benches/hot_paths.rs` (`cargo bench -p benches`).

pub mod client;
pub mod fixture;
pub mod process;
pub mod stats;
pub mod stdio_client;
