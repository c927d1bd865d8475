//! The integration tests, in one binary: components on hand-worked event sequences, the analytic
//! validation suite, properties, determinism, the command line and golden outputs.

mod analytic;
mod charts;
mod cli;
mod common;
mod components;
mod determinism;
mod properties;
