//! The `mcp-gateway` command's config-file reader, a library only so that the fuzz targets in
//! `fuzz/` can reach it; the command itself is `main.rs`. Not a stable API.

pub mod config;
