//! The durable store: the graph in memory, the JSON-lines file on disk, and the rule that ties
//! them — no change is applied in memory, and no call is answered, before it is on disk.
//!
//! # Persistence scheme
//!
//! The file is, at every moment, a complete file in the reference server's format (one JSON
//! object per line, `{"type":"entity",…}` or `{"type":"relation",…}`), so the reference reads
//! ours and we read the reference's — including right after a `kill -9`. Two kinds of write keep
//! it so:
//!
//! * **Additions are appended.** `create_entities` and `create_relations` only add records, and
//!   a record appended to a valid file leaves a valid file. The new lines are written with one
//!   `write(2)` and made durable with `fdatasync` before the call is answered, so these calls
//!   cost O(batch), not O(graph): creating one entity in a graph of 100k costs the same as in
//!   an empty one. If the write fails, the file is truncated back to its previous length.
//! * **Everything else rewrites the file.** `add_observations` and the three deletes change
//!   records in place, which the reference format cannot express as an append. The whole graph
//!   (as it will be after the change) is written to a temporary file in the same directory,
//!   `fsync`ed, renamed over the old file (atomic on POSIX), and the directory is `fsync`ed so
//!   the rename itself survives a power cut. A crash at any point leaves either the old or the
//!   new file, never a mix (a temporary file a crash left behind is removed at the next
//!   open). These calls cost O(graph): the price of staying readable by the
//!   reference without a second file. BENCHMARKS.md gives the figures.
//!
//! Appends never leave garbage behind (a record is only appended when it is new), so the file
//! needs no compaction beyond what rewrites already do.
//!
//! A half-written or corrupt line stops the load with [`MemoryError::Corrupt`], naming the file,
//! line and column; the file is never rewritten or truncated by a load. A lock file next to the
//! memory file (`<file>.lock`, held with `flock`) stops two servers from writing one file.
//!
//! Calls are serialised by one `RwLock`: reads share it, a write holds it exclusively from plan
//! to apply, including the `fsync`. The blocking work runs on tokio's blocking pool.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use fs4::FileExt;
use tokio::sync::broadcast;

use crate::MemoryError;
use crate::graph::{
    AddedObservations, Entity, Graph, KnowledgeGraph, Loaded, ObservationAddition,
    ObservationDeletion, Plan, Record, Relation, UnknownEntity,
};

#[cfg(test)]
mod tests;

/// The entities whose resources changed in one write; shared by every subscriber.
pub(crate) type Touched = Arc<HashSet<String>>;

/// How many change events a slow subscriber may fall behind before it is told it lagged.
const CHANGE_CAPACITY: usize = 256;

/// Distinguishes temporary files written by this process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The graph and its file. Shared (`Arc`) by every session of a `MemoryServer`.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    state: RwLock<State>,
    changes: broadcast::Sender<Touched>,
    /// Held open for the store's lifetime: the `flock` on it is the single-writer guard.
    _lock: File,
}

#[derive(Debug)]
struct State {
    graph: Graph,
    /// The append handle, or why writes stopped.
    log: Result<Log, String>,
}

#[derive(Debug)]
struct Log {
    file: File,
    len: u64,
    /// False for a file the reference wrote (it has no final newline): the next append must
    /// start a new line first.
    ends_with_newline: bool,
}

/// What happened to a change on its way to disk.
enum Outcome {
    /// On disk: apply it and answer.
    Durable,
    /// Not on disk: drop it and fail the call.
    NotWritten(MemoryError),
    /// On disk, but a later step failed (so the file cannot be vouched for): apply it, since
    /// the file has it, and fail the call.
    WrittenWithError(MemoryError),
}

impl Store {
    /// Locks and loads `path`, creating the file (and its directory) when it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Self, MemoryError> {
        let path = path.to_path_buf();
        let open_error = |source| MemoryError::Open {
            path: path.clone(),
            source,
        };
        let dir = parent_dir(&path);
        fs::create_dir_all(&dir).map_err(open_error)?;
        let lock_path = lock_path(&path);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(open_error)?;
        // Fully qualified: std's own `File::try_lock` is newer than the workspace's MSRV.
        match FileExt::try_lock(&lock) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(MemoryError::Locked {
                    path,
                    lock: lock_path,
                });
            }
            Err(fs4::TryLockError::Error(source)) => return Err(open_error(source)),
        }

        // With the lock held, no writer of ours is running: a temp file left by one was cut
        // short by a crash before its rename, and holds nothing that was acknowledged.
        remove_stale_temps(&path, &dir);
        let (graph, existing) = load(&path)?;
        let log = match existing {
            Some(ends_with_newline) => {
                let file = open_append(&path).map_err(open_error)?;
                let len = file.metadata().map_err(open_error)?.len();
                Log {
                    file,
                    len,
                    ends_with_newline,
                }
            }
            None => {
                let file = open_append(&path).map_err(open_error)?;
                sync_dir(&dir).map_err(open_error)?;
                Log {
                    file,
                    len: 0,
                    ends_with_newline: true,
                }
            }
        };
        tracing::info!(
            file = %path.display(),
            entities = graph.entity_count(),
            relations = graph.relation_count(),
            "memory file loaded"
        );
        let (changes, _) = broadcast::channel(CHANGE_CAPACITY);
        Ok(Self {
            path,
            state: RwLock::new(State {
                graph,
                log: Ok(log),
            }),
            changes,
            _lock: lock,
        })
    }

    /// The memory file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// A stream of the entity names each durable write touched.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Touched> {
        self.changes.subscribe()
    }

    /// Runs blocking store work on tokio's blocking pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, tokio::task::JoinError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> T + Send + 'static,
    {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&store)).await
    }

    pub(crate) fn create_entities(
        &self,
        entities: Vec<Entity>,
    ) -> Result<Vec<Entity>, MemoryError> {
        let mut state = self.write_state()?;
        let (created, plan) = state.graph.plan_create_entities(entities);
        if let Some(plan) = plan {
            self.commit(&mut state, plan)?;
        }
        Ok(created)
    }

    pub(crate) fn create_relations(
        &self,
        relations: Vec<Relation>,
    ) -> Result<Vec<Relation>, MemoryError> {
        let mut state = self.write_state()?;
        let (created, plan) = state.graph.plan_create_relations(relations);
        if let Some(plan) = plan {
            self.commit(&mut state, plan)?;
        }
        Ok(created)
    }

    pub(crate) fn add_observations(
        &self,
        additions: Vec<ObservationAddition>,
    ) -> Result<Result<Vec<AddedObservations>, UnknownEntity>, MemoryError> {
        let mut state = self.write_state()?;
        let (results, plan) = match state.graph.plan_add_observations(additions) {
            Ok(planned) => planned,
            Err(unknown) => return Ok(Err(unknown)),
        };
        if let Some(plan) = plan {
            self.commit(&mut state, plan)?;
        }
        Ok(Ok(results))
    }

    pub(crate) fn delete_entities(&self, names: Vec<String>) -> Result<(), MemoryError> {
        let mut state = self.write_state()?;
        if let Some(plan) = state.graph.plan_delete_entities(names) {
            self.commit(&mut state, plan)?;
        }
        Ok(())
    }

    pub(crate) fn delete_observations(
        &self,
        deletions: Vec<ObservationDeletion>,
    ) -> Result<(), MemoryError> {
        let mut state = self.write_state()?;
        if let Some(plan) = state.graph.plan_delete_observations(deletions) {
            self.commit(&mut state, plan)?;
        }
        Ok(())
    }

    pub(crate) fn delete_relations(&self, relations: Vec<Relation>) -> Result<(), MemoryError> {
        let mut state = self.write_state()?;
        if let Some(plan) = state.graph.plan_delete_relations(relations) {
            self.commit(&mut state, plan)?;
        }
        Ok(())
    }

    pub(crate) fn read_graph(&self) -> KnowledgeGraph {
        self.read_state().graph.read()
    }

    pub(crate) fn search_nodes(&self, query: &str) -> KnowledgeGraph {
        self.read_state().graph.search(query)
    }

    pub(crate) fn open_nodes(&self, names: &[String]) -> KnowledgeGraph {
        self.read_state().graph.open(names)
    }

    pub(crate) fn entity(&self, name: &str) -> Option<KnowledgeGraph> {
        self.read_state().graph.entity(name)
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        // Writers apply a plan only after it is on disk and applying cannot fail half-way, so
        // a panic elsewhere while holding the lock leaves a consistent graph to read.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>, MemoryError> {
        self.state.write().map_err(|_| MemoryError::Poisoned {
            reason: "a writer panicked".to_owned(),
        })
    }

    /// Makes `plan` durable, then applies it and tells subscribers.
    fn commit(&self, state: &mut State, plan: Plan) -> Result<(), MemoryError> {
        let outcome = if plan.is_append() {
            self.append(state, &plan)
        } else {
            self.rewrite(state, &plan)
        };
        let result = match outcome {
            Outcome::Durable => Ok(()),
            Outcome::NotWritten(err) => return Err(err),
            Outcome::WrittenWithError(err) => Err(err),
        };
        let touched = (self.changes.receiver_count() > 0).then(|| Arc::new(plan.touched().clone()));
        state.graph.apply(plan);
        if let Some(touched) = touched {
            // No receiver left between the check and here is fine: nobody to tell.
            let _ = self.changes.send(touched);
        }
        result
    }

    fn append(&self, state: &mut State, plan: &Plan) -> Outcome {
        let log = match &mut state.log {
            Ok(log) => log,
            Err(reason) => {
                return Outcome::NotWritten(MemoryError::Poisoned {
                    reason: reason.clone(),
                });
            }
        };
        let mut lines = Vec::new();
        if !log.ends_with_newline {
            lines.push(b'\n');
        }
        if let Err(source) = plan.write_appended(&mut lines) {
            return Outcome::NotWritten(self.write_error(source));
        }
        if let Err(source) = log.file.write_all(&lines) {
            // Take back whatever part of the lines reached the file.
            let previous = log.len;
            if let Err(undo) = log
                .file
                .set_len(previous)
                .and_then(|()| log.file.sync_data())
            {
                state.log = Err(format!(
                    "appending failed ({source}) and truncating back failed ({undo})"
                ));
            }
            return Outcome::NotWritten(self.write_error(source));
        }
        if let Err(source) = log.file.sync_data() {
            // After a failed fsync the kernel's view of the file can no longer be trusted
            // (the dirty pages may have been dropped), so stop writing altogether.
            state.log = Err(format!("fdatasync failed: {source}"));
            return Outcome::NotWritten(self.write_error(source));
        }
        log.len += lines.len() as u64;
        log.ends_with_newline = true;
        Outcome::Durable
    }

    fn rewrite(&self, state: &mut State, plan: &Plan) -> Outcome {
        if let Err(reason) = &state.log {
            return Outcome::NotWritten(MemoryError::Poisoned {
                reason: reason.clone(),
            });
        }
        let dir = parent_dir(&self.path);
        let temp = temp_path(&self.path);
        // The new file keeps the old one's permissions (a private memory stays private).
        let permissions = fs::metadata(&self.path).ok().map(|m| m.permissions());
        let written = write_temp(&temp, permissions, |out| {
            state.graph.write_snapshot(Some(plan), out)
        });
        let len = match written {
            Ok(len) => len,
            Err(source) => {
                let _ = fs::remove_file(&temp);
                return Outcome::NotWritten(self.write_error(source));
            }
        };
        if let Err(source) = fs::rename(&temp, &self.path) {
            let _ = fs::remove_file(&temp);
            return Outcome::NotWritten(self.write_error(source));
        }
        // The new file is in place; the old append handle points at the replaced inode.
        match sync_dir(&dir).and_then(|()| open_append(&self.path)) {
            Ok(file) => {
                state.log = Ok(Log {
                    file,
                    len,
                    ends_with_newline: true,
                });
                Outcome::Durable
            }
            Err(source) => {
                state.log = Err(format!("finishing a rewrite failed: {source}"));
                Outcome::WrittenWithError(self.write_error(source))
            }
        }
    }

    fn write_error(&self, source: io::Error) -> MemoryError {
        MemoryError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// Reads and parses the file: `None` for the state when it does not exist, else whether it
/// ends with a newline.
fn load(path: &Path) -> Result<(Graph, Option<bool>), MemoryError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok((Graph::default(), None)),
        Err(source) => {
            return Err(MemoryError::Open {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut graph = Graph::default();
    for (index, line) in bytes.split(|&byte| byte == b'\n').enumerate() {
        // The reference skips blank lines too (and tolerates `\r\n`: JSON allows the `\r`).
        if line.trim_ascii().is_empty() {
            continue;
        }
        let number = index + 1;
        let record: Record =
            serde_json::from_slice(line).map_err(|err| corrupt(path, number, &err))?;
        match record {
            Record::Entity(entity) => {
                let name = entity.name.clone();
                if let Loaded::MergedEntity { type_conflict } = graph.load_entity(entity) {
                    tracing::warn!(
                        file = %path.display(),
                        line = number,
                        entity = %name,
                        type_conflict,
                        "a second record for an entity was merged into the first"
                    );
                }
            }
            Record::Relation(relation) => {
                graph.load_relation(relation);
            }
        }
    }
    let ends_with_newline = bytes.last().is_none_or(|&byte| byte == b'\n');
    Ok((graph, Some(ends_with_newline)))
}

fn corrupt(path: &Path, line: usize, err: &serde_json::Error) -> MemoryError {
    // serde_json's message ends with its own position, "at line 1 column N", which would only
    // confuse next to the file's line number.
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    MemoryError::Corrupt {
        path: path.to_path_buf(),
        line,
        column: err.column(),
        message,
    }
}

/// Writes a fresh temporary file through `fill`, `fsync`s it, and returns its length.
fn write_temp(
    temp: &Path,
    permissions: Option<fs::Permissions>,
    fill: impl FnOnce(&mut BufWriter<&File>) -> io::Result<()>,
) -> io::Result<u64> {
    let file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    if let Some(permissions) = permissions {
        file.set_permissions(permissions)?;
    }
    let mut out = BufWriter::with_capacity(1 << 20, &file);
    fill(&mut out)?;
    out.flush()?;
    drop(out);
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// Removes `<file>.<pid>-<n>.tmp` files (only ours: the reference names its own differently).
fn remove_stale_temps(path: &Path, dir: &Path) {
    let Some(base) = path.file_name().and_then(|name| name.to_str()) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|name| is_our_temp(base, name)) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => {
                tracing::info!(file = %entry.path().display(), "removed an interrupted rewrite")
            }
            Err(err) => tracing::warn!(
                file = %entry.path().display(),
                error = %err,
                "could not remove an interrupted rewrite"
            ),
        }
    }
}

fn is_our_temp(base: &str, name: &str) -> bool {
    let Some(middle) = name
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_suffix(".tmp"))
    else {
        return false;
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    middle
        .split_once('-')
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    PathBuf::from(name)
}

/// Makes a directory entry change (a create or a rename) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Other platforms cannot open a directory as a file; their rename is as durable as it gets.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
