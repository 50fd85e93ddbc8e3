//! Entry points for the fuzz targets in `fuzz/`, which feed these readers of a peer's bytes
//! arbitrary input; they exist only for those targets and are not part of the API.

pub use crate::jsonrpc::{Incoming, answer_to, classify_raw};
pub use crate::transport::event_stream::{EventError, EventStream};
pub use crate::transport::lines::{Line, LineCodec};
