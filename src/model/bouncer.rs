//! PgBouncer: one pool per process (one database/user pair), with the real one's lists — idle
//! servers reused LIFO, waiting clients served FIFO, one login in flight at a time — and its
//! counters (`cl_waiting`, `sv_active`, …). The engine drives it; see `sim/engine.rs` for
//! `per_loop_activate`, the janitor and the release points of each pool mode.

use super::NONE;
use crate::units::SimTime;
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvState {
    Free,
    /// Connecting and logging in (`SV_LOGIN`).
    Login,
    Idle,
    /// Linked to a client (`SV_ACTIVE`).
    Active,
    /// Running the reset query after a session ended (`SV_TESTED`).
    Tested,
}

#[derive(Clone, Debug)]
pub struct Server {
    pub state: SvState,
    pub client: u32,
    pub born: SimTime,
    pub idle_since: SimTime,
    pub reserve: bool,
    /// How the login in flight will fail, if it will.
    pub login_err: Option<crate::sim::metrics::Cause>,
}

#[derive(Clone, Copy, Debug)]
pub struct Waiter {
    pub conn: u32,
    pub token: u32,
    pub since: SimTime,
}

#[derive(Clone, Debug)]
pub struct BouncerPool {
    pub servers: Vec<Server>,
    free: Vec<u32>,
    /// Idle servers; the top (end) is the most recently released (LIFO reuse).
    pub idle: Vec<u32>,
    pub waiting: VecDeque<Waiter>,
    /// Valid entries in `waiting` (PgBouncer's `cl_waiting`).
    pub cl_waiting: u32,
    pub login_in_flight: bool,
    /// Servers logging in, idle, active or being reset.
    pub n_servers: u32,
    pub n_active: u32,
    /// Client connections (for `max_client_conn`).
    pub clients: u32,
    pub login_blocked_until: SimTime,
    pub last_login_failed: bool,
    /// When this process's single CPU is next free.
    pub cpu_free: SimTime,
    pub last_lifetime_close: SimTime,
}

impl BouncerPool {
    pub fn new() -> Self {
        BouncerPool {
            servers: Vec::with_capacity(64),
            free: Vec::new(),
            idle: Vec::with_capacity(64),
            waiting: VecDeque::with_capacity(256),
            cl_waiting: 0,
            login_in_flight: false,
            n_servers: 0,
            n_active: 0,
            clients: 0,
            login_blocked_until: SimTime::ZERO,
            last_login_failed: false,
            cpu_free: SimTime::ZERO,
            last_lifetime_close: SimTime::ZERO,
        }
    }

    /// A new server slot in `Login` state.
    pub fn alloc(&mut self, now: SimTime, reserve: bool) -> u32 {
        let s = Server {
            state: SvState::Login,
            client: NONE,
            born: now,
            idle_since: now,
            reserve,
            login_err: None,
        };
        self.n_servers += 1;
        match self.free.pop() {
            Some(i) => {
                self.servers[i as usize] = s;
                i
            }
            None => {
                self.servers.push(s);
                (self.servers.len() - 1) as u32
            }
        }
    }

    pub fn release_slot(&mut self, s: u32) {
        assert!(
            self.servers[s as usize].state != SvState::Free,
            "double free of a server"
        );
        self.servers[s as usize].state = SvState::Free;
        self.servers[s as usize].client = NONE;
        self.n_servers -= 1;
        self.free.push(s);
    }

    /// Connected servers (not logging in).
    pub fn connected(&self) -> u32 {
        self.n_servers - self.login_in_flight as u32
    }

    pub fn check(&self, cap: u32) {
        assert!(
            self.n_servers <= cap,
            "PgBouncer pool over pool_size + reserve_pool_size"
        );
        assert!(self.n_active + self.idle.len() as u32 <= self.n_servers);
    }
}

impl Default for BouncerPool {
    fn default() -> Self {
        Self::new()
    }
}
