use clap::Parser;

fn main() -> color_eyre::Result<()> {
    let cli = stage2_tui::cli::Cli::parse();
    color_eyre::install()?;
    if let Some(Err(e)) = stage2_tui::debuglog::init() {
        eprintln!("stage2-tui: no debug log: {e}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(stage2_tui::cli::dispatch(cli))?;
    // Leave at once: background readers of a detached step must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
