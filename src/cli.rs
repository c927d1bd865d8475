//! Command-line arguments, as clap derive structs: argv as it is, no logic.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "poolsim",
    version,
    about = "Capacity planning for PostgreSQL connection pools: simulate app pools, PgBouncer and PostgreSQL",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Simulate the experiment's base scenario (no sweep) and print a summary
    Run(RunArgs),
    /// Simulate every sweep point × replication in parallel
    Sweep(SweepArgs),
    /// Validate and lint an experiment without simulating: capacity math, unreachable limits,
    /// contradicting settings
    Check(CheckArgs),
    /// Merge the results of `sweep --shard K/N` runs into the results of the whole sweep
    Merge(MergeArgs),
    /// Projected against measured, point by point and metric by metric; exit code 3 when a
    /// tolerance is exceeded
    Compare(CompareArgs),
    /// Draw capacity charts (SVG and PNG) from results files
    Chart(ChartArgs),
    /// Write a self-contained HTML report (summary, SLO verdicts, charts) from results files
    Report(ReportArgs),
    /// Run the experiment's sweep points for real against a live PostgreSQL + PgBouncer and
    /// report measured results in the simulator's schema
    Bench(BenchArgs),
    /// Calibrate (unless --model is given), simulate the sweep, bench it for real, compare; all
    /// artefacts in --out; exit code 3 when a tolerance is exceeded
    Validate(ValidateArgs),
    /// Measure a live PostgreSQL (and PgBouncer) and write a model file: round trips, statement
    /// service times, throughput against concurrency, connection set-up costs
    Calibrate(CalibrateArgs),
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Projected results (`poolsim sweep --format json` or results.json)
    pub projected: PathBuf,
    /// Measured results (`"source": "measured"` results JSON), or pgbench per-transaction logs
    /// (files, a directory, or a log prefix)
    #[arg(required = true)]
    pub measured: Vec<PathBuf>,
    /// Metrics to compare, comma-separated (default: throughput, mean/P50/P95/P99 latency, failure rate)
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Fail (exit code 3) when |relative error| of METRIC exceeds PCT percent at any point,
    /// e.g. --tolerance throughput_rps=5 --tolerance latency_p95_ms=15
    #[arg(long = "tolerance", value_name = "METRIC=PCT")]
    pub tolerances: Vec<String>,
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard results files (`--format json` output or results.shard-K-of-N.json)
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Also write results.json, results.csv and results.txt into this directory
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Experiment file (JSON)
    pub experiment: PathBuf,
    /// Override a field: dotted path = JSON value (e.g. --set app.pools.primary.max_size=35)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Worker threads (default: all cores)
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    /// Worker threads (default: all cores); results are identical for any value
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write results.json, results.csv and results.txt into this directory
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only shard K of N (points whose index ≡ K−1 mod N), e.g. 3/8
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// No progress bar
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Also draw the capacity charts (SVG and PNG) into this directory
    #[arg(long, value_name = "DIR")]
    pub charts: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChartFormat {
    Svg,
    Png,
    Both,
}

#[derive(Args, Debug)]
pub struct ChartArgs {
    /// Results files (`sweep --format json`); one with "source": "measured" is drawn over the
    /// projection of the same experiment
    #[arg(required = true, value_name = "RESULTS.json")]
    pub results: Vec<PathBuf>,
    /// Directory to write the charts into (created when missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Image format
    #[arg(long, value_enum, default_value_t = ChartFormat::Both)]
    pub format: ChartFormat,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Results files (`sweep --format json`); measured ones get a projected-against-measured
    /// section
    #[arg(required = true, value_name = "RESULTS.json")]
    pub results: Vec<PathBuf>,
    /// The HTML file to write
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Replications per point, overriding run.replications (live runs are slow)
    #[arg(long, value_name = "N")]
    pub replications: Option<u32>,
    /// Run each point's replications one after another. By default they are interleaved with
    /// those of the other points that run the same workload (every point's first, then every
    /// point's second, …), so that a slow or fast spell of the host spreads over the points
    /// instead of landing whole on one
    #[arg(long)]
    pub replications_together: bool,
    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write results.json, results.csv and results.txt into this directory
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Threads of the load generator's async runtime (default: one per core; 1 runs it on a
    /// single-threaded runtime)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// PostgreSQL URL (measured directly)
    #[arg(
        long,
        value_name = "URL",
        env = "POOLSIM_PG_URL",
        hide_env_values = true
    )]
    pub pg: String,
    /// PgBouncer URL (its added latency and client connect cost)
    #[arg(
        long,
        value_name = "URL",
        env = "POOLSIM_BOUNCER_URL",
        hide_env_values = true
    )]
    pub bouncer: Option<String>,
    /// PgBouncer admin console URL (default: the --bouncer URL with database `pgbouncer`)
    #[arg(
        long = "bouncer-admin",
        value_name = "URL",
        env = "POOLSIM_BOUNCER_ADMIN_URL",
        hide_env_values = true
    )]
    pub bouncer_admin: Option<String>,
    /// Experiment whose workload.transactions (with their `sql`) are measured
    #[arg(long, value_name = "EXP")]
    pub workload: PathBuf,
    /// The model file to write (its stem becomes the model's name)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Total time budget in seconds, shared among the phases
    #[arg(long = "budget-s", value_name = "S", default_value_t = 180.0)]
    pub budget_s: f64,
    /// Highest concurrency of the throughput sweep (default: 8 × cores, at least 16)
    #[arg(long = "max-concurrency", value_name = "N")]
    pub max_concurrency: Option<usize>,
    /// Output on stdout: the human summary, or the whole calibration as JSON
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
    /// Threads of the async runtime the measurements run on, as `bench --threads` (default: one per core; 1 runs it on a
    /// single-threaded runtime, as one asyncpg or Node.js process runs its event loop)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Use this model instead of calibrating one
    #[arg(long, value_name = "MODEL.json")]
    pub model: Option<PathBuf>,
    /// Calibrate once, on the whole workload, before any point is measured. By default each
    /// workload of the sweep is calibrated on its own right before its points are measured
    /// (model-K-NAME.json, calibration-K-NAME.txt): a shared host's speed drifts over minutes
    #[arg(long, conflicts_with = "model")]
    pub calibrate_once: bool,
    /// Calibration time budget, seconds (shared among the workloads' calibrations)
    #[arg(long, default_value_t = 120.0)]
    pub budget_s: f64,
    /// Replications per point, for both the projection and the measurement
    #[arg(long, value_name = "N")]
    pub replications: Option<u32>,
    /// Run each point's replications one after another. By default they are interleaved with
    /// those of the other points that run the same workload (every point's first, then every
    /// point's second, …), so that a slow or fast spell of the host spreads over the points
    /// instead of landing whole on one
    #[arg(long)]
    pub replications_together: bool,
    /// Fail (exit code 3) when |relative error| of METRIC exceeds PCT percent at any point
    #[arg(long = "tolerance", value_name = "METRIC=PCT")]
    pub tolerances: Vec<String>,
    /// Directory for every artefact: model(s), calibration summaries, projected.*, measured.*, comparison.*, report.html
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Threads of the async runtime of both the calibration and the load generator (default: one per core; 1 runs it on a
    /// single-threaded runtime, as one asyncpg or Node.js process runs its event loop)
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bars
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Where the live cluster is (also from the environment: `eval "$(scripts/cluster.sh env)"`).
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// PostgreSQL URL: pools with target `primary` (and `replicas` without --replica), monitoring
    #[arg(
        long,
        value_name = "URL",
        env = "POOLSIM_PG_URL",
        hide_env_values = true
    )]
    pub pg: String,
    /// PgBouncer URL: pools with target `pgbouncer`
    #[arg(
        long,
        value_name = "URL",
        env = "POOLSIM_BOUNCER_URL",
        hide_env_values = true
    )]
    pub bouncer: Option<String>,
    /// PgBouncer admin console URL (default: the --bouncer URL with database `pgbouncer`)
    #[arg(
        long = "bouncer-admin",
        value_name = "URL",
        env = "POOLSIM_BOUNCER_ADMIN_URL",
        hide_env_values = true
    )]
    pub bouncer_admin: Option<String>,
    /// Replica URL: pools with target `replicas` (default: --pg)
    #[arg(
        long,
        value_name = "URL",
        env = "POOLSIM_REPLICA_URL",
        hide_env_values = true
    )]
    pub replica: Option<String>,
}
