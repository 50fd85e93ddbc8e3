//! The crate's one error type.

use std::io;
use std::path::PathBuf;

/// What can go wrong opening, writing or serving the memory file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryError {
    /// The memory file (or its directory) could not be read or created.
    #[error("could not open the memory file {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A line of the memory file is not a valid entity or relation record. The file is left
    /// exactly as it is: fix or remove the line, then start again.
    #[error("{}:{line}:{column}: {message}; the file was not changed", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// 1-based column within the line.
        column: usize,
        /// What is wrong with the line.
        message: String,
    },
    /// Another process (or another `MemoryServer` in this one) has the file open.
    #[error("{} is already in use by another memory server (lock file {})", path.display(), lock.display())]
    Locked {
        /// The file.
        path: PathBuf,
        /// The lock file next to it.
        lock: PathBuf,
    },
    /// A change could not be made durable; it was not applied.
    #[error("could not save the knowledge graph to {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An earlier I/O failure left the file in a state this process cannot vouch for, so it
    /// accepts no more writes; reads still answer from memory. Restart the server.
    #[error("the memory store accepts no more writes after an earlier I/O failure: {reason}")]
    Poisoned {
        /// The earlier failure.
        reason: String,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed")]
    Serve(#[source] io::Error),
}
