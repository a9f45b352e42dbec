//! Nothing here: this crate exists for its tests (`tests/api.rs`), which use `vigil-engine` only
//! through its documented public API, as another program embedding the engine would.
