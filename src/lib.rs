//! stage2-tui: installs the second stage of an OpenShift 4 cluster from its bastion.
//!
//! Layers: [`engine`] talks to podman/Docker; [`pipeline`] runs the steps and keeps their state
//! and logs; [`config`] reads the deployconfig; [`headless`] and the TUI ([`tui`], [`app`], [`ui`]) drive it.

/// `println!` that never panics: standard output may be a pipe that closed (`status --json |
/// head`) or a terminal that hung up; what could not be written is dropped.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!` that never panics (see [`outln!`]).
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

pub mod app;
pub mod bundle;
pub mod check;
pub mod cli;
pub mod config;
pub mod control;
pub mod debuglog;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod headless;
pub mod http;
pub mod logfile;
pub mod logformat;
pub mod pipeline;
pub mod safefs;
pub mod service;
pub mod status;
pub mod text;
pub mod tui;
pub mod ui;
