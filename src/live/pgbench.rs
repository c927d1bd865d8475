//! Import of pgbench per-transaction logs (`pgbench -l`) into one summary:
//! transaction counts, throughput, latency distribution and schedule lag.
//!
//! # Log layout
//!
//! pgbench writes one file per thread, `PREFIX.PID` for thread 0 and
//! `PREFIX.PID.THREAD` for the others (`PREFIX` is `pgbench_log` unless
//! `--log-prefix` is given). Each line describes one transaction:
//!
//! ```text
//! client_id transaction_no time script_no time_epoch time_us [schedule_lag] [retries]
//! ```
//!
//! * `time` is the latency in microseconds, measured from the transaction's
//!   *scheduled* start, so under `--rate` it includes the schedule lag. It is
//!   `skipped` for a transaction dropped by `--latency-limit` under `--rate`,
//!   and (PostgreSQL 15 and later) `failed` for a transaction that ended in a
//!   serialization or deadlock error, or `serialization` / `deadlock` /
//!   `other` with `--failures-detailed`.
//! * `time_epoch time_us` is the Unix time at which the line was logged, right
//!   after the transaction ended.
//! * `schedule_lag` (µs) is present with `--rate`; it is logged as 0 for
//!   failed and skipped transactions.
//! * `retries` is present with PostgreSQL 15+ when `--max-tries` is not 1.
//!
//! Every line of a run has the same fields, so the import insists that all
//! lines have the same number of fields. A 7-field line is ambiguous: the
//! seventh field is either the schedule lag or the retry count, and pgbench
//! does not say which. [`SeventhField::Auto`] decides from the whole import:
//! a `skipped` line proves `--rate` (so the field is the lag); a non-zero value
//! on a failed line proves retries (the lag is logged as 0 there); otherwise
//! the field is read as the lag when fewer than 10 % of the completed
//! transactions show 0 in it. A measured lag is practically never 0 µs (timer
//! wake-up alone takes tens of µs), whereas most transactions succeed on
//! their first try; the fixtures under `tests/data/pgbench` show 0.4 % zeros
//! for lag and 86 % for retries. Set the field explicitly with
//! [`ImportOptions::seventh_field`] when in doubt.
//!
//! Aggregated logs (`--aggregate-interval`) have no per-transaction latency
//! and are rejected with [`PgbenchError::AggregatedLog`].
//!
//! # Statistics
//!
//! Like pgbench, latency mean and standard deviation (population, as pgbench
//! prints it) cover completed transactions only; failed and skipped ones are
//! counted separately. Percentiles come from an HDR histogram of µs values
//! with three significant digits (reported values are within 0.1 % of the
//! recorded ones); minimum and maximum are exact. Memory does not grow with
//! the number of transactions: lines are streamed, one histogram of fixed
//! size holds the distribution, and the remaining state is per client and per
//! script.
//!
//! # Duration and TPS
//!
//! pgbench prints `tps = completed / D (without initial connection time)`,
//! where `D` runs from the moment the earliest thread has opened its
//! connections (after the "initial connection time") until every thread has
//! finished and been joined. The log does not record `D`; the import
//! estimates it from the window the transactions cover, from the earliest
//! scheduled start (`end − latency`, across all files; failed and skipped
//! lines contribute their end time only) to the latest end:
//!
//! * Without `--rate` clients start their first transaction microseconds
//!   after the clock starts and pgbench stops it right after the last one
//!   ends (disconnecting and joining threads take well under a millisecond
//!   on a local server), so the window underestimates `D` by well under
//!   0.1 % for a run of a few seconds (0.005 % on the `select-only` fixture).
//! * With `--rate` the first scheduled start comes an exponentially
//!   distributed delay after the clock starts, with mean `1/rate`. The
//!   estimate adds that mean, `window / N` for `N` scheduled transactions;
//!   what remains is the delay's own spread, about `1/(rate · D)` relative
//!   (0.1 % for 300 tps over 3 s).
//!
//! The fixtures reproduce pgbench's printed TPS within 0.1 %. When `D` is
//! known better, pass it as [`ImportOptions::duration_s`]; note that `-T`
//! alone overestimates `D` by pgbench's initial connection time because the
//! `-T` timer starts before the connections are made.
//!
//! With `--sampling-rate` only a sample of the transactions is logged; the
//! gaps in the per-client transaction numbers reveal it, and
//! [`PgbenchSummary::logged_fraction`] is then below 1 (counts and TPS
//! describe the logged sample only).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use serde::Serialize;

/// pgbench's own limit on the number of scripts (`MAX_SCRIPTS`); a larger
/// `script_no` marks a malformed line.
pub const MAX_SCRIPTS: u32 = 128;

/// The default log file prefix of pgbench.
pub const DEFAULT_LOG_PREFIX: &str = "pgbench_log";

/// Largest latency or schedule lag accepted, in µs (about 11.6 days).
const MAX_LATENCY_US: u64 = 1_000_000_000_000;
/// Largest `time_epoch` accepted (the year 5138).
const MAX_EPOCH_S: u64 = 100_000_000_000;
/// Lines are at most this long in a pgbench log (real lines are < 100 bytes);
/// longer lines are malformed and only this much of them is kept in memory.
const MAX_LINE_BYTES: usize = 4096;
/// How many distinct client ids an import accepts.
const MAX_CLIENTS: usize = 1 << 20;
/// How much of a malformed line an error message quotes.
const SHOWN_LINE_CHARS: usize = 160;
/// An aggregated log's first field is a Unix time; per-transaction client ids
/// never get this large.
const MIN_AGGREGATE_EPOCH: u64 = 100_000_000;
/// Significant decimal digits of the latency histogram.
const HISTOGRAM_DIGITS: u8 = 3;

/// What the seventh field of a 7-field log line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeventhField {
    /// Decide from the data (see the module documentation).
    #[default]
    Auto,
    /// `schedule_lag`: pgbench ran with `--rate` and `--max-tries 1`.
    ScheduleLag,
    /// `retries`: pgbench 15+ ran with `--max-tries` other than 1 and without
    /// `--rate`.
    Retries,
}

/// Options of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ImportOptions {
    /// Benchmark duration in seconds to compute TPS with, instead of the
    /// estimate from the log (see the module documentation).
    pub duration_s: Option<f64>,
    /// How to read the seventh field of 7-field lines.
    pub seventh_field: SeventhField,
}

/// Errors of the import. Nothing in it panics on any input.
#[derive(Debug, thiserror::Error)]
pub enum PgbenchError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file, directory or reader name.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line is not a pgbench per-transaction log line.
    #[error("{file}:{line}: malformed pgbench log line {text:?}: expected {expected}")]
    Malformed {
        /// The file or reader name.
        file: String,
        /// 1-based line number.
        line: u64,
        /// The line (lossily decoded, shortened if very long).
        text: String,
        /// What the line should have looked like.
        expected: String,
    },
    /// The log was written with `--aggregate-interval`.
    #[error(
        "{file}:{line}: {text:?} is a line of an aggregated pgbench log \
         (--aggregate-interval), which has no per-transaction latencies; \
         rerun pgbench with -l and without --aggregate-interval"
    )]
    AggregatedLog {
        /// The file or reader name.
        file: String,
        /// 1-based line number.
        line: u64,
        /// The line.
        text: String,
    },
    /// A path matched no pgbench log file.
    #[error(
        "no pgbench log files at {}: expected a log file, a directory holding \
         {DEFAULT_LOG_PREFIX}.PID[.THREAD] files, or a prefix PATH/PREFIX of \
         PREFIX.PID[.THREAD] files",
        path.display()
    )]
    NoLogFiles {
        /// The path given.
        path: PathBuf,
    },
    /// The files come from more than one pgbench run.
    #[error(
        "the log files come from {} pgbench runs ({}); import one run at a time",
        runs.len(),
        runs.join(", ")
    )]
    SeveralRuns {
        /// `PREFIX.PID` of each run, with its directory.
        runs: Vec<String>,
    },
    /// The files hold no log line at all.
    #[error("no transactions in the pgbench logs {0}")]
    Empty(String),
    /// [`ImportOptions::duration_s`] is not a positive finite number.
    #[error("invalid benchmark duration {0} s: expected a finite number of seconds above zero")]
    InvalidDuration(f64),
}

/// Which optional fields the imported lines carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LogLayout {
    /// Fields per line: 6, 7 or 8 (0 when nothing was imported).
    pub fields: u8,
    /// Lines carry `schedule_lag` (pgbench ran with `--rate`).
    pub schedule_lag: bool,
    /// Lines carry `retries` (pgbench 15+ with `--max-tries` other than 1).
    pub retries: bool,
}

/// Per-script figures (`script_no` as logged: 0 is pgbench's "SQL script 1").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScriptSummary {
    /// The script's number in the log (0-based).
    pub script_no: u32,
    /// Completed transactions.
    pub transactions: u64,
    /// Failed transactions.
    pub failed: u64,
    /// Skipped transactions.
    pub skipped: u64,
    /// Transactions (completed or failed) that needed more than one try.
    pub retried: u64,
    /// Mean latency of the completed transactions, in ms (0 when none).
    pub latency_mean_ms: f64,
}

/// What an import found. All values are finite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PgbenchSummary {
    /// Files (or readers) imported.
    pub files: usize,
    /// Log lines imported (completed + failed + skipped).
    pub lines: u64,
    /// Which optional fields the lines carry.
    pub layout: LogLayout,
    /// Completed transactions (pgbench's "actually processed").
    pub transactions: u64,
    /// Failed transactions (serialization or deadlock errors not retried
    /// successfully, or other errors under `--continue-on-error`).
    pub failed: u64,
    /// Failures logged as `serialization` (`--failures-detailed`).
    pub serialization_failures: u64,
    /// Failures logged as `deadlock` (`--failures-detailed`).
    pub deadlock_failures: u64,
    /// Failures logged as `other` (`--failures-detailed`).
    pub other_failures: u64,
    /// Transactions skipped under `--rate` with `--latency-limit`.
    pub skipped: u64,
    /// Transactions (completed or failed) that needed more than one try.
    pub retried: u64,
    /// Retries in all transactions.
    pub retries: u64,
    /// Distinct client ids.
    pub clients: u32,
    /// Logged lines over the transactions the per-client transaction numbers
    /// span: 1 for a complete log, below 1 for a log written with
    /// `--sampling-rate` (or with lines missing), above 1 when transaction
    /// numbers repeat (logs of several runs mixed).
    pub logged_fraction: f64,
    /// Benchmark duration TPS is computed with, in seconds: the estimate from
    /// the log, or [`ImportOptions::duration_s`].
    pub duration_s: f64,
    /// Whether `duration_s` is the estimate from the log.
    pub duration_estimated: bool,
    /// From the earliest scheduled start to the latest end, in seconds.
    pub window_s: f64,
    /// Unix time of the earliest scheduled start, in seconds.
    pub window_start_unix_s: f64,
    /// Completed transactions per second of `duration_s`.
    pub tps: f64,
    /// Mean latency of completed transactions, in ms.
    pub latency_mean_ms: f64,
    /// Population standard deviation of the latency, in ms.
    pub latency_stddev_ms: f64,
    /// Smallest latency, in ms.
    pub latency_min_ms: f64,
    /// Median latency, in ms.
    pub latency_p50_ms: f64,
    /// 90th percentile latency, in ms.
    pub latency_p90_ms: f64,
    /// 95th percentile latency, in ms.
    pub latency_p95_ms: f64,
    /// 99th percentile latency, in ms.
    pub latency_p99_ms: f64,
    /// 99.9th percentile latency, in ms.
    pub latency_p999_ms: f64,
    /// Largest latency, in ms.
    pub latency_max_ms: f64,
    /// `clients · duration / (completed + failed + skipped)`, in ms: the
    /// "latency average" pgbench prints when it does not measure latencies
    /// (no `--rate`, `--latency-limit` or `--progress`). It exceeds the
    /// measured mean by the client's time between transactions, and includes
    /// failed transactions.
    pub runtime_latency_ms: f64,
    /// Mean schedule lag of completed transactions, in ms; `None` without a
    /// lag field or without completed transactions.
    pub schedule_lag_mean_ms: Option<f64>,
    /// Largest schedule lag of completed transactions, in ms.
    pub schedule_lag_max_ms: Option<f64>,
    /// Per-script figures, by script number.
    pub per_script: Vec<ScriptSummary>,
}

/// How a logged transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Completed, with its latency in µs.
    Completed(u64),
    Skipped,
    Failed(FailureKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureKind {
    Unspecified,
    Serialization,
    Deadlock,
    Other,
}

/// One parsed log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    client: u32,
    transaction: u64,
    outcome: Outcome,
    script: u32,
    /// Log time in µs since the Unix epoch.
    end_us: u64,
    fields: u8,
    /// Seventh and eighth fields, when present.
    seventh: Option<u64>,
    eighth: Option<u64>,
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LineProblem {
    Expected(String),
    Aggregated,
}

/// Running mean and variance (Welford).
#[derive(Debug, Clone, Copy, Default)]
struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn population_stddev(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2 / self.count as f64).max(0.0).sqrt()
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct ClientState {
    lines: u64,
    first: u64,
    last: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct ScriptState {
    completed: u64,
    failed: u64,
    skipped: u64,
    retried: u64,
    latency_sum_us: u128,
}

/// Accumulates pgbench per-transaction log files into a [`PgbenchSummary`].
///
/// Feed it every file of one run (all threads) with [`add_file`] or
/// [`add_reader`], then ask for the [`summary`]. After an error the import
/// holds the lines read before the bad one and should be discarded.
///
/// [`add_file`]: PgbenchImport::add_file
/// [`add_reader`]: PgbenchImport::add_reader
/// [`summary`]: PgbenchImport::summary
#[derive(Debug, Clone)]
pub struct PgbenchImport {
    options: ImportOptions,
    files: usize,
    lines: u64,
    fields: Option<u8>,
    completed: u64,
    skipped: u64,
    failed: [u64; 4],
    latency: Welford,
    histogram: Histogram<u64>,
    latency_min_us: u64,
    latency_max_us: u64,
    window_start_us: u64,
    window_end_us: u64,
    /// Lag candidates: the seventh field of completed lines.
    lag_count: u64,
    lag_sum_us: u128,
    lag_max_us: u64,
    /// Retry candidates: the last field of non-skipped lines.
    retried: u64,
    retries: u64,
    /// Evidence for [`SeventhField::Auto`] on 7-field lines.
    seventh_zero_on_completed: u64,
    seventh_nonzero_on_failed: u64,
    clients: HashMap<u32, ClientState>,
    scripts: BTreeMap<u32, ScriptState>,
}

impl Default for PgbenchImport {
    fn default() -> Self {
        Self::new()
    }
}

impl PgbenchImport {
    /// An empty import with default options.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, HISTOGRAM_DIGITS)
            .expect("constant histogram bounds are valid");
        Self {
            options: ImportOptions::default(),
            files: 0,
            lines: 0,
            fields: None,
            completed: 0,
            skipped: 0,
            failed: [0; 4],
            latency: Welford::default(),
            histogram,
            latency_min_us: u64::MAX,
            latency_max_us: 0,
            window_start_us: u64::MAX,
            window_end_us: 0,
            lag_count: 0,
            lag_sum_us: 0,
            lag_max_us: 0,
            retried: 0,
            retries: 0,
            seventh_zero_on_completed: 0,
            seventh_nonzero_on_failed: 0,
            clients: HashMap::new(),
            scripts: BTreeMap::new(),
        }
    }

    /// An empty import with the given options.
    pub fn with_options(options: ImportOptions) -> Result<Self, PgbenchError> {
        if let Some(d) = options.duration_s {
            if !(d.is_finite() && d > 0.0) {
                return Err(PgbenchError::InvalidDuration(d));
            }
        }
        Ok(Self {
            options,
            ..Self::new()
        })
    }

    /// Imports one log file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), PgbenchError> {
        let file = File::open(path).map_err(|source| PgbenchError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_reader(&path.display().to_string(), BufReader::new(file))
    }

    /// Imports one log from a reader; `name` identifies it in errors.
    pub fn add_reader(&mut self, name: &str, mut reader: impl BufRead) -> Result<(), PgbenchError> {
        let mut buf = Vec::with_capacity(128);
        let mut line_no = 0u64;
        self.files += 1;
        loop {
            let overlong = match read_line_bounded(&mut reader, &mut buf) {
                Ok(Some(overlong)) => overlong,
                Ok(None) => return Ok(()),
                Err(source) => {
                    return Err(PgbenchError::Io {
                        path: PathBuf::from(name),
                        source,
                    })
                }
            };
            line_no += 1;
            let malformed = |expected: String| PgbenchError::Malformed {
                file: name.to_string(),
                line: line_no,
                text: shown_line(&buf),
                expected,
            };
            if overlong {
                return Err(malformed(format!(
                    "a line of at most {MAX_LINE_BYTES} bytes"
                )));
            }
            let record = match parse_line(&buf) {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(LineProblem::Expected(expected)) => return Err(malformed(expected)),
                Err(LineProblem::Aggregated) => {
                    return Err(PgbenchError::AggregatedLog {
                        file: name.to_string(),
                        line: line_no,
                        text: shown_line(&buf),
                    })
                }
            };
            match self.fields {
                None => self.fields = Some(record.fields),
                Some(fields) if fields != record.fields => {
                    return Err(malformed(format!(
                        "{fields} fields like the earlier lines (pgbench writes the same \
                         fields on every line of a run), not {}",
                        record.fields
                    )))
                }
                Some(_) => {}
            }
            if !self.clients.contains_key(&record.client) && self.clients.len() >= MAX_CLIENTS {
                return Err(malformed(format!(
                    "at most {MAX_CLIENTS} distinct client ids"
                )));
            }
            self.record(&record);
        }
    }

    fn record(&mut self, r: &Record) {
        self.lines += 1;
        self.window_end_us = self.window_end_us.max(r.end_us);
        let start_us = match r.outcome {
            Outcome::Completed(latency) => r.end_us.saturating_sub(latency),
            Outcome::Skipped | Outcome::Failed(_) => r.end_us,
        };
        self.window_start_us = self.window_start_us.min(start_us);

        self.clients
            .entry(r.client)
            .and_modify(|c| {
                c.lines += 1;
                c.first = c.first.min(r.transaction);
                c.last = c.last.max(r.transaction);
            })
            .or_insert(ClientState {
                lines: 1,
                first: r.transaction,
                last: r.transaction,
            });

        // The lag is the seventh field; the retry count is the last one.
        let lag = r.seventh;
        let retries = if r.fields == 8 { r.eighth } else { r.seventh };
        let retried = match r.outcome {
            Outcome::Skipped => false,
            Outcome::Completed(_) | Outcome::Failed(_) => retries.is_some_and(|n| n > 0),
        };
        if retried {
            self.retried += 1;
            self.retries = self.retries.saturating_add(retries.unwrap_or(0));
        }

        let script = self.scripts.entry(r.script).or_default();
        if retried {
            script.retried += 1;
        }
        match r.outcome {
            Outcome::Completed(latency) => {
                self.completed += 1;
                self.latency.push(latency as f64);
                self.histogram.saturating_record(latency);
                self.latency_min_us = self.latency_min_us.min(latency);
                self.latency_max_us = self.latency_max_us.max(latency);
                script.completed += 1;
                script.latency_sum_us += u128::from(latency);
                if let Some(lag) = lag {
                    self.lag_count += 1;
                    self.lag_sum_us += u128::from(lag);
                    self.lag_max_us = self.lag_max_us.max(lag);
                    if r.fields == 7 && lag == 0 {
                        self.seventh_zero_on_completed += 1;
                    }
                }
            }
            Outcome::Skipped => {
                self.skipped += 1;
                script.skipped += 1;
            }
            Outcome::Failed(kind) => {
                self.failed[kind as usize] += 1;
                script.failed += 1;
                if r.fields == 7 && r.seventh.is_some_and(|v| v > 0) {
                    self.seventh_nonzero_on_failed += 1;
                }
            }
        }
    }

    /// Which optional fields the imported lines carry.
    pub fn layout(&self) -> LogLayout {
        let fields = self.fields.unwrap_or(0);
        let seventh_is_lag = match self.options.seventh_field {
            SeventhField::ScheduleLag => true,
            SeventhField::Retries => false,
            SeventhField::Auto => {
                if self.skipped > 0 {
                    // Only --rate skips transactions, so the lag is there.
                    true
                } else if self.seventh_nonzero_on_failed > 0 {
                    // The lag of a failed transaction is logged as 0.
                    false
                } else {
                    self.completed > 0 && self.seventh_zero_on_completed * 10 < self.completed
                }
            }
        };
        LogLayout {
            fields,
            schedule_lag: fields == 8 || (fields == 7 && seventh_is_lag),
            retries: fields == 8 || (fields == 7 && !seventh_is_lag),
        }
    }

    /// Log lines imported so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The summary of everything imported so far.
    pub fn summary(&self) -> PgbenchSummary {
        let layout = self.layout();
        let us_to_ms = |us: f64| us / 1000.0;
        let (window_s, window_start_unix_s) = if self.lines == 0 {
            (0.0, 0.0)
        } else {
            (
                self.window_end_us.saturating_sub(self.window_start_us) as f64 / 1e6,
                self.window_start_us as f64 / 1e6,
            )
        };

        let (mut spanned, mut logged) = (0u64, 0u64);
        for c in self.clients.values() {
            spanned = spanned.saturating_add((c.last - c.first).saturating_add(1));
            logged = logged.saturating_add(c.lines);
        }
        let logged_fraction = if spanned == 0 {
            1.0
        } else {
            logged as f64 / spanned as f64
        };

        let (duration_s, duration_estimated) = match self.options.duration_s {
            Some(d) => (d, false),
            None => {
                let mut d = window_s;
                if layout.schedule_lag && spanned > 0 {
                    // The first scheduled start trails the clock's start by
                    // one mean inter-arrival time (see the module docs).
                    d += window_s / spanned as f64;
                }
                (d, true)
            }
        };
        let tps = if duration_s > 0.0 {
            self.completed as f64 / duration_s
        } else {
            0.0
        };
        let failed: u64 = self.failed.iter().sum();
        let attempted = self.completed + failed + self.skipped;
        let clients = u32::try_from(self.clients.len()).unwrap_or(u32::MAX);
        let runtime_latency_ms = if attempted == 0 {
            0.0
        } else {
            f64::from(clients) * duration_s * 1000.0 / attempted as f64
        };

        let quantile_ms = |q: f64| {
            if self.completed == 0 {
                0.0
            } else {
                us_to_ms(self.histogram.value_at_quantile(q) as f64)
            }
        };
        let (lag_mean, lag_max) = if layout.schedule_lag && self.lag_count > 0 {
            (
                Some(us_to_ms(self.lag_sum_us as f64 / self.lag_count as f64)),
                Some(us_to_ms(self.lag_max_us as f64)),
            )
        } else {
            (None, None)
        };

        PgbenchSummary {
            files: self.files,
            lines: self.lines,
            layout,
            transactions: self.completed,
            failed,
            serialization_failures: self.failed[FailureKind::Serialization as usize],
            deadlock_failures: self.failed[FailureKind::Deadlock as usize],
            other_failures: self.failed[FailureKind::Other as usize],
            skipped: self.skipped,
            retried: if layout.retries { self.retried } else { 0 },
            retries: if layout.retries { self.retries } else { 0 },
            clients,
            logged_fraction,
            duration_s,
            duration_estimated,
            window_s,
            window_start_unix_s,
            tps,
            latency_mean_ms: us_to_ms(self.latency.mean),
            latency_stddev_ms: us_to_ms(self.latency.population_stddev()),
            latency_min_ms: if self.completed == 0 {
                0.0
            } else {
                us_to_ms(self.latency_min_us as f64)
            },
            latency_p50_ms: quantile_ms(0.50),
            latency_p90_ms: quantile_ms(0.90),
            latency_p95_ms: quantile_ms(0.95),
            latency_p99_ms: quantile_ms(0.99),
            latency_p999_ms: quantile_ms(0.999),
            latency_max_ms: us_to_ms(self.latency_max_us as f64),
            runtime_latency_ms,
            schedule_lag_mean_ms: lag_mean,
            schedule_lag_max_ms: lag_max,
            per_script: self
                .scripts
                .iter()
                .map(|(&script_no, s)| ScriptSummary {
                    script_no,
                    transactions: s.completed,
                    failed: s.failed,
                    skipped: s.skipped,
                    retried: if layout.retries { s.retried } else { 0 },
                    latency_mean_ms: if s.completed == 0 {
                        0.0
                    } else {
                        us_to_ms(s.latency_sum_us as f64 / s.completed as f64)
                    },
                })
                .collect(),
        }
    }
}

/// Imports one pgbench run with default options; see [`import_paths_with`].
pub fn import_paths(paths: &[PathBuf]) -> Result<PgbenchSummary, PgbenchError> {
    import_paths_with(paths, ImportOptions::default())
}

/// Imports the log files of one pgbench run. Each path may be a log file, a
/// directory, or a prefix; see [`resolve_log_paths`].
pub fn import_paths_with(
    paths: &[PathBuf],
    options: ImportOptions,
) -> Result<PgbenchSummary, PgbenchError> {
    let mut import = PgbenchImport::with_options(options)?;
    let files = resolve_log_paths(paths)?;
    for file in &files {
        import.add_file(file)?;
    }
    if import.lines() == 0 {
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        return Err(PgbenchError::Empty(names.join(", ")));
    }
    Ok(import.summary())
}

/// The parts of a log file name `PREFIX.PID[.THREAD]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LogName {
    prefix: String,
    pid: u64,
    thread: Option<u64>,
}

fn parse_log_name(name: &str) -> Option<LogName> {
    let digits = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    let (rest, last) = name.rsplit_once('.')?;
    let last = digits(last)?;
    if let Some((prefix, pid)) = rest.rsplit_once('.') {
        if let Some(pid) = digits(pid) {
            if !prefix.is_empty() {
                return Some(LogName {
                    prefix: prefix.to_string(),
                    pid,
                    thread: Some(last),
                });
            }
        }
    }
    if rest.is_empty() {
        return None;
    }
    Some(LogName {
        prefix: rest.to_string(),
        pid: last,
        thread: None,
    })
}

/// Log files in `dir` whose names satisfy `keep`, with their parsed names.
fn log_files_in(
    dir: &Path,
    keep: impl Fn(&LogName) -> bool,
) -> Result<Vec<(PathBuf, LogName)>, PgbenchError> {
    let io_err = |source| PgbenchError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let Some(name) = entry.file_name().to_str().and_then(parse_log_name) else {
            continue;
        };
        if keep(&name) && entry.path().is_file() {
            found.push((entry.path(), name));
        }
    }
    Ok(found)
}

/// Expands the paths given to an import into the log files of one run:
///
/// * a directory stands for its `pgbench_log.PID[.THREAD]` files;
/// * a file stands for itself, and a thread-0 file `PREFIX.PID` also brings
///   the other threads' files `PREFIX.PID.THREAD` beside it (one thread's
///   file alone would understate the run's throughput);
/// * a path that does not exist is a prefix `DIR/PREFIX` standing for the
///   files `PREFIX.PID[.THREAD]` in `DIR` (for `--log-prefix`), or
///   `DIR/PREFIX.PID` for that run's files.
///
/// Duplicates are dropped, and files named after more than one run
/// (`PREFIX.PID`) are rejected with [`PgbenchError::SeveralRuns`]. The result
/// is ordered by prefix, pid and thread.
pub fn resolve_log_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PgbenchError> {
    let mut found: Vec<(PathBuf, Option<LogName>)> = Vec::new();
    for path in paths {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_string);
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let files = log_files_in(path, |n| n.prefix == DEFAULT_LOG_PREFIX)?;
                if files.is_empty() {
                    return Err(PgbenchError::NoLogFiles { path: path.clone() });
                }
                found.extend(files.into_iter().map(|(p, n)| (p, Some(n))));
            }
            Ok(_) => {
                let name = file_name.as_deref().and_then(parse_log_name);
                if let Some(LogName {
                    prefix,
                    pid,
                    thread: None,
                }) = &name
                {
                    let siblings = log_files_in(&parent, |n| {
                        &n.prefix == prefix && n.pid == *pid && n.thread.is_some()
                    })?;
                    found.extend(siblings.into_iter().map(|(p, n)| (p, Some(n))));
                }
                found.push((path.clone(), name));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(wanted) = file_name else {
                    return Err(PgbenchError::NoLogFiles { path: path.clone() });
                };
                let files = log_files_in(&parent, |n| {
                    n.prefix == wanted || format!("{}.{}", n.prefix, n.pid) == wanted
                })?;
                if files.is_empty() {
                    return Err(PgbenchError::NoLogFiles { path: path.clone() });
                }
                found.extend(files.into_iter().map(|(p, n)| (p, Some(n))));
            }
            Err(source) => {
                return Err(PgbenchError::Io {
                    path: path.clone(),
                    source,
                })
            }
        }
    }

    let mut seen = HashSet::new();
    found.retain(|(p, _)| seen.insert(fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    found.sort_by(|(pa, na), (pb, nb)| na.cmp(nb).then_with(|| pa.cmp(pb)));

    let mut runs: Vec<String> = Vec::new();
    for (path, name) in &found {
        if let Some(name) = name {
            let dir = path.parent().unwrap_or(Path::new(""));
            let run = dir
                .join(format!("{}.{}", name.prefix, name.pid))
                .display()
                .to_string();
            if !runs.contains(&run) {
                runs.push(run);
            }
        }
    }
    if runs.len() > 1 {
        return Err(PgbenchError::SeveralRuns { runs });
    }
    Ok(found.into_iter().map(|(p, _)| p).collect())
}

/// Reads one line into `buf` without its `\n`, keeping at most
/// [`MAX_LINE_BYTES`] bytes. Returns `None` at the end of the input, else
/// whether the line was longer than that.
fn read_line_bounded(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let mut overlong = false;
    let mut read_any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(read_any.then_some(overlong));
        }
        read_any = true;
        let (chunk, consumed, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        let room = MAX_LINE_BYTES - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            overlong = true;
        } else {
            buf.extend_from_slice(chunk);
        }
        reader.consume(consumed);
        if done {
            return Ok(Some(overlong));
        }
    }
}

/// A line as quoted in errors: lossily decoded and shortened.
fn shown_line(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    if text.chars().count() > SHOWN_LINE_CHARS {
        let mut short: String = text.chars().take(SHOWN_LINE_CHARS).collect();
        short.push('…');
        short
    } else {
        text.to_string()
    }
}

/// A non-negative decimal integer of at most `max`.
fn parse_uint(field: &[u8], max: u64) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (value <= max).then_some(value)
}

const LAYOUT: &str = "client_id transaction_no time script_no time_epoch time_us \
                      [schedule_lag] [retries]";

/// Parses one line; `Ok(None)` for a blank line.
fn parse_line(line: &[u8]) -> Result<Option<Record>, LineProblem> {
    const MAX_FIELDS: usize = 17;
    let mut fields: [&[u8]; MAX_FIELDS] = [&[]; MAX_FIELDS];
    let mut n = 0usize;
    for field in line
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
    {
        if n < MAX_FIELDS {
            fields[n] = field;
        }
        n += 1;
    }
    if n == 0 {
        return Ok(None);
    }
    if looks_aggregated(&fields[..n.min(MAX_FIELDS)], n) {
        return Err(LineProblem::Aggregated);
    }
    let expected = |what: &str| LineProblem::Expected(what.to_string());
    if !(6..=8).contains(&n) {
        return Err(LineProblem::Expected(format!(
            "6 to 8 space-separated fields ({LAYOUT}), not {n}"
        )));
    }
    let client = parse_uint(fields[0], u64::from(u32::MAX))
        .ok_or_else(|| expected("client_id (field 1) to be a non-negative integer"))?;
    let transaction = parse_uint(fields[1], u64::MAX)
        .ok_or_else(|| expected("transaction_no (field 2) to be a non-negative integer"))?;
    let outcome = match fields[2] {
        b"skipped" => Outcome::Skipped,
        b"failed" => Outcome::Failed(FailureKind::Unspecified),
        b"serialization" => Outcome::Failed(FailureKind::Serialization),
        b"deadlock" => Outcome::Failed(FailureKind::Deadlock),
        b"other" => Outcome::Failed(FailureKind::Other),
        latency => Outcome::Completed(parse_uint(latency, MAX_LATENCY_US).ok_or_else(|| {
            expected(
                "time (field 3) to be a latency in microseconds (at most 10^12) or one of \
                 skipped, failed, serialization, deadlock, other",
            )
        })?),
    };
    let script = parse_uint(fields[3], u64::from(MAX_SCRIPTS - 1)).ok_or_else(|| {
        LineProblem::Expected(format!(
            "script_no (field 4) to be an integer below {MAX_SCRIPTS}"
        ))
    })?;
    let epoch = parse_uint(fields[4], MAX_EPOCH_S)
        .ok_or_else(|| expected("time_epoch (field 5) to be Unix time in seconds"))?;
    let micros = parse_uint(fields[5], 999_999)
        .ok_or_else(|| expected("time_us (field 6) to be microseconds below 1000000"))?;
    let seventh = match fields.get(6).filter(|_| n >= 7) {
        Some(f) => Some(parse_uint(f, MAX_LATENCY_US).ok_or_else(|| {
            expected("schedule_lag or retries (field 7) to be a non-negative integer")
        })?),
        None => None,
    };
    let eighth = match fields.get(7).filter(|_| n >= 8) {
        Some(f) => Some(
            parse_uint(f, u64::from(u32::MAX))
                .ok_or_else(|| expected("retries (field 8) to be a non-negative integer"))?,
        ),
        None => None,
    };
    Ok(Some(Record {
        client: client as u32,
        transaction,
        outcome,
        script: script as u32,
        end_us: epoch * 1_000_000 + micros,
        fields: n as u8,
        seventh,
        eighth,
    }))
}

/// Whether a line has the shape of an aggregated log line: all numeric, and
/// either a field count only aggregated logs have (10 or 11 before
/// PostgreSQL 15, 15 in 15 to 18, 16 since 19) or 6 fields starting with a
/// Unix time.
fn looks_aggregated(fields: &[&[u8]], n: usize) -> bool {
    let numeric = |f: &&[u8]| !f.is_empty() && f.iter().all(u8::is_ascii_digit);
    if fields.len() != n || !fields.iter().all(numeric) {
        return false;
    }
    match n {
        10 | 11 | 15 | 16 => true,
        6 => parse_uint(fields[0], u64::MAX).is_some_and(|t| t >= MIN_AGGREGATE_EPOCH),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixture(case: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pgbench")).join(case)
    }

    fn import_str(text: &str) -> Result<PgbenchSummary, PgbenchError> {
        import_str_with(text, ImportOptions::default())
    }

    fn import_str_with(text: &str, options: ImportOptions) -> Result<PgbenchSummary, PgbenchError> {
        let mut import = PgbenchImport::with_options(options)?;
        import.add_reader("test.log", text.as_bytes())?;
        Ok(import.summary())
    }

    fn assert_close(what: &str, ours: f64, theirs: f64, tolerance: f64) {
        let err = (ours - theirs).abs() / theirs.abs().max(f64::MIN_POSITIVE);
        assert!(
            err <= tolerance,
            "{what}: import {ours} vs pgbench {theirs} ({:.3} % apart)",
            err * 100.0
        );
    }

    /// The figures pgbench printed for a run (its stdout).
    #[derive(Debug, Default)]
    struct PgbenchOutput {
        processed: u64,
        failed: u64,
        serialization: Option<u64>,
        deadlock: Option<u64>,
        skipped: Option<u64>,
        retried: Option<u64>,
        retries: Option<u64>,
        clients: u32,
        latency_average_ms: f64,
        latency_measured: bool,
        lag_avg_ms: Option<f64>,
        lag_max_ms: Option<f64>,
        tps: f64,
        /// Per script ("SQL script N" is script_no N − 1): completed,
        /// failed, mean latency.
        scripts: Vec<(u64, u64, f64)>,
    }

    fn first_number(s: &str) -> f64 {
        let s = s.trim_start();
        let end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        s[..end].parse().expect("a number")
    }

    fn parse_pgbench_output(path: &Path) -> PgbenchOutput {
        let text = fs::read_to_string(path).expect("pgbench-output.txt");
        let mut out = PgbenchOutput::default();
        for line in text.lines() {
            let field = |key: &str| line.strip_prefix(key).map(first_number);
            if let Some(rest) = line.strip_prefix(" - ") {
                if let Some((n, _)) = rest.split_once(" transactions (") {
                    out.scripts.push((first_number(n) as u64, 0, 0.0));
                } else if let Some(v) = rest.strip_prefix("number of failed transactions: ") {
                    out.scripts.last_mut().expect("script").1 = first_number(v) as u64;
                } else if let Some(v) = rest.strip_prefix("latency average = ") {
                    out.scripts.last_mut().expect("script").2 = first_number(v);
                }
            } else if let Some(v) = field("number of clients: ") {
                out.clients = v as u32;
            } else if let Some(v) = field("number of transactions actually processed: ") {
                out.processed = v as u64;
            } else if let Some(v) = field("number of failed transactions: ") {
                out.failed = v as u64;
            } else if let Some(v) = field("number of serialization failures: ") {
                out.serialization = Some(v as u64);
            } else if let Some(v) = field("number of deadlock failures: ") {
                out.deadlock = Some(v as u64);
            } else if let Some(v) = field("number of transactions skipped: ") {
                out.skipped = Some(v as u64);
            } else if let Some(v) = field("number of transactions retried: ") {
                out.retried = Some(v as u64);
            } else if let Some(v) = field("total number of retries: ") {
                out.retries = Some(v as u64);
            } else if let Some(v) = field("latency average = ") {
                out.latency_average_ms = v;
            } else if line.starts_with("latency stddev = ") {
                out.latency_measured = true;
            } else if let Some(rest) = line.strip_prefix("rate limit schedule lag: avg ") {
                out.lag_avg_ms = Some(first_number(rest));
                let max = rest.split_once("(max ").expect("lag max").1;
                out.lag_max_ms = Some(first_number(max));
            } else if let Some(rest) = line.strip_prefix("tps = ") {
                assert!(rest.contains("(without initial connection time)"), "{line}");
                out.tps = first_number(rest);
            }
        }
        assert!(
            out.tps > 0.0 && out.processed > 0,
            "no results in {}",
            path.display()
        );
        out
    }

    /// Imports a real fixture and checks it against pgbench's own output.
    fn check_real_case(case: &str) -> PgbenchSummary {
        let dir = fixture(case);
        let ours = import_paths(std::slice::from_ref(&dir)).expect("import");
        let theirs = parse_pgbench_output(&dir.join("pgbench-output.txt"));
        let latency_ours = if theirs.latency_measured {
            ours.latency_mean_ms
        } else {
            ours.runtime_latency_ms
        };
        println!(
            "{case}: tps import {:.3} pgbench {:.3}; latency average import {:.3} ms \
             pgbench {:.3} ms ({}); measured mean {:.3} ms",
            ours.tps,
            theirs.tps,
            latency_ours,
            theirs.latency_average_ms,
            if theirs.latency_measured {
                "measured"
            } else {
                "from run time"
            },
            ours.latency_mean_ms,
        );
        assert_close("tps", ours.tps, theirs.tps, 0.01);
        assert_close(
            "latency average",
            latency_ours,
            theirs.latency_average_ms,
            0.01,
        );
        assert_eq!(ours.transactions, theirs.processed, "transactions");
        assert_eq!(ours.failed, theirs.failed, "failed");
        assert_eq!(ours.skipped, theirs.skipped.unwrap_or(0), "skipped");
        assert_eq!(ours.clients, theirs.clients, "clients");
        assert_eq!(ours.logged_fraction, 1.0, "logged fraction");
        if let Some(n) = theirs.serialization {
            assert_eq!(ours.serialization_failures, n, "serialization failures");
        }
        if let Some(n) = theirs.deadlock {
            assert_eq!(ours.deadlock_failures, n, "deadlock failures");
        }
        assert_eq!(ours.retried, theirs.retried.unwrap_or(0), "retried");
        assert_eq!(ours.retries, theirs.retries.unwrap_or(0), "retries");
        assert_eq!(
            ours.layout.retries,
            theirs.retried.is_some(),
            "retries field"
        );
        assert_eq!(
            ours.layout.schedule_lag,
            theirs.lag_avg_ms.is_some(),
            "lag field"
        );
        if let (Some(avg), Some(max)) = (theirs.lag_avg_ms, theirs.lag_max_ms) {
            assert_close(
                "lag average",
                ours.schedule_lag_mean_ms.expect("lag"),
                avg,
                0.01,
            );
            assert_close("lag max", ours.schedule_lag_max_ms.expect("lag"), max, 0.01);
        }
        if !theirs.scripts.is_empty() {
            assert_eq!(ours.per_script.len(), theirs.scripts.len(), "scripts");
            for (s, &(completed, failed, latency)) in ours.per_script.iter().zip(&theirs.scripts) {
                assert_eq!(
                    s.transactions, completed,
                    "script {} transactions",
                    s.script_no
                );
                assert_eq!(s.failed, failed, "script {} failed", s.script_no);
                assert_close("script latency", s.latency_mean_ms, latency, 0.01);
            }
        }
        assert!(ours.duration_estimated);
        assert!(ours.latency_p50_ms <= ours.latency_p95_ms);
        assert!(ours.latency_p95_ms <= ours.latency_p99_ms);
        assert!(ours.latency_p99_ms <= ours.latency_max_ms * 1.001);
        assert!(ours.latency_min_ms <= ours.latency_p50_ms);
        ours
    }

    #[test]
    fn select_only_two_threads_matches_pgbench() {
        let s = check_real_case("select-only");
        assert_eq!(s.files, 2);
        assert_eq!(s.layout.fields, 6);
        // pgbench printed its run-time latency; the measured mean is just
        // below it (the client's own time between transactions).
        assert_close(
            "measured vs run-time latency",
            s.latency_mean_ms,
            s.runtime_latency_ms,
            0.01,
        );
        assert!(s.latency_mean_ms <= s.runtime_latency_ms);
    }

    #[test]
    fn rate_limited_run_matches_pgbench() {
        let s = check_real_case("rate");
        assert_eq!(s.layout.fields, 7);
        assert!(s.layout.schedule_lag && !s.layout.retries);
    }

    #[test]
    fn skipped_transactions_match_pgbench() {
        let s = check_real_case("rate-latency-limit");
        assert!(s.skipped > 0, "the fixture has skipped transactions");
        assert_eq!(s.per_script[0].skipped, s.skipped);
    }

    #[test]
    fn failures_match_pgbench() {
        let s = check_real_case("failures");
        assert!(s.serialization_failures > 0 && s.deadlock_failures > 0);
        assert_eq!(s.layout.fields, 6);
        assert_eq!(s.per_script.len(), 2);
    }

    #[test]
    fn retries_without_rate_match_pgbench() {
        let s = check_real_case("retries");
        assert_eq!(s.layout.fields, 7);
        assert!(s.layout.retries && !s.layout.schedule_lag);
        assert!(s.retried > 0);
    }

    #[test]
    fn retries_with_rate_match_pgbench() {
        let s = check_real_case("retries-rate");
        assert_eq!(s.layout.fields, 8);
        assert!(s.retried > 0);
    }

    #[test]
    fn aggregated_log_is_rejected_with_advice() {
        let err = import_paths(&[fixture("aggregated")]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, PgbenchError::AggregatedLog { line: 1, .. }),
            "{msg}"
        );
        assert!(msg.contains("without --aggregate-interval"), "{msg}");
        for line in [
            "1795798128 5 36704 285941968 5274 9909",
            "1795798128 5 36704 285941968 5274 9909 10 100 1 5",
            "1795798128 5 36704 285941968 5274 9909 10 100 1 5 0",
            "1795798128 5 36704 285941968 5274 9909 0 0 0 0 0 0 0 0 0 0",
        ] {
            assert!(
                matches!(import_str(line), Err(PgbenchError::AggregatedLog { .. })),
                "{line}"
            );
        }
    }

    /// Hand-written PostgreSQL 14 log of `--rate ... --latency-limit ... -c 2
    /// -j 2`: seven fields, the seventh is the schedule lag, skipped
    /// transactions but no failures.
    #[test]
    fn legacy_layout_hand_computed() {
        let s = import_paths(&[fixture("legacy-pg14")]).expect("import");
        assert_eq!(s.files, 2);
        assert_eq!(
            s.layout,
            LogLayout {
                fields: 7,
                schedule_lag: true,
                retries: false
            }
        );
        assert_eq!(
            (s.transactions, s.skipped, s.failed, s.retried),
            (7, 2, 0, 0)
        );
        assert_eq!(s.clients, 2);
        assert_eq!(s.logged_fraction, 1.0);
        // Latencies 1500 1200 2500 800 1000 3000 600 µs.
        let lat = [1500.0, 1200.0, 2500.0, 800.0, 1000.0, 3000.0, 600.0];
        let mean = lat.iter().sum::<f64>() / 7.0;
        let var = lat.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 7.0;
        assert_close("mean", s.latency_mean_ms, mean / 1000.0, 1e-12);
        assert_close("stddev", s.latency_stddev_ms, var.sqrt() / 1000.0, 1e-9);
        assert_eq!((s.latency_min_ms, s.latency_max_ms), (0.6, 3.0));
        assert_close("p50", s.latency_p50_ms, 1.2, 0.001);
        // Window: earliest start 1700000000.000500 (client 0 and 1's first
        // transactions), latest end 1700000001.001000; nine scheduled
        // transactions add one ninth of it.
        assert_close("window", s.window_s, 1.0005, 1e-12);
        assert_close("duration", s.duration_s, 1.0005 * 10.0 / 9.0, 1e-12);
        assert_close("tps", s.tps, 7.0 / (1.0005 * 10.0 / 9.0), 1e-12);
        // Lags of completed transactions: 300 100 900 50 200 1500 0 µs.
        assert_close(
            "lag mean",
            s.schedule_lag_mean_ms.unwrap(),
            3.05 / 7.0,
            1e-12,
        );
        assert_eq!(s.schedule_lag_max_ms, Some(1.5));
        assert_eq!(s.per_script.len(), 1);
        assert_eq!(s.per_script[0].transactions, 7);
    }

    #[test]
    fn duration_override_sets_tps() {
        let opts = ImportOptions {
            duration_s: Some(2.0),
            ..ImportOptions::default()
        };
        let s = import_paths_with(&[fixture("legacy-pg14")], opts).unwrap();
        assert_eq!(
            (s.duration_s, s.duration_estimated, s.tps),
            (2.0, false, 3.5)
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let opts = ImportOptions {
                duration_s: Some(bad),
                ..ImportOptions::default()
            };
            assert!(matches!(
                PgbenchImport::with_options(opts),
                Err(PgbenchError::InvalidDuration(_))
            ));
        }
    }

    #[test]
    fn seventh_field_heuristics_and_override() {
        // Mostly zero on completed lines: retries.
        let retries = "0 1 100 0 1700000000 100 0\n0 2 100 0 1700000000 300 0\n\
                       0 3 150 0 1700000000 600 2\n";
        let s = import_str(retries).unwrap();
        assert!(s.layout.retries && !s.layout.schedule_lag);
        assert_eq!((s.retried, s.retries, s.schedule_lag_mean_ms), (1, 2, None));
        // Non-zero everywhere: lag.
        let lag = "0 1 100 0 1700000000 100 40\n0 2 100 0 1700000000 300 35\n";
        let s = import_str(lag).unwrap();
        assert!(s.layout.schedule_lag && !s.layout.retries);
        assert_eq!(s.retried, 0);
        assert_close("lag", s.schedule_lag_mean_ms.unwrap(), 0.0375, 1e-12);
        // A non-zero value on a failed line can only be retries.
        let s = import_str("0 1 100 0 1700000000 100 40\n0 2 failed 0 1700000000 300 2\n").unwrap();
        assert!(s.layout.retries);
        assert_eq!((s.retried, s.retries), (2, 42));
        // A skipped line means --rate, whatever the values.
        let s = import_str("0 1 100 0 1700000000 100 0\n0 2 skipped 0 1700000000 300 0\n").unwrap();
        assert!(s.layout.schedule_lag);
        // The caller knows better.
        let opts = ImportOptions {
            seventh_field: SeventhField::ScheduleLag,
            ..ImportOptions::default()
        };
        let s = import_str_with(retries, opts).unwrap();
        assert!(s.layout.schedule_lag && !s.layout.retries);
        assert_eq!(s.schedule_lag_max_ms, Some(0.002));
        let opts = ImportOptions {
            seventh_field: SeventhField::Retries,
            ..ImportOptions::default()
        };
        assert!(import_str_with(lag, opts).unwrap().layout.retries);
    }

    #[test]
    fn eight_fields_are_lag_then_retries() {
        let s = import_str(
            "3 1 5000 1 1700000000 5000 700 1\n\
             3 2 serialization 1 1700000000 9000 0 2\n\
             4 1 skipped 0 1700000000 9500 0 0\n",
        )
        .unwrap();
        assert_eq!(
            (
                s.transactions,
                s.failed,
                s.serialization_failures,
                s.skipped
            ),
            (1, 1, 1, 1)
        );
        assert_eq!((s.retried, s.retries), (2, 3));
        assert_eq!(s.schedule_lag_mean_ms, Some(0.7));
        assert_eq!(s.per_script[1].retried, 2);
        assert_eq!(s.per_script[0].skipped, 1);
        assert_eq!(s.clients, 2);
    }

    #[test]
    fn failure_keywords() {
        let s = import_str(
            "0 1 failed 0 1700000000 1 \n0 2 serialization 0 1700000000 2\n\
             0 3 deadlock 0 1700000000 3\n0 4 other 0 1700000000 4\n\r\n\
             0 5 250 0 1700000000 5\r\n",
        )
        .unwrap();
        assert_eq!(s.failed, 4);
        assert_eq!(
            (
                s.serialization_failures,
                s.deadlock_failures,
                s.other_failures
            ),
            (1, 1, 1)
        );
        assert_eq!(s.transactions, 1);
        assert_eq!(s.lines, 5);
        // The completed transaction started at .000005 − 250 µs and is the
        // earliest start: one client, a 250 µs window, five transactions.
        assert_close("window", s.window_s, 250e-6, 1e-9);
        assert_close("runtime latency", s.runtime_latency_ms, 0.25 / 5.0, 1e-9);
    }

    #[test]
    fn extreme_transaction_numbers_do_not_overflow() {
        let s = import_str(&format!(
            "0 0 100 0 1700000000 100\n0 {} 100 0 1700000000 200\n",
            u64::MAX
        ))
        .unwrap();
        assert!(s.logged_fraction > 0.0 && s.logged_fraction < 1e-15);
    }

    #[test]
    fn sampled_log_is_flagged() {
        let s = import_str(
            "0 1 100 0 1700000000 100\n0 5 100 0 1700000000 900\n\
             1 2 100 0 1700000000 500\n1 3 100 0 1700000000 600\n",
        )
        .unwrap();
        // Client 0 spans 5 numbers with 2 lines, client 1 spans 2 with 2.
        assert_close("logged fraction", s.logged_fraction, 4.0 / 7.0, 1e-12);
    }

    fn malformed(text: &str) -> (u64, String) {
        match import_str(text) {
            Err(PgbenchError::Malformed {
                file,
                line,
                text,
                expected,
            }) => {
                assert_eq!(file, "test.log");
                (line, format!("{text} | {expected}"))
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }

    #[test]
    fn malformed_lines_are_reported_with_place_and_expectation() {
        let good = "0 1 100 0 1700000000 100\n";
        let cases: &[(&str, &str)] = &[
            ("0 1 100 0 1700000000", "6 to 8 space-separated fields"),
            ("0 1 100 0 1700000000 1 2 3 4", "not 9"),
            ("x 1 100 0 1700000000 100", "client_id"),
            ("0 -1 100 0 1700000000 100", "transaction_no"),
            ("0 1 1.5 0 1700000000 100", "time (field 3)"),
            ("0 1 aborted 0 1700000000 100", "skipped, failed"),
            ("0 1 100 128 1700000000 100", "below 128"),
            ("0 1 100 0 17000000000000 100", "time_epoch"),
            ("0 1 100 0 1700000000 1000000", "time_us"),
            ("0 1 100 0 1700000000 100 x", "field 7"),
            ("0 1 100 0 1700000000 100 5 -1", "retries (field 8)"),
            (
                "0 1 100 0 1700000000 100 5",
                "6 fields like the earlier lines",
            ),
            (
                "99999999999999999999999 1 100 0 1700000000 100",
                "client_id",
            ),
        ];
        for (line, want) in cases {
            let (no, msg) = malformed(&format!("{good}{line}\n"));
            assert_eq!(no, 2, "{line}");
            assert!(msg.contains(want), "{line}: {msg}");
            assert!(msg.starts_with(line.trim_end()), "{line}: {msg}");
        }
        let err = import_str("0 1 100 0 1700000000 100\nnot a log line\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("test.log:2: malformed pgbench log line \"not a log line\": expected"),
            "{msg}"
        );
        // A huge line without a newline is cut, not buffered.
        let huge = "7".repeat(1 << 20);
        let (no, msg) = malformed(&huge);
        assert_eq!(no, 1);
        assert!(
            msg.contains("at most 4096 bytes") && msg.len() < 400,
            "{msg}"
        );
    }

    #[test]
    fn empty_input_gives_zero_summary() {
        let s = import_str("\n\n").unwrap();
        assert_eq!(
            (s.lines, s.transactions, s.tps, s.latency_p99_ms),
            (0, 0, 0.0, 0.0)
        );
        assert_eq!(s.layout.fields, 0);
    }

    #[test]
    fn log_names() {
        let name = |s: &str| parse_log_name(s).map(|n| (n.prefix, n.pid, n.thread));
        assert_eq!(
            name("pgbench_log.123"),
            Some(("pgbench_log".into(), 123, None))
        );
        assert_eq!(
            name("pgbench_log.123.4"),
            Some(("pgbench_log".into(), 123, Some(4)))
        );
        assert_eq!(name("my.prefix.77"), Some(("my.prefix".into(), 77, None)));
        assert_eq!(name("pgbench-output.txt"), None);
        assert_eq!(name(".12"), None);
        assert_eq!(name("pgbench_log."), None);
    }

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("poolsim-pgbench-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn paths_resolve_to_one_run() {
        let tmp = TempDir::new("paths");
        let line = "0 1 100 0 1700000000 100\n";
        let t0 = tmp.write("pgbench_log.42", line);
        let t1 = tmp.write("pgbench_log.42.1", "1 1 100 0 1700000000 200\n");
        tmp.write("notes.txt", "not a log");
        tmp.write("custom.42", line);
        tmp.write("custom.42.1", line);

        let names = |paths: Vec<PathBuf>| -> Vec<String> {
            paths
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let both = vec!["pgbench_log.42".to_string(), "pgbench_log.42.1".to_string()];
        // A directory, thread 0's file (which brings its siblings), both
        // files, and the prefix all mean the same two files.
        assert_eq!(
            names(resolve_log_paths(std::slice::from_ref(&tmp.0)).unwrap()),
            both
        );
        assert_eq!(
            names(resolve_log_paths(std::slice::from_ref(&t0)).unwrap()),
            both
        );
        assert_eq!(
            names(resolve_log_paths(&[t1.clone(), t0.clone()]).unwrap()),
            both
        );
        assert_eq!(
            names(resolve_log_paths(&[tmp.0.join("pgbench_log")]).unwrap()),
            both
        );
        // A thread's file alone is taken alone.
        assert_eq!(
            names(resolve_log_paths(std::slice::from_ref(&t1)).unwrap()),
            ["pgbench_log.42.1"]
        );
        // --log-prefix files by prefix.
        assert_eq!(
            names(resolve_log_paths(&[tmp.0.join("custom")]).unwrap()),
            ["custom.42", "custom.42.1"]
        );
        let s = import_paths(std::slice::from_ref(&tmp.0)).unwrap();
        assert_eq!((s.files, s.transactions, s.clients), (2, 2, 2));

        // A second run in the same directory must be chosen explicitly.
        tmp.write("pgbench_log.43", line);
        let err = resolve_log_paths(std::slice::from_ref(&tmp.0)).unwrap_err();
        assert!(
            matches!(err, PgbenchError::SeveralRuns { ref runs } if runs.len() == 2),
            "{err}"
        );
        assert_eq!(
            names(resolve_log_paths(std::slice::from_ref(&t0)).unwrap()),
            both
        );

        assert!(matches!(
            resolve_log_paths(&[tmp.0.join("nothing")]),
            Err(PgbenchError::NoLogFiles { .. })
        ));
        let empty = TempDir::new("empty");
        assert!(matches!(
            resolve_log_paths(std::slice::from_ref(&empty.0)),
            Err(PgbenchError::NoLogFiles { .. })
        ));
        empty.write("pgbench_log.1", "");
        assert!(matches!(
            import_paths(std::slice::from_ref(&empty.0)),
            Err(PgbenchError::Empty(_))
        ));
    }

    #[test]
    fn unreadable_file_is_an_io_error() {
        let err = PgbenchImport::new()
            .add_file(Path::new("/nonexistent/pgbench_log.1"))
            .unwrap_err();
        assert!(matches!(err, PgbenchError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/pgbench_log.1"));
    }

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..10).prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (1_600_000_000u64..1_900_000_000).prop_map(|n| n.to_string()),
            (0u64..1_000_000).prop_map(|n| n.to_string()),
            Just("skipped".to_string()),
            Just("failed".to_string()),
            Just("serialization".to_string()),
            Just("deadlock".to_string()),
            Just("-1".to_string()),
            Just("1e9".to_string()),
            "[ -~]{0,6}",
        ]
    }

    fn valid_line() -> impl Strategy<Value = (String, bool)> {
        (
            0u32..8,
            1u64..1000,
            prop_oneof![
                3 => (0u64..5_000_000).prop_map(|n| n.to_string()),
                1 => Just("skipped".to_string()),
                1 => Just("failed".to_string()),
            ],
            0u32..3,
            1_700_000_000u64..1_700_000_100,
            0u64..1_000_000,
        )
            .prop_map(|(c, t, time, s, e, u)| {
                let completed = !time.starts_with(|ch: char| ch.is_ascii_alphabetic());
                (format!("{c} {t} {time} {s} {e} {u}"), completed)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut import = PgbenchImport::new();
            let _ = import.add_reader("random", bytes.as_slice());
            let s = import.summary();
            prop_assert!(s.tps.is_finite() && s.latency_mean_ms.is_finite());
        }

        #[test]
        fn random_lines_never_panic(
            lines in proptest::collection::vec(proptest::collection::vec(token(), 0..18), 0..40)
        ) {
            let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
            let mut import = PgbenchImport::new();
            let result = import.add_reader("random", text.as_bytes());
            let s = import.summary();
            prop_assert!(s.tps.is_finite() && s.latency_stddev_ms.is_finite());
            prop_assert!(s.runtime_latency_ms.is_finite() && s.logged_fraction.is_finite());
            if let Err(e) = result {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn valid_lines_are_all_counted(lines in proptest::collection::vec(valid_line(), 1..200)) {
            let text: String = lines.iter().map(|(l, _)| format!("{l}\n")).collect();
            let s = import_str(&text).unwrap();
            let completed = lines.iter().filter(|(_, c)| *c).count() as u64;
            prop_assert_eq!(s.lines, lines.len() as u64);
            prop_assert_eq!(s.transactions, completed);
            prop_assert_eq!(s.transactions + s.failed + s.skipped, s.lines);
            prop_assert!(s.tps >= 0.0 && s.tps.is_finite());
            prop_assert!(s.latency_min_ms <= s.latency_mean_ms + 1e-9);
            prop_assert!(s.latency_mean_ms <= s.latency_max_ms + 1e-9);
            let per_script: u64 = s.per_script.iter().map(|p| p.transactions).sum();
            prop_assert_eq!(per_script, completed);
        }
    }
}
