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
    /// Run the experiment's sweep points for real against a live PostgreSQL + PgBouncer and
    /// report measured results in the simulator's schema
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
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

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub exp: ExperimentArgs,
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
    /// Replications per point, overriding run.replications (live runs are slow)
    #[arg(long, value_name = "N")]
    pub replications: Option<u32>,
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
