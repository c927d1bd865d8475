//! State of the real components: PostgreSQL servers (connection slots and CPU), PgBouncer pools,
//! app pools and their connections. No event queue, no clock, no random numbers of their own: they
//! take `now` and sampled values, and the engine in `sim/` decides what happens next.

pub mod app;
pub mod backend;
pub mod bouncer;

/// "No such index" for u32 handles.
pub const NONE: u32 = u32::MAX;
