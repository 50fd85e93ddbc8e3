//! The stdio transport: a child process speaking newline-delimited JSON-RPC. Its stderr lines
//! become log events.
//!
//! No child outlives its connection or the gateway: each runs in its own process group, and when
//! the connection ends (or the child dies) the whole group is killed, which takes the `node`
//! that an `npx` wrapper started with it. On Linux the child is also started through
//! `setpriv --pdeathsig KILL`, so the kernel kills it if the gateway itself is killed with
//! SIGKILL and never gets to clean up.
//!
//! A child inherits the gateway's environment (an `npx` needs `PATH` and `HOME`) except the
//! gateway's own secrets, [`WITHHELD_ENV`]; the spec's `env` is set on top.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::lines::{Line, LineCodec, LineWriter, read_lines};
use super::{Connected, INBOUND_CAPACITY, Outbound, TransportEvent};
use crate::error::Error;
use crate::jsonrpc::Message;
use crate::spec::{ServerId, StdioSpec};

/// How long a child gets to exit after its stdin closes before it is sent SIGTERM.
const STDIN_GRACE: Duration = Duration::from_millis(500);
/// How long a child gets to exit after SIGTERM before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Longest stderr line kept in an event; the rest of a longer one is cut. One bound for every
/// log line an upstream sends, whichever way it comes.
const MAX_STDERR_LINE: usize = crate::events::MAX_LOG_MESSAGE;

/// Variables the gateway holds for itself and never lets a child inherit: the token its clients
/// present and the bundled memory server's. An upstream is a peer, not part of the gateway; a
/// spec's `env` may still set one of them on purpose.
const WITHHELD_ENV: [&str; 2] = ["MCP_GATEWAY_TOKEN", "MCP_MEMORY_TOKEN"];

/// Starts the child and the tasks that read its output and wait for its exit.
pub(crate) fn open(server: &ServerId, spec: &StdioSpec) -> Result<Connected, Error> {
    let spawn_error = |source| Error::Spawn {
        server: server.clone(),
        command: spec.command.clone(),
        source,
    };
    // Resolved here, not by the wrapper, so a missing command is a spawn error that names it.
    let search_dir = spec.cwd.clone().unwrap_or_else(|| PathBuf::from("."));
    let program = which::which_in(&spec.command, std::env::var_os("PATH"), search_dir)
        .map_err(|err| spawn_error(std::io::Error::new(std::io::ErrorKind::NotFound, err)))?;
    let mut command = match parent_death_wrapper() {
        Some(setpriv) => {
            let mut command = Command::new(setpriv);
            command.args(["--pdeathsig", "KILL", "--"]).arg(&program);
            command
        }
        None => Command::new(&program),
    };
    for key in WITHHELD_ENV {
        command.env_remove(key);
    }
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(key, value)| (key, value.expose())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C meant for the gateway does not reach the child
        // before the gateway has had a chance to stop it in order.
        .process_group(0);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    // Spawned on the calling thread, never on a short-lived one: `--pdeathsig` fires when the
    // thread that forked the child exits, not the process, so a child started from a
    // blocking-pool thread would be killed when that thread retires after 10 s idle.
    let mut child = command.spawn().map_err(spawn_error)?;
    let group = child
        .id()
        .and_then(|pid| i32::try_from(pid).ok())
        .map(Pid::from_raw);
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::transport(server, "child process pipes are missing"));
    };

    let (events, inbound) = mpsc::channel(INBOUND_CAPACITY);
    let (output_ended, output_closed) = oneshot::channel::<()>();
    let stdout_events = events.clone();
    let stdout_task = tokio::spawn(async move {
        let read_error = read_lines(stdout, stdout_events.clone()).await;
        // Once stdout is closed no answer can arrive: say so at once, so that the calls in
        // flight fail now rather than once the process is reaped.
        let reason = read_error
            .clone()
            .unwrap_or_else(|| "the process closed its output".to_owned());
        let _ = stdout_events.send(TransportEvent::InputEnded(reason)).await;
        let _ = output_ended.send(());
        read_error
    });
    let stderr_events = events.clone();
    tokio::spawn(async move {
        // Whatever the bytes, a line is logged: only a failing pipe ends this reader.
        let mut lines = FramedRead::new(stderr, LineCodec::new(MAX_STDERR_LINE));
        while let Some(Ok(line)) = lines.next().await {
            let line = match line {
                Line::Complete(line) => String::from_utf8_lossy(&line).into_owned(),
                Line::TooLong { head, .. } => format!("{}…", String::from_utf8_lossy(&head)),
            };
            if stderr_events
                .send(TransportEvent::Stderr(line))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let (kill, killed) = oneshot::channel();
    let exited = tokio::spawn(async move {
        // A child whose output is closed can answer nothing more: it is stopped like one whose
        // connection is closed.
        let stop = async {
            tokio::select! {
                _ = killed => {}
                _ = output_closed => {}
            }
        };
        let status = wait_or_kill(&mut child, group, stop).await;
        // Whatever the child left behind in its group (an npx wrapper's node) goes with it.
        if let Some(group) = group {
            let _ = killpg(group, Signal::SIGKILL);
        }
        // Deliver everything the child wrote before reporting it gone, so no answer is lost.
        let read_error = tokio::time::timeout(EXIT_GRACE, stdout_task)
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let reason = match (status, read_error) {
            (_, Some(read_error)) => read_error,
            (Ok(status), None) => format!("process exited ({status})"),
            (Err(err), None) => format!("could not wait for the process: {err}"),
        };
        let _ = events.send(TransportEvent::Closed(reason)).await;
    });
    Ok(Connected {
        outbound: Box::new(ChildOutbound {
            writer: LineWriter::spawn(server.clone(), stdin),
            kill: Mutex::new(Some(kill)),
            exited: Mutex::new(Some(exited)),
        }),
        inbound,
    })
}

/// Waits for the child to exit, or, once `stop` resolves (its stdin or its stdout is closed by
/// then), does what the MCP stdio transport prescribes: give it a moment to exit, then SIGTERM,
/// then SIGKILL — to the whole process group.
async fn wait_or_kill(
    child: &mut Child,
    group: Option<Pid>,
    stop: impl Future<Output = ()>,
) -> std::io::Result<std::process::ExitStatus> {
    tokio::select! {
        status = child.wait() => status,
        () = stop => {
            if let Ok(status) = tokio::time::timeout(STDIN_GRACE, child.wait()).await {
                return status;
            }
            if let Some(group) = group {
                let _ = killpg(group, Signal::SIGTERM);
            }
            match tokio::time::timeout(EXIT_GRACE, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    match group {
                        Some(group) => {
                            let _ = killpg(group, Signal::SIGKILL);
                        }
                        None => child.start_kill()?,
                    }
                    child.wait().await
                }
            }
        }
    }
}

/// Where `setpriv` may be installed.
const SETPRIV_PATHS: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

/// `setpriv`, where the system has it: it asks the kernel to kill the child when its parent dies.
/// Looked up once, at the first spawn, which is also when its absence is logged.
fn parent_death_wrapper() -> Option<&'static str> {
    static SETPRIV: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *SETPRIV.get_or_init(|| find_setpriv(&SETPRIV_PATHS))
}

/// The first of `paths` that exists (on Linux only), with a warning when there is none: the
/// children are then still stopped with their connection, but a gateway killed with SIGKILL
/// leaves them running.
fn find_setpriv(paths: &[&'static str]) -> Option<&'static str> {
    let found = paths
        .iter()
        .copied()
        .find(|path| cfg!(target_os = "linux") && std::path::Path::new(path).exists());
    if found.is_none() {
        let fix = if cfg!(target_os = "linux") {
            "install util-linux's `setpriv` to fix this"
        } else {
            "this platform has no parent-death signal"
        };
        tracing::warn!(
            searched = ?paths,
            "no `setpriv`: stdio children may outlive the gateway if it is killed with SIGKILL; {fix}"
        );
    }
    found
}

struct ChildOutbound {
    writer: LineWriter,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    /// The task that reaps the child; joined by `close` so no child outlives it.
    exited: Mutex<Option<JoinHandle<()>>>,
}

#[async_trait]
impl Outbound for ChildOutbound {
    async fn send(&self, message: Message) -> Result<(), Error> {
        self.writer.send(message).await
    }

    /// Closes stdin (the MCP way to ask a stdio server to exit), kills the child if it has not
    /// exited after a grace period, and returns once it is gone.
    async fn close(&self) {
        self.writer.close().await;
        let kill = self.kill.lock().ok().and_then(|mut kill| kill.take());
        if let Some(kill) = kill {
            let _ = kill.send(());
        }
        let exited = self.exited.lock().ok().and_then(|mut exited| exited.take());
        if let Some(exited) = exited {
            // The reaper escalates within STDIN_GRACE + EXIT_GRACE, then waits at most another
            // EXIT_GRACE for the last output.
            let _ = tokio::time::timeout(STDIN_GRACE + EXIT_GRACE * 3, exited).await;
        }
    }
}

#[cfg(test)]
mod tests;
