//! App instances, their pools (asyncpg semantics by default) and the connections in them.
//!
//! A pool hands out idle connections LIFO, opens new ones lazily (the connect cost is paid inside
//! acquire, so it counts against the acquire timeout) up to `max_size`, and queues waiters FIFO.
//! Waiter entries are removed lazily: an entry whose request has moved on (its sequence number
//! changed) is skipped when it reaches the head.

use super::NONE;
use crate::units::SimTime;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    Free,
    Connecting,
    Idle,
    Busy,
}

/// One app connection: to PgBouncer (then it is also a PgBouncer client) or to a PostgreSQL server.
#[derive(Clone, Debug)]
pub struct Conn {
    pub pool: u32,
    pub state: ConnState,
    /// Queries run on this connection (for `max_queries` rotation).
    pub queries: u64,
    pub idle_since: SimTime,
    /// The PostgreSQL server (0 = primary, 1.. = replicas) for direct connections.
    pub pg: u32,
    pub via_bouncer: bool,
    /// PgBouncer process this client connection landed on.
    pub bproc: u32,
    /// The PgBouncer server linked to this client connection, or NONE.
    pub server: u32,
    /// Token of this connection's entry in PgBouncer's waiting list, or NONE when not waiting.
    pub bwait: u32,
    /// The request using (or connecting) this connection, or NONE.
    pub req: u32,
    /// The far end dropped the connection; it is closed at its next release.
    pub broken: bool,
    /// Outcome of the connection attempt: refused with this cause.
    pub refused: Option<crate::sim::metrics::Cause>,
    /// The acquire that opened it timed out while it was connecting: asyncpg cancels the
    /// attempt, so it is closed when it completes instead of joining the pool.
    pub abandoned: bool,
}

impl Conn {
    pub fn new(pool: u32) -> Self {
        Conn {
            pool,
            state: ConnState::Free,
            queries: 0,
            idle_since: SimTime::ZERO,
            pg: 0,
            via_bouncer: false,
            bproc: 0,
            server: NONE,
            bwait: NONE,
            req: NONE,
            broken: false,
            refused: None,
            abandoned: false,
        }
    }
}

/// One app pool: one route of one app instance.
#[derive(Clone, Debug)]
pub struct AppPool {
    /// Index into `Scenario::pools`.
    pub spec: u32,
    pub instance: u32,
    pub max_size: u32,
    /// Connections connecting, idle or busy.
    pub open: u32,
    pub busy: u32,
    /// Idle connections; the top (end) is the most recently released.
    pub idle: Vec<u32>,
    /// FIFO of (request, sequence number) waiting for a connection.
    pub waiters: VecDeque<(u32, u32)>,
    /// Round-robin cursor over replicas for new direct connections.
    pub rr: u32,
}

impl AppPool {
    pub fn new(spec: u32, instance: u32, max_size: u32) -> Self {
        let cap = (max_size as usize).min(4096);
        AppPool {
            spec,
            instance,
            max_size,
            open: 0,
            busy: 0,
            idle: Vec::with_capacity(cap),
            waiters: VecDeque::with_capacity(64),
            rr: 0,
        }
    }

    pub fn check(&self) {
        assert!(self.open <= self.max_size, "app pool over max_size");
        assert!(
            self.busy + self.idle.len() as u32 <= self.open,
            "app pool busy + idle exceeds open"
        );
    }
}

/// One app instance: CPU workers and its pools.
#[derive(Clone, Debug)]
pub struct Instance {
    pub in_flight: u32,
    pub cpu_busy: u32,
    pub cpu_queue: VecDeque<u32>,
    /// Pool per route (index into the engine's pools).
    pub pools: Vec<u32>,
}
