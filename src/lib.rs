//! stage2-tui: installs the second stage of an OpenShift 4 cluster from its bastion.
//!
//! Layers: [`engine`] talks to podman/Docker; [`pipeline`] runs the steps and keeps their state
//! and logs; [`config`] reads the deployconfig; [`headless`] and the TUI ([`tui`], [`app`], [`ui`]) drive it.

pub mod app;
pub mod bundle;
pub mod check;
pub mod cli;
pub mod config;
pub mod control;
pub mod demo;
pub mod engine;
pub mod exit;
pub mod headless;
pub mod logfile;
pub mod pipeline;
pub mod safefs;
pub mod service;
pub mod status;
pub mod text;
pub mod tui;
pub mod ui;
