//! Every screen and state, rendered on ratatui's TestBackend (no engine needed).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{Terminal, backend::TestBackend};
use stage2_tui::app::{Action, App, Effect, Screen};
use stage2_tui::pipeline::spec::Work;
use stage2_tui::pipeline::{Command, Plan};
use stage2_tui::ui::{self, Hits, scenes};

fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut hits = Hits::new();
    t.draw(|f| ui::draw(f, app, &mut hits)).unwrap();
    t
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

#[test]
fn running_with_countdown() {
    let dir = tempfile::tempdir().unwrap();
    let app = scenes::running(dir.path());
    insta::assert_snapshot!("running_120x32", render(&app, 120, 32).backend());
    insta::assert_snapshot!("running_80x24", render(&app, 80, 24).backend());
    insta::assert_snapshot!("running_200x60", render(&app, 200, 60).backend());
    insta::assert_snapshot!("running_50x20", render(&app, 50, 20).backend());
    // At every width the header keeps the run's status, and the footer ends whole.
    for w in [50, 80, 120, 200] {
        let screen = format!("{}", render(&app, w, 30).backend());
        let lines: Vec<&str> = screen.lines().collect();
        assert!(lines[0].contains("running"), "{w} columns:\n{screen}");
        let footer = lines[lines.len() - 1];
        assert!(
            footer
                .trim_end()
                .trim_end_matches('"')
                .trim_end()
                .ends_with("help")
                || footer.contains("all keys"),
            "{w} columns: {footer}"
        );
    }
}

#[test]
fn failed_offers_retry_and_skip() {
    let dir = tempfile::tempdir().unwrap();
    let app = scenes::failed(dir.path());
    let t = render(&app, 120, 32);
    insta::assert_snapshot!("failed_120x32", t.backend());
    assert_eq!(
        app.buttons(),
        vec![
            Action::Retry,
            Action::Skip,
            Action::OpenLog,
            Action::EndWindow
        ]
    );
}

#[test]
fn retrying_the_installer_warns_that_later_steps_go_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::failed(dir.path());
    app.selected = app.pipeline.index_of("4.run-installer").unwrap(); // succeeded
    assert_eq!(
        app.on_key(key('r')),
        vec![],
        "retry applies to failed steps only"
    );
    assert_eq!(app.on_key(key('f')), vec![], "resume from here asks first");
    // The question comes with the answer of the job that reads the deployconfig's files.
    assert!(app.working());
    assert_eq!(app.settle(), vec![]);
    insta::assert_snapshot!("confirm_rerun_installer", render(&app, 100, 30).backend());
    assert_eq!(
        app.on_key(key('y')),
        vec![Effect::Start(Plan::From("4.run-installer".into()))]
    );
}

#[test]
fn a_rerun_that_would_undo_the_vms_names_the_consequence_and_only_y_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let dc = tempfile::tempdir().unwrap();
    std::fs::write(
        dc.path().join("terraform.tfstate"),
        r#"{"version":4,"resources":[{"mode":"managed","type":"vsphere_virtual_machine","name":"vm","instances":[{"index_key":"master-0","attributes":{"name":"master-0"}},{"index_key":"worker-0","attributes":{"name":"worker-0"}}]}]}"#,
    )
    .unwrap();
    let mut app = scenes::completed(dir.path());
    app.header.deployconfig = dc.path().display().to_string();
    app.selected = app.pipeline.index_of("4.run-installer").unwrap();
    assert_eq!(app.on_key(key('f')), vec![]);
    assert_eq!(app.settle(), vec![]);
    let screen = format!("{:?}", render(&app, 120, 32).backend());
    assert!(
        screen.contains("although terraform.tfstate lists VMs?"),
        "{screen}"
    );
    assert!(
        screen.contains("DANGER: 4.run-installer moves terraform.tfstate aside"),
        "{screen}"
    );
    assert!(screen.contains("lists 2 VMs"), "{screen}");
    assert!(screen.contains("(master-0, worker-0)"), "{screen}");
    assert!(screen.contains("Safer: remove those VMs first"), "{screen}");
    // Enter is no: nothing is allowed, nothing starts.
    assert_eq!(
        app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)),
        vec![]
    );
    assert!(app.overlay.is_none());
    assert_eq!(app.on_key(key('f')), vec![]);
    assert_eq!(app.settle(), vec![]);
    assert_eq!(
        app.on_key(key('y')),
        vec![
            Effect::AllowRerun("4.run-installer".into()),
            Effect::Start(Plan::From("4.run-installer".into()))
        ]
    );
    // From 7 on, after remove-bootstrap: the question says the bootstrap VM is made again.
    std::fs::write(
        dc.path().join("config.json"),
        "{\n  \"clusterid\": \"x\",\n  \"bootstrap_complete\": \"true\"\n}\n",
    )
    .unwrap();
    app.selected = app.pipeline.index_of("7.terraform-deploy").unwrap();
    assert_eq!(app.on_key(key('f')), vec![]);
    assert_eq!(app.settle(), vec![]);
    let screen = format!("{}", render(&app, 120, 32).backend());
    assert!(
        screen.contains("so terraform makes the bootstrap VM again"),
        "{screen}"
    );
}

#[test]
fn retrying_the_failed_step_needs_no_question() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::failed(dir.path());
    // 7 clears bootstrap_complete: a job looks at config.json first, and the run starts
    // with its answer (nothing to ask here).
    assert_eq!(app.on_key(key('r')), vec![]);
    assert_eq!(
        app.settle(),
        vec![Effect::Start(Plan::From("7.terraform-deploy".into()))]
    );
}

#[test]
fn stop_and_quit_ask_first_and_say_what_happens() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    assert_eq!(app.on_key(key('x')), vec![]);
    insta::assert_snapshot!("confirm_stop", render(&app, 100, 30).backend());
    assert_eq!(app.on_key(key('y')), vec![Effect::Send(Command::Stop)]);
    assert_eq!(app.on_key(key('q')), vec![]);
    insta::assert_snapshot!("confirm_quit", render(&app, 100, 30).backend());
    assert_eq!(app.on_key(key('n')), vec![]);
    assert!(app.overlay.is_none());
    // While terraform runs, the window has no countdown yet: + says so.
    assert_eq!(app.on_key(key('+')), vec![]);
    assert!(
        app.status
            .as_deref()
            .unwrap_or_default()
            .contains("its countdown starts when 7.terraform-deploy succeeds")
    );
    let mut app = scenes::serving(dir.path());
    assert_eq!(
        app.on_key(key('+')),
        vec![Effect::Send(Command::ExtendWindow {
            step: "5.ign-webserver".into(),
            secs: 300
        })]
    );
}

#[test]
fn completed_run_shows_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let app = scenes::completed(dir.path());
    insta::assert_snapshot!("completed_120x32", render(&app, 120, 32).backend());
}

#[test]
fn log_view_with_search() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::log_search(dir.path(), 30);
    insta::assert_snapshot!("log_search", render(&app, 120, 30).backend());
    app.on_key(key('n'));
    app.on_key(key('T'));
    app.on_key(key('E'));
    // The scan runs off the update: until it answers, the status line says what runs.
    let waiting = format!("{:?}", render(&app, 120, 30).backend());
    assert!(
        waiting.contains("looking for the first error…"),
        "{waiting}"
    );
    app.settle();
    insta::assert_snapshot!("log_first_error", render(&app, 120, 30).backend());
    app.on_key(key('/'));
    for c in "worker-3".chars() {
        app.on_key(key(c));
    }
    insta::assert_snapshot!("log_typing_search", render(&app, 120, 30).backend());
}

#[test]
fn the_log_view_marks_the_current_match_and_the_first_error_and_numbers_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::log_search(dir.path(), 30);
    let row_of = |app: &App, mark: &str| -> Option<String> {
        format!("{}", render(app, 120, 30).backend())
            .lines()
            .find(|l| l.contains(mark))
            .map(str::to_string)
    };
    // The current match carries the marker; n moves it to the next one.
    let first = row_of(&app, "▶").expect("a current-match marker");
    app.on_key(key('n'));
    let second = row_of(&app, "▶").expect("a current-match marker");
    assert_ne!(first, second, "n moves the marker");
    assert!(second.contains("master-1"), "{second}");
    // # numbers the lines: the marked row says which line it is.
    app.on_key(key('#'));
    let numbered = row_of(&app, "▶").unwrap();
    let screen = format!("{}", render(&app, 120, 30).backend());
    assert!(screen.contains("numbers: on"), "{screen}");
    let Screen::Log(v) = &app.screen else {
        panic!("not the log view")
    };
    let s = v.search.as_ref().unwrap();
    let n = s.matches[s.current] + 1;
    assert!(numbered.contains(&format!("{n} ▶")), "{numbered}");
}

#[test]
fn help_lists_every_binding_of_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    app.on_key(key('?'));
    let t = render(&app, 100, 40);
    insta::assert_snapshot!("help_dashboard", t.backend());
    let screen = format!("{}", t.backend());
    for (a, _) in app.keys.bindings(stage2_tui::app::Scope::Dashboard) {
        assert!(screen.contains(a.label()), "help lacks {a:?}");
    }
}

#[test]
fn each_theme_styles_the_failed_screen() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::failed(dir.path());
    for i in 0..app.themes.len() {
        app.theme = i;
        let name = app.theme().name.clone();
        let t = render(&app, 60, 18);
        insta::assert_snapshot!(
            format!("theme_{name}"),
            format!("{:?}", t.backend().buffer())
        );
    }
    app.themes = vec![stage2_tui::ui::theme::Theme::monochrome()];
    app.theme = 0;
    let t = render(&app, 60, 18);
    insta::assert_snapshot!("theme_no_color", format!("{:?}", t.backend().buffer()));
}

#[test]
fn tiny_terminals_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for app in [
        scenes::running(dir.path()),
        scenes::failed(dir.path()),
        scenes::log_search(dir.path(), 3),
    ] {
        for (w, h) in [(1, 1), (10, 3), (20, 5), (40, 10), (3, 40), (300, 2)] {
            render(&app, w, h);
        }
    }
    let app = scenes::running(dir.path());
    insta::assert_snapshot!("running_10x3", render(&app, 10, 3).backend());
    // Too small for the dashboard: it says so instead of drawing empty boxes.
    let text = format!("{:?}", render(&app, 36, 7).backend());
    assert!(text.contains("needs at least 40×8"), "{text}");
    insta::assert_snapshot!("running_36x7", render(&app, 36, 7).backend());
}

#[test]
fn the_message_history_keeps_every_message_whole() {
    use stage2_tui::pipeline::Event;
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::failed(dir.path());
    let long = format!("a long engine error: {} the end", "x".repeat(300));
    app.on_runner(Event::Note("first note".into()));
    app.record_messages();
    app.on_runner(Event::Note(long.clone()));
    app.record_messages();
    assert_eq!(app.messages.len(), 2);
    assert_eq!(app.on_key(key('M')), vec![]);
    let t = render(&app, 100, 30);
    let text = format!("{:?}", t.backend());
    assert!(
        text.contains("first note") && text.contains("the end"),
        "{text}"
    );
    // M is listed in help.
    app.on_key(key('M'));
    app.on_key(key('?'));
    assert!(format!("{:?}", render(&app, 100, 40).backend()).contains("messages"));
}

#[test]
fn the_log_view_switches_attempts_and_says_its_toggles_in_words() {
    use stage2_tui::pipeline::state::Attempt;
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::failed(dir.path());
    // A second attempt of 7.terraform-deploy, with its own log.
    let first = scenes::log_file(dir.path(), 40).unwrap();
    let second = dir.path().join("logs/run/7.terraform-deploy.2.log");
    std::fs::write(
        &second,
        "2026-11-27T12:10:00.000000001Z stdout second attempt ok\n",
    )
    .unwrap();
    let run = app.run.as_mut().unwrap();
    let st = run
        .steps
        .iter_mut()
        .find(|s| s.id == "7.terraform-deploy")
        .unwrap();
    let mut a2: Attempt = st.attempts[0].clone();
    a2.n = 2;
    a2.log = second.strip_prefix(dir.path()).unwrap().to_path_buf();
    st.attempts[0].log = first.strip_prefix(dir.path()).unwrap().to_path_buf();
    st.attempts.push(a2);
    let steps = format!("{:?}", render(&app, 120, 32).backend());
    assert!(steps.contains("7.terraform-deploy ×2"), "{steps}");
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let text = format!("{:?}", render(&app, 120, 32).backend());
    assert!(text.contains("(reading the log…)"), "{text}");
    app.settle();
    let text = format!("{:?}", render(&app, 120, 32).backend());
    assert!(
        text.contains("attempt 2 of 2") && text.contains("second attempt ok"),
        "{text}"
    );
    assert!(
        text.contains("timestamps: off") && text.contains("wrap: off"),
        "{text}"
    );
    app.on_key(key('['));
    app.on_key(key('T'));
    app.settle();
    let text = format!("{:?}", render(&app, 120, 32).backend());
    assert!(text.contains("attempt 1 of 2"), "{text}");
    assert!(text.contains("timestamps: local"), "{text}");
    insta::assert_snapshot!("log_attempt_1_of_2", render(&app, 120, 32).backend());
    app.on_key(key('['));
    assert!(
        app.screen
            .log()
            .unwrap()
            .message
            .as_deref()
            .unwrap_or("")
            .contains("2 attempt(s)")
    );
}

#[test]
fn mouse_clicks_press_buttons_and_select_steps() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::failed(dir.path());
    let mut t = Terminal::new(TestBackend::new(120, 32)).unwrap();
    let mut hits = Hits::new();
    t.draw(|f| ui::draw(f, &app, &mut hits)).unwrap();
    let (retry, _) = *hits
        .iter()
        .find(|(_, h)| *h == ui::Hit::Action(Action::Retry))
        .expect("a Retry button");
    let click = |x, y| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: x,
        row: y,
        modifiers: KeyModifiers::NONE,
    };
    assert_eq!(app.on_mouse(click(retry.x + 1, retry.y), &hits), vec![]);
    assert_eq!(
        app.settle(),
        vec![Effect::Start(Plan::From("7.terraform-deploy".into()))]
    );
    let (row, _) = *hits.iter().find(|(_, h)| *h == ui::Hit::Step(1)).unwrap();
    app.on_mouse(click(row.x + 2, row.y), &hits);
    assert_eq!(app.selected, 1);
}

#[test]
fn log_lines_with_escape_sequences_are_made_visible() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    app.tails.insert(
        "7.terraform-deploy".into(),
        [stage2_tui::logformat::LogLine {
            stream: stage2_tui::logformat::Stream::Stdout,
            ts: String::new(),
            text: "\x1b]0;pwned\x07\x1b[2J\x1b[Hafter\x1b[31m red\x1b[0m".into(),
        }]
        .into(),
    );
    let t = render(&app, 120, 32);
    let screen = format!("{}", t.backend());
    assert!(
        screen.contains("^[]0;pwned^G^[[2J^[[Hafter red"),
        "{screen}"
    );
    for cell in t.backend().buffer().content() {
        assert!(
            !cell.symbol().chars().any(|c| c.is_control()),
            "a control character reached the buffer"
        );
    }
}

#[test]
fn an_unreachable_engine_shows_a_banner_and_the_run_waits() {
    use stage2_tui::pipeline::Event;
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    app.on_runner(Event::Trouble(Some(
        "engine unreachable, retrying (the engine is unreachable (waiting for container abc: error reading a body from connection)). 7.terraform-deploy keeps running in the engine; stage2-tui reattaches when the engine answers".into(),
    )));
    let t = render(&app, 100, 30);
    insta::assert_snapshot!("engine_unreachable_banner", t.backend());
    let text = format!("{:?}", t.backend());
    assert!(text.contains("engine unreachable, retrying"), "{text}");
    app.on_runner(Event::Trouble(None));
    assert!(!format!("{:?}", render(&app, 100, 30).backend()).contains("engine unreachable"));
}

#[test]
fn the_cluster_pane_shows_nodes_csrs_and_operators() {
    let dir = tempfile::tempdir().unwrap();
    let app = scenes::cluster(dir.path());
    let t = render(&app, 120, 34);
    let screen = format!("{:?}", t.backend());
    for want in [
        " Cluster ",
        "nodes 5/9 Ready",
        "CSRs 2 pending, 12 approved",
        "not Ready: worker-0, worker-1, worker-2, worker-3",
        "operators 24/31 available, 7 progressing, 0 degraded",
        "waiting for: authentication, console, image-registry, ingress, monitoring",
        "not a node's, left alone: csr-9zk2p",
    ] {
        assert!(screen.contains(want), "{want} missing:\n{screen}");
    }
    insta::assert_snapshot!("cluster_120x34", format!("{:?}", t.backend()));
}

#[test]
fn the_window_waits_for_terraform_then_counts_down_with_the_servers_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let waiting = format!(
        "{:?}",
        render(&scenes::running(dir.path()), 120, 32).backend()
    );
    assert!(
        waiting.contains("waiting for 7.terraform-deploy, then 10:00"),
        "{waiting}"
    );
    assert!(
        waiting.contains("bootstrap.ign not fetched yet"),
        "{waiting}"
    );
    let app = scenes::serving(dir.path());
    let t = render(&app, 120, 34);
    let serving = format!("{:?}", t.backend());
    assert!(serving.contains("07:26 left"), "{serving}");
    assert!(
        serving.contains("served bootstrap.ign to 10.50.1.250 12:12:05, 200, 295 KB"),
        "{serving}"
    );
    insta::assert_snapshot!("serving_120x34", t.backend());
}

#[test]
fn every_start_up_problem_goes_into_the_message_history_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    let before = app.messages.len();
    app.startup_problems(vec![
        "key map not loaded (keys.toml: [global] quit has no key); using the defaults".into(),
        "theme /x/themes/pipe.toml: is a named pipe".into(),
    ]);
    app.record_messages();
    let texts: Vec<&str> = app.messages[before..]
        .iter()
        .map(|(_, m)| m.as_str())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("key map not loaded") && texts[1].starts_with("theme "));
    assert_eq!(app.status.as_deref(), Some(texts[0]));
}

#[test]
fn slash_filters_the_step_list_and_the_message_history() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    app.on_key(key('/'));
    for c in "wait".chars() {
        app.on_key(key(c));
    }
    let screen = format!("{}", render(&app, 120, 32).backend());
    assert!(screen.contains("Steps /wait"), "{screen}");
    assert!(
        screen.contains("wait-svcs") && screen.contains("wait-operators"),
        "{screen}"
    );
    assert!(!screen.contains("6.add-ignition"), "{screen}");
    // Enter keeps it; j/k move among the listed steps only.
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    let listed = app.listed_steps();
    assert!(listed.contains(&app.selected));
    app.on_key(key('j'));
    assert!(app.listed_steps().contains(&app.selected));
    // Esc lists them all again.
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert!(app.step_filter.is_none());
    assert_eq!(app.listed_steps().len(), app.pipeline.steps.len());
    // The message history filters the same way.
    app.on_runner(stage2_tui::pipeline::Event::Note("alpha happened".into()));
    app.on_runner(stage2_tui::pipeline::Event::Note("beta happened".into()));
    app.record_messages();
    app.on_key(key('M'));
    app.on_key(key('/'));
    for c in "beta".chars() {
        app.on_key(key(c));
    }
    let screen = format!("{}", render(&app, 120, 32).backend());
    assert!(screen.contains("Messages matching /beta"), "{screen}");
    assert!(
        screen.contains("beta happened") && !screen.contains("alpha happened"),
        "{screen}"
    );
}

#[test]
fn tab_gives_a_log_pane_the_keys_to_scroll_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::running(dir.path());
    app.resize(120, 32);
    let selected = app.selected;
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert_eq!(app.pane_focus, Some((0, 0)));
    for _ in 0..3 {
        app.on_key(key('k'));
    }
    assert_eq!(
        app.selected, selected,
        "k scrolled the pane, not the step list"
    );
    let screen = format!("{}", render(&app, 120, 32).backend());
    assert!(screen.contains("3 lines up"), "{screen}");
    // Tab moves on to the next pane, then gives the keys back; Esc does too.
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    assert_eq!(app.pane_focus, Some((1, 0)));
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    assert_eq!(app.pane_focus, None);
    app.on_key(key('j'));
    assert_ne!(app.selected, selected, "j moves the selection again");
}

#[test]
fn questions_say_the_values_they_are_about() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::completed(dir.path());
    // A 20-second window (the demo's): a re-run from 6 says so, not "10 minutes".
    let web = app.pipeline.index_of("5.ign-webserver").unwrap();
    let Work::Service(_, w) = &mut app.pipeline.steps[web].work else {
        panic!("the web server is a service step")
    };
    w.ttl_secs = 20;
    app.selected = app.pipeline.index_of("6.add-ignition").unwrap();
    assert_eq!(app.on_key(key('f')), vec![]);
    assert_eq!(app.settle(), vec![]);
    let screen = format!("{}", render(&app, 140, 40).backend());
    assert!(
        screen.contains("a new 20-second window that counts from 7.terraform-deploy's success"),
        "{screen}"
    );
    assert!(!screen.contains("10-minute"), "{screen}");
    // A 90-second one.
    app.on_key(key('n'));
    let Work::Service(_, w) = &mut app.pipeline.steps[web].work else {
        panic!("the web server is a service step")
    };
    w.ttl_secs = 90;
    app.on_key(key('f'));
    app.settle();
    let screen = format!("{}", render(&app, 140, 40).backend());
    assert!(screen.contains("a new 1 min 30 s window"), "{screen}");
}

#[test]
fn the_setup_flow_opens_from_the_dashboard_once_its_files_are_read_off_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = scenes::completed(dir.path());
    assert_eq!(app.on_key(key('c')), vec![]);
    assert!(
        matches!(app.screen, Screen::Dashboard),
        "nothing read in the update"
    );
    assert!(app.working(), "the read is under way");
    let effects = app.settle();
    assert!(matches!(app.screen, Screen::Setup(_)));
    assert!(effects.contains(&Effect::Setup(stage2_tui::app::setup::SetupTask::Checks)));
}

#[test]
fn every_side_effect_leaves_the_update_as_an_effect_and_file_work_is_a_job() {
    use stage2_tui::app::work::{Job, Msg};
    let dir = tempfile::tempdir().unwrap();
    let dc = tempfile::tempdir().unwrap();
    let mut app = scenes::completed(dir.path());
    app.header.deployconfig = dc.path().display().to_string();
    app.selected = app.pipeline.index_of("4.run-installer").unwrap();
    // The scene's first work (the tails of its logs) is done.
    let first = app.update(Msg::Tick);
    let [Effect::Work(tails @ Job::Tails(_))] = first.as_slice() else {
        panic!("the scene's first job reads the tails of its logs: {first:?}")
    };
    assert_eq!(app.update(Msg::Done(tails.clone().run())), vec![]);
    // Running again from 4 looks at the terraform state: the update asks for a job and reads
    // nothing itself.
    let effects = app.update(Msg::Key(key('f')));
    let [Effect::Work(job @ Job::Rerun { .. })] = effects.as_slice() else {
        panic!("one job, for the question: {effects:?}")
    };
    assert!(app.overlay.is_none(), "no question before the job answers");
    assert_eq!(
        app.update(Msg::Key(key('f'))),
        vec![],
        "a second press while the job runs asks for nothing more"
    );
    // The job reads the files when it runs, not when the key was pressed.
    std::fs::write(
        dc.path().join("terraform.tfstate"),
        r#"{"version":4,"resources":[{"mode":"managed","type":"vsphere_virtual_machine","name":"vm","instances":[{"index_key":"master-0","attributes":{"name":"master-0"}}]}]}"#,
    )
    .unwrap();
    let done = job.clone().run();
    assert_eq!(app.update(Msg::Done(done)), vec![]);
    let screen = format!("{}", render(&app, 120, 32).backend());
    assert!(
        screen.contains("lists 1 VMs") || screen.contains("lists 1 VM"),
        "{screen}"
    );
    assert!(!app.working(), "the job's answer ends the work");

    // Opening a log asks for its index as a job; its answer comes back as a message.
    app.overlay = None;
    let effects = app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    let [Effect::Work(job @ Job::Log(_))] = effects.as_slice() else {
        panic!("the log view's index, as a job: {effects:?}")
    };
    assert!(matches!(app.screen, Screen::Log(_)));
    assert_eq!(app.update(Msg::Done(job.clone().run())), vec![]);
    assert!(!app.working());

    // The web server's URL is looked at on the clock, every 2 s, through an effect.
    let mut app = scenes::serving(dir.path());
    let checks = |effects: Vec<Effect>| {
        effects
            .into_iter()
            .filter(|e| matches!(e, Effect::CheckUrl { .. }))
            .count()
    };
    assert_eq!(checks(app.update(Msg::Tick)), 1);
    assert_eq!(checks(app.update(Msg::Tick)), 0, "not again within 2 s");
    assert_eq!(
        checks(app.update(Msg::Key(key('j')))),
        0,
        "only on the clock"
    );
}
