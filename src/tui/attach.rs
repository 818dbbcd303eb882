//! A TUI attached to the process that drives the run (the systemd unit, a colleague's TUI): it
//! relays to the driver until it goes away, then takes over driving when the operator asks.

use super::*;

/// The TUI attached to the process that drives the run (the systemd unit, a colleague's TUI).
pub(super) async fn run_attached(
    engine: Engine,
    dc: Deployconfig,
    looks: Looks,
    holder: String,
) -> color_eyre::Result<i32> {
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let att = match crate::control::attach(&dc.state_dir()).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "stage2-tui: another stage2-tui is driving {}: {holder}. {e}",
                dc.dir.display()
            );
            return Ok(crate::exit::CANNOT_START);
        }
    };
    let mut app = looks.app(att.pipeline.clone(), &engine, &dc);
    app.driven_by = Some(att.driver.describe());
    let task = tokio::spawn(attached(
        att,
        app.keys.clone(),
        engine.clone(),
        dc.clone(),
        cmd_rx,
        ctl_rx,
        ev_tx.clone(),
    ));
    drop(ev_tx);
    finish_tui(app, engine, dc, ev_rx, cmd_tx, ctl_tx, vec![], task).await
}

/// An attached TUI: relays to the driver until it goes away, then drives itself on the first
/// retry / resume / skip the operator asks for (exactly as when no one drove).
async fn attached(
    att: crate::control::Attached,
    keys: Keymap,
    engine: Engine,
    dc: Deployconfig,
    mut cmds: UnboundedReceiver<Command>,
    mut ctl: UnboundedReceiver<Control>,
    events: UnboundedSender<Event>,
) {
    let mut att = att;
    // Relay to the driver; when it ends, exactly one of the attached terminals takes over (the
    // run's lock decides which) and the others attach to it.
    let (runner, raw_tx, raw_rx, driver) = loop {
        let driver = att.driver.describe();
        let _ = events.send(Event::Driver(Some(driver.clone())));
        if att.relay(&events, &mut cmds, &mut ctl).await == crate::control::Relay::Left {
            return;
        }
        match take_over(&engine, &dc, &mut cmds).await {
            TakeOver::Drive(runner, raw_tx, raw_rx) => break (*runner, raw_tx, raw_rx, driver),
            TakeOver::Attach(next) => {
                let _ = events.send(Event::Note(format!(
                    "the driver ({driver}) has ended; another stage2-tui took over: {}",
                    next.driver.describe()
                )));
                att = *next;
            }
            TakeOver::Left => return,
            TakeOver::Failed(e) => {
                let _ = events.send(Event::Driver(None));
                let _ = events.send(Event::Note(format!(
                    "the driver ({driver}) has ended, and this stage2-tui cannot drive: {e}"
                )));
                return;
            }
        }
    };
    let _ = events.send(Event::Driver(None));
    runner.announce();
    // A run the old driver left in the middle goes on at once (reattached to its running
    // container by its labels); a halted one waits for the operator, as before.
    let in_progress = runner
        .state()
        .is_some_and(|s| s.outcome == crate::pipeline::Outcome::InProgress);
    let _ = events.send(Event::Note(taking_over(&driver, in_progress, &keys)));
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let server = crate::control::serve_or_forward(
        &dc,
        &dc.state_dir(),
        crate::control::DriverInfo::me("tui"),
        runner.pipeline().clone(),
        crate::control::Wiring {
            events: raw_rx,
            inject: raw_tx.clone(),
            local: events.clone(),
            commands: cmd_tx.clone(),
            control: Some(ctl_tx.clone()),
        },
    );
    drop(raw_tx);
    let initial = in_progress.then_some(Plan::Continue);
    // This terminal's requests now go to our own runner.
    let relay_cmds = relay_requests(cmds, ctl, cmd_tx, ctl_tx);
    supervise(runner, initial, cmd_rx, ctl_rx, events).await;
    relay_cmds.abort();
    drop(server);
}

/// What a terminal that takes over the run says.
fn taking_over(driver: &str, in_progress: bool, keys: &Keymap) -> String {
    if in_progress {
        return format!(
            "the driver ({driver}) has ended in the middle of the run; this stage2-tui drives from now on and goes on with it"
        );
    }
    let key = |a| {
        keys.key_for(crate::app::Scope::Dashboard, a)
            .unwrap_or_default()
    };
    format!(
        "the driver ({driver}) has ended; this stage2-tui drives from now on: {} retries a failed step, {} resumes from the selected one",
        key(crate::app::Action::Retry),
        key(crate::app::Action::ResumeFrom),
    )
}

/// Hands this terminal's requests to its own runner, once it drives.
fn relay_requests(
    mut cmds: UnboundedReceiver<Command>,
    mut ctl: UnboundedReceiver<Control>,
    cmd_tx: UnboundedSender<Command>,
    ctl_tx: UnboundedSender<Control>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(c) => { let _ = cmd_tx.send(c); }
                    None => return,
                },
                c = ctl.recv() => match c {
                    Some(c) => { let _ = ctl_tx.send(c); }
                    None => return,
                },
            }
        }
    })
}

/// What an attached terminal does when its driver ends.
enum TakeOver {
    /// It holds the run's lock now: it drives.
    Drive(
        Box<Runner>,
        mpsc::UnboundedSender<Event>,
        mpsc::UnboundedReceiver<Event>,
    ),
    /// Another stage2-tui took the lock first: attached to it.
    Attach(Box<crate::control::Attached>),
    /// The operator left meanwhile.
    Left,
    /// Neither worked (the message says why).
    Failed(String),
}

/// Takes the run's lock, or attaches to whoever took it: the lock is free once the old driver's
/// process is gone, and the winner's control socket appears a moment after it took the lock.
async fn take_over(
    engine: &Engine,
    dc: &Deployconfig,
    cmds: &mut UnboundedReceiver<Command>,
) -> TakeOver {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // A little jitter, so two terminals that saw the driver end together do not keep colliding.
    let jitter = Duration::from_millis(u64::from(std::process::id() % 97));
    loop {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        match Runner::open(engine.clone(), dc.clone(), raw_tx.clone()) {
            Ok(r) => return TakeOver::Drive(Box::new(r), raw_tx, raw_rx),
            Err(crate::pipeline::PipelineError::Locked(e)) => {
                if let Ok(a) = crate::control::attach(&dc.state_dir()).await {
                    return TakeOver::Attach(Box::new(a));
                }
                if tokio::time::Instant::now() >= deadline {
                    return TakeOver::Failed(format!(
                        "for 30 s neither its lock nor its driver answered ({e})"
                    ));
                }
            }
            Err(e) => return TakeOver::Failed(e.to_string()),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(150) + jitter) => {}
            c = cmds.recv() => if matches!(c, Some(Command::Detach) | None) {
                return TakeOver::Left;
            },
        }
    }
}
