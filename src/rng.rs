//! Random number streams: PCG (`rand_pcg::Pcg64Mcg`), seeded by what a run *is*.
//!
//! A replication's seed for one source of randomness is derived from (master seed, replication
//! index, stream) with SplitMix64 — never from a thread or a position in a work queue — so the same
//! inputs give the same numbers whatever the thread count, and every sweep point sees the same
//! random numbers (common random numbers). Each source of randomness has its own stream, so that
//! changing, say, the pool size does not shift the think times users draw.

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// The generator used everywhere in the engine.
pub type Rng = Pcg64Mcg;

/// One independent stream per source of randomness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Stream {
    Think = 1,
    Arrivals = 2,
    TxMix = 3,
    AppCpu = 4,
    StatementWait = 5,
    StatementCpu = 6,
    Gap = 7,
    Connect = 8,
    AcquireTimeout = 9,
    ClientTimeout = 10,
    Balance = 11,
    Retry = 12,
    Bouncer = 13,
    /// Live mode: values of the workload's SQL parameters.
    SqlParams = 14,
    /// The database host's wake-up from idle (`network.wakeup`).
    Wakeup = 15,
    /// The core a statement is placed on when every core is busy
    /// (`postgres.cpu_scheduling: per_core`); one generator per server, see [`stream_of`].
    CpuPlacement = 16,
    /// Whether a response to an app on the database host waits behind a running statement
    /// (`postgres.response_behind_statement`), and behind which; with every core running a
    /// statement, the one whose core the app's thread waits for. PgBouncer's thread draws
    /// that from `Bouncer`.
    BehindStatement = 17,
}

/// SplitMix64 finaliser: a bijective mix of 64 bits.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 128-bit seed of one stream of one replication.
pub fn derive_seed(master: u64, replication: u32, stream: Stream) -> u128 {
    let a = splitmix64(master ^ splitmix64(replication as u64 ^ 0x5EED));
    let b = splitmix64(a ^ splitmix64(stream as u64));
    let c = splitmix64(b ^ 0xA5A5_A5A5_A5A5_A5A5);
    ((b as u128) << 64) | c as u128
}

/// A generator for one stream of one replication.
pub fn stream(master: u64, replication: u32, stream: Stream) -> Rng {
    let seed = derive_seed(master, replication, stream);
    Pcg64Mcg::from_seed(seed.to_le_bytes())
}

/// A generator for one of several servers of one stream of one replication: `index` 0 is
/// [`stream`] itself, others are derived from it.
pub fn stream_of(master: u64, replication: u32, stream: Stream, index: u64) -> Rng {
    let mut seed = derive_seed(master, replication, stream);
    if index > 0 {
        let hi = splitmix64((seed >> 64) as u64 ^ splitmix64(index));
        let lo = splitmix64(seed as u64 ^ splitmix64(hi ^ index));
        seed = ((hi as u128) << 64) | lo as u128;
    }
    Pcg64Mcg::from_seed(seed.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let mut a = stream(7, 0, Stream::Think);
        let mut b = stream(7, 0, Stream::Think);
        assert_eq!(a.next_u64(), b.next_u64());
        let mut c = stream(7, 1, Stream::Think);
        let mut d = stream(7, 0, Stream::Arrivals);
        let x = stream(7, 0, Stream::Think).next_u64();
        assert_ne!(x, c.next_u64());
        assert_ne!(x, d.next_u64());
        assert_ne!(stream(8, 0, Stream::Think).next_u64(), x);
        let y = stream(7, 0, Stream::CpuPlacement).next_u64();
        assert_eq!(stream_of(7, 0, Stream::CpuPlacement, 0).next_u64(), y);
        let z = stream_of(7, 0, Stream::CpuPlacement, 1).next_u64();
        assert_ne!(z, y);
        assert_ne!(stream_of(7, 0, Stream::CpuPlacement, 2).next_u64(), z);
    }
}
