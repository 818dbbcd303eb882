//! The setup flow's screens and behaviour, on a temporary deployconfig (no engine needed).

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{Terminal, backend::TestBackend};
use stage2_tui::app::setup::{Page, SetupMsg};
use stage2_tui::app::{App, Effect};
use stage2_tui::pipeline::Plan;
use stage2_tui::ui::{self, Hits, scenes};

/// Carries out the file work the setup flow asked for, as the TUI loop does off the update, and
/// hands back the effects that follow.
fn run_file_work(app: &mut App, effects: Vec<Effect>) -> Vec<Effect> {
    use stage2_tui::app::setup::{SetupTask, file_op};
    let mut next = Vec::new();
    for e in effects {
        match e {
            Effect::Setup(SetupTask::File(op)) => {
                let dc = app.screen.setup().unwrap().dc.clone();
                next.extend(app.on_setup_msg(SetupMsg::File(file_op(&dc, op))));
            }
            other => next.push(other),
        }
    }
    next
}

/// A reload asked for: the files are read off the update, as the loop does.
fn reload_done(app: &mut App, effects: Vec<Effect>) {
    assert_eq!(
        effects,
        vec![Effect::Setup(stage2_tui::app::setup::SetupTask::Reload)]
    );
    let dc = app.screen.setup().unwrap().dc.clone();
    app.on_setup_msg(SetupMsg::Reloaded(Box::new(
        stage2_tui::app::setup::read_again(&dc),
    )));
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/config")
            .join(name),
    )
    .unwrap()
}

fn app_on(dir: &Path, config: &str) -> (App, Vec<Effect>) {
    scenes::setup(dir, config)
}

fn render(app: &App, dir: &Path) -> String {
    let mut t = Terminal::new(TestBackend::new(110, 34)).unwrap();
    let mut hits = Hits::new();
    t.draw(|f| ui::draw(f, app, &mut hits)).unwrap();
    format!("{}", t.backend()).replace(&dir.display().to_string(), "[DC]")
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn typ(app: &mut App, s: &str) {
    for c in s.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

#[test]
fn preflight_screen() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, first) = app_on(dir.path(), &fixture("valid.json"));
    assert_eq!(
        first,
        vec![Effect::Setup(stage2_tui::app::setup::SetupTask::Checks)]
    );
    insta::assert_snapshot!("setup_preflight_running", render(&app, dir.path()));
    app.on_setup_msg(SetupMsg::Checks(scenes::setup_checks()));
    insta::assert_snapshot!("setup_preflight", render(&app, dir.path()));
}

#[test]
fn form_shows_errors_at_the_field_and_an_edit_fixes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("ip-outside-network.json"));
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Char('E')));
    insta::assert_snapshot!("setup_form_error", render(&app, dir.path()));
    app.on_key(key(KeyCode::Enter));
    for _ in 0..10 {
        app.on_key(key(KeyCode::Backspace));
    }
    typ(&mut app, "10.50.1.11");
    insta::assert_snapshot!("setup_form_editing", render(&app, dir.path()));
    app.on_key(key(KeyCode::Enter));
    let s = app.screen.setup().unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    // Secrets are masked until revealed.
    let screen = render(&app, dir.path());
    assert!(!screen.contains("hunter22"), "a secret is shown");
    // Nodes can be added and removed.
    app.on_key(key(KeyCode::Char('a')));
    assert_eq!(
        app.screen.setup().unwrap().config.value["masters"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert!(
        app.screen
            .setup()
            .unwrap()
            .problems
            .iter()
            .any(|p| p.message.contains("exactly 3 masters"))
    );
    app.on_key(key(KeyCode::Char('d')));
    assert_eq!(
        app.screen.setup().unwrap().config.value["masters"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn a_file_that_does_not_parse_opens_in_the_raw_editor_at_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("missing-comma.json"));
    // Straight to the raw editor: no Tab needed.
    assert_eq!(app.screen.setup().unwrap().step, Page::Config);
    insta::assert_snapshot!("setup_raw_parse_error", render(&app, dir.path()));
    let s = app.screen.setup().unwrap();
    let stage2_tui_cursor = s.form.raw.as_ref().unwrap().area.cursor();
    let (row, col) = (stage2_tui_cursor.0, stage2_tui_cursor.1);
    assert_eq!(
        (row + 1, col + 1),
        (94, 5),
        "the cursor sits at the parse error"
    );
    // Type the missing comma at the end of the previous line, then leave the raw editor.
    app.on_key(key(KeyCode::Up));
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Char(',')));
    app.on_key(key(KeyCode::Esc));
    let s = app.screen.setup().unwrap();
    assert!(s.form.raw.is_none() && s.config.parse_error.is_none());
    assert_eq!(s.config.text(), fixture("valid.json"));
}

#[test]
fn installer_and_tag_pickers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    std::fs::write(dir.path().join("openshift-install"), "#!/bin/sh\n").unwrap();
    for _ in 0..2 {
        app.on_key(key(KeyCode::Tab));
    }
    app.on_setup_msg(scenes::setup_versions());
    insta::assert_snapshot!("setup_installer", render(&app, dir.path()));
    // Choosing the embedded one moves the override aside, reversibly (off the update).
    let effects = app.on_key(key(KeyCode::Char('e')));
    assert!(dir.path().join("openshift-install").exists());
    run_file_work(&mut app, effects);
    assert!(!dir.path().join("openshift-install").exists());
    assert!(
        dir.path()
            .join("openshift-install.stage2-tui-disabled")
            .exists()
    );
    let effects = app.on_key(key(KeyCode::Char('o')));
    run_file_work(&mut app, effects);
    assert!(dir.path().join("openshift-install").exists());
    app.on_key(key(KeyCode::Tab));
    app.on_setup_msg(scenes::setup_tags());
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    insta::assert_snapshot!("setup_tags", render(&app, dir.path()));
    assert_eq!(
        app.screen.setup().unwrap().config.value["imagetag"],
        "0.6-rc1"
    );
}

#[test]
fn review_shows_the_diff_blocks_on_errors_and_start_saves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("two-masters.json"));
    for _ in 0..4 {
        app.on_key(key(KeyCode::Tab));
    }
    insta::assert_snapshot!("setup_review_blocked", render(&app, dir.path()));
    assert_eq!(
        app.on_key(key(KeyCode::Char('S'))),
        vec![],
        "errors block Start"
    );
    assert_eq!(app.screen.setup().unwrap().step, Page::Config);
    // Fix: add the third master.
    app.on_key(key(KeyCode::Char('a')));
    app.on_key(key(KeyCode::Enter));
    typ(&mut app, "master-2");
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    typ(&mut app, "10.50.1.12");
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.screen.setup().unwrap().problems.is_empty(),
        "{:?}",
        app.screen.setup().unwrap().problems
    );
    for _ in 0..3 {
        app.on_key(key(KeyCode::Tab));
    }
    insta::assert_snapshot!("setup_review", render(&app, dir.path()));
    // Someone rewrites config.json meanwhile: Start refuses to clobber it.
    std::fs::write(
        dir.path().join("config.json"),
        fixture("valid.json").replace("ocp4demo", "rewritten"),
    )
    .unwrap();
    assert_eq!(app.on_key(key(KeyCode::Char('S'))), vec![]);
    // The files are written off the update loop: nothing until the save job runs.
    assert!(!app.screen.setup().unwrap().conflict());
    assert_eq!(app.settle(), vec![]);
    assert!(app.screen.setup().unwrap().conflict());
    // O shows what saving over it drops, and asks; the save was a Start, so y saves and starts.
    assert_eq!(app.on_key(key(KeyCode::Char('O'))), vec![]);
    let screen = render(&app, dir.path());
    assert!(
        screen.contains("Save yours over the change on disk, then start?"),
        "{screen}"
    );
    assert_eq!(app.on_key(key(KeyCode::Char('y'))), vec![]);
    assert!(app.screen.setup().is_some(), "still saving");
    assert_eq!(app.settle(), vec![Effect::Start(Plan::Continue)]);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["masters"][2]["ipaddress"], "10.50.1.12");
    assert!(dir.path().join(".config.json.stage2-tui.bak").exists());
    assert!(app.screen.setup().is_none(), "Start opens the dashboard");
}

/// On the config form: the field below the first, edited (an "x" appended).
fn edit_the_first_field(app: &mut App) {
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    typ(app, "x");
    app.on_key(key(KeyCode::Enter));
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

#[test]
fn unsaved_edits_are_never_lost_without_a_question_and_w_saves_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    app.on_key(key(KeyCode::Tab));
    // Edit a field.
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    typ(&mut app, "x");
    app.on_key(key(KeyCode::Enter));
    assert!(app.screen.setup().unwrap().config.changed());
    // q asks, showing what would be lost; Enter means no.
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![]);
    let screen = render(&app, dir.path());
    assert!(screen.contains("Quit and lose your changes?"), "{screen}");
    assert!(
        screen.contains("config.json: 2 changed line(s)"),
        "{screen}"
    );
    assert!(screen.contains("No (n, Esc, Enter, q)"), "{screen}");
    insta::assert_snapshot!("setup_quit_with_unsaved_edits", screen);
    assert_eq!(app.on_key(key(KeyCode::Enter)), vec![]);
    assert!(app.overlay.is_none() && app.screen.setup().unwrap().config.changed());
    // L asks too; n keeps the edit.
    app.on_key(key(KeyCode::Char('L')));
    assert!(render(&app, dir.path()).contains("Reload and lose your changes?"));
    app.on_key(key(KeyCode::Char('n')));
    assert!(app.screen.setup().unwrap().config.changed());
    // Undo takes the edit back, Ctrl-Z as the footer says; then redo it and save only.
    app.on_key(ctrl('z'));
    assert!(!app.screen.setup().unwrap().config.changed());
    app.on_key(key(KeyCode::Enter));
    typ(&mut app, "y");
    app.on_key(key(KeyCode::Enter));
    let mut effects = app.on_key(key(KeyCode::Char('w')));
    assert!(
        !dir.path().join(".config.json.stage2-tui.bak").exists(),
        "written off the update loop"
    );
    effects.extend(app.settle());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Start(_))),
        "w saves without starting: {effects:?}"
    );
    let msg = app
        .screen
        .setup()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(msg.starts_with("saved config.json"), "{msg}");
    assert!(dir.path().join(".config.json.stage2-tui.bak").exists());
    assert!(!app.screen.setup().unwrap().config.changed());
    // Nothing unsaved: q quits at once.
    assert_eq!(app.on_key(key(KeyCode::Char('q'))), vec![Effect::Quit]);
}

#[test]
fn the_first_node_of_an_empty_group_is_added_from_its_title() {
    let dir = tempfile::tempdir().unwrap();
    let config = fixture("valid.json");
    let mut v: serde_json::Value = serde_json::from_str(&config).unwrap();
    let group = v
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.contains("workers") && v[k.as_str()].is_array())
        .unwrap()
        .clone();
    v[group.as_str()] = serde_json::json!([]);
    let (mut app, _) = app_on(dir.path(), &serde_json::to_string_pretty(&v).unwrap());
    app.on_key(key(KeyCode::Tab));
    let s = app.screen.setup_mut().unwrap();
    let title = s
        .form.rows
        .iter()
        .position(|r| matches!(r, stage2_tui::app::setup::Row::Header(h) if h.starts_with(&format!("{group} (0 nodes"))))
        .expect("the empty group has a title row");
    s.form.selected = title;
    app.on_key(key(KeyCode::Char('a')));
    let s = app.screen.setup().unwrap();
    assert_eq!(s.config.value[group.as_str()].as_array().unwrap().len(), 1);
    assert!(
        s.config.text().contains("\"hostname\": \"\""),
        "{}",
        s.config.text()
    );
    // G/End and g/Home move in the form.
    app.on_key(key(KeyCode::Char('G')));
    let last = app.screen.setup().unwrap().form.rows.len() - 1;
    assert_eq!(app.screen.setup().unwrap().form.selected, last);
    app.on_key(key(KeyCode::Home));
    assert_eq!(app.screen.setup().unwrap().form.selected, 0);
}

#[test]
fn a_broken_secrets_json_is_fixed_in_its_own_raw_editor_with_values_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    std::fs::write(
        dir.path().join("secrets.json"),
        "{\n  \"registrytoken\": \"tok-secret-1\"\n  \"rheltemplatepw\": \"pw-secret-2\"\n}\n",
    )
    .unwrap();
    app.on_key(key(KeyCode::Tab));
    let effects = app.on_key(key(KeyCode::Char('L')));
    reload_done(&mut app, effects);
    assert!(app.screen.setup().unwrap().secrets.parse_error.is_some());
    app.on_key(key(KeyCode::F(3)));
    let screen = render(&app, dir.path());
    assert!(!screen.contains("tok-secret-1"), "masked:\n{screen}");
    assert!(
        screen.contains("secrets.json (raw, values masked)"),
        "{screen}"
    );
    insta::assert_snapshot!("setup_raw_secrets_masked", screen);
    // Typing while masked changes nothing; v reveals; then the comma goes in.
    typ(&mut app, ",");
    assert!(
        app.screen
            .setup()
            .unwrap()
            .message
            .as_deref()
            .unwrap_or("")
            .contains("masked")
    );
    typ(&mut app, "v");
    assert!(render(&app, dir.path()).contains("tok-secret-1"));
    // The cursor is at the parse error (the next key); the comma belongs at the line before.
    app.on_key(key(KeyCode::Up));
    app.on_key(key(KeyCode::End));
    typ(&mut app, ",");
    app.on_key(key(KeyCode::Esc));
    let s = app.screen.setup().unwrap();
    assert!(
        s.form.raw.is_none() && s.secrets.parse_error.is_none(),
        "{:?}",
        s.message
    );
    app.on_key(key(KeyCode::Char('w')));
    app.settle();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(saved["rheltemplatepw"], "pw-secret-2");
}

#[test]
fn review_lists_every_preflight_error_and_offers_the_safe_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    let pem = dir.path().join("deploy.pem");
    std::fs::write(&pem, "key").unwrap();
    std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o644)).unwrap();
    let checks: Vec<_> = scenes::setup_checks()
        .into_iter()
        .map(|mut c| {
            c.message = c
                .message
                .replace("/home/core/deployconfig", &dir.path().display().to_string());
            c
        })
        .collect();
    app.on_setup_msg(SetupMsg::Checks(checks));
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.screen.setup().unwrap().step, Page::Review);
    app.on_setup_msg(SetupMsg::Checks(
        scenes::setup_checks()
            .into_iter()
            .map(|mut c| {
                c.message = c
                    .message
                    .replace("/home/core/deployconfig", &dir.path().display().to_string());
                c
            })
            .collect(),
    ));
    let screen = render(&app, dir.path());
    assert!(screen.contains("pre-flight: deploy.pem"), "{screen}");
    assert!(screen.contains("pre-flight: bootstrap.ign"), "{screen}");
    assert!(
        screen.contains("x applies the safe fix: chmod 600"),
        "{screen}"
    );
    insta::assert_snapshot!("setup_review_preflight_errors", screen);
    assert_eq!(
        app.on_key(key(KeyCode::Char('S'))),
        vec![],
        "errors block Start"
    );
    // A blocked Start leads to the editor; the pre-flight step offers the fix too: x applies it
    // (and the checks run again).
    assert_eq!(app.screen.setup().unwrap().step, Page::Config);
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.screen.setup().unwrap().step, Page::Checks);
    let effects = app.on_key(key(KeyCode::Char('x')));
    assert_ne!(
        std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777,
        0o600,
        "nothing changed in the update"
    );
    let effects = run_file_work(&mut app, effects);
    assert_eq!(
        std::fs::metadata(&pem).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(effects.contains(&Effect::Setup(stage2_tui::app::setup::SetupTask::Checks)));
}

#[test]
fn a_copied_in_installer_is_checked_first_and_replaces_nothing_until_yes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    let src = dir.path().join("new-openshift-install");
    std::fs::write(&src, "#!/bin/sh\necho v4.14\n").unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    use stage2_tui::app::setup::{SetupTask, adopt_candidate_file, stage_candidate};
    let s = app.screen.setup_mut().unwrap();
    let task = s.copy_override(src.to_str().unwrap());
    // The copy (hundreds of MB for a real one) is background work, not the update's.
    assert_eq!(task, Some(SetupTask::CheckCandidate(src.clone())));
    let dc = s.dc.clone();
    assert!(!s.candidate_path().exists(), "nothing copied in the update");
    // The loop stages it in the state folder; here, in the test's own folder.
    let cand = dir.path().join("state").join("openshift-install.candidate");
    stage_candidate(&src, &cand).unwrap();
    assert!(
        !dir.path().join("openshift-install").exists(),
        "nothing replaced yet"
    );
    // It ran in the installer image: the question shows its version; Enter means no.
    app.on_setup_msg(SetupMsg::Candidate(Ok("openshift-install 4.14.3".into())));
    let screen = render(&app, dir.path());
    assert!(
        screen.contains("Copy this openshift-install in?"),
        "{screen}"
    );
    assert!(screen.contains("openshift-install 4.14.3"), "{screen}");
    app.on_key(key(KeyCode::Enter));
    assert!(!dir.path().join("openshift-install").exists());
    // Asked again, y copies it in.
    app.screen
        .setup_mut()
        .unwrap()
        .copy_override(src.to_str().unwrap());
    stage_candidate(&src, &cand).unwrap();
    app.on_setup_msg(SetupMsg::Candidate(Ok("openshift-install 4.14.3".into())));
    let effects = app.on_key(key(KeyCode::Char('y')));
    let from = src.display().to_string();
    assert_eq!(
        effects,
        vec![Effect::Setup(SetupTask::AdoptCandidate(from.clone()))]
    );
    assert!(
        !dir.path().join("openshift-install").exists(),
        "copied off the loop"
    );
    let done = adopt_candidate_file(&dc, &from, &cand);
    assert!(!cand.exists(), "the candidate is removed");
    assert_eq!(
        app.on_setup_msg(SetupMsg::Adopted(done)),
        vec![Effect::Setup(SetupTask::Versions)]
    );
    assert_eq!(
        std::fs::read(dir.path().join("openshift-install")).unwrap(),
        std::fs::read(&src).unwrap()
    );
    // One that does not run is never copied.
    std::fs::remove_file(dir.path().join("openshift-install")).unwrap();
    app.screen
        .setup_mut()
        .unwrap()
        .copy_override(src.to_str().unwrap());
    app.on_setup_msg(SetupMsg::Candidate(Err(
        stage2_tui::app::setup::TaskError::Exited {
            code: 126,
            output: "exec format error".into(),
        },
    )));
    assert!(app.overlay.is_none());
    assert!(!dir.path().join("openshift-install").exists());
    let msg = app
        .screen
        .setup()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(msg.contains("does not run in the installer image"), "{msg}");
}

#[test]
fn a_reload_of_a_file_that_does_not_parse_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    app.on_key(key(KeyCode::Tab));
    std::fs::write(
        dir.path().join("config.json"),
        fixture("missing-comma.json"),
    )
    .unwrap();
    let effects = app.on_key(key(KeyCode::Char('L')));
    reload_done(&mut app, effects);
    let msg = app
        .screen
        .setup()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(msg.contains("config.json does not parse"), "{msg}");
    let screen = render(&app, dir.path());
    assert!(!screen.contains("config.json is valid"), "{screen}");
    assert!(screen.contains("does not parse"), "{screen}");
}

#[test]
fn a_pull_failing_on_the_certificate_says_so_and_t_pulls_again_without_tls_verification() {
    use stage2_tui::app::setup::SetupTask;
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    for _ in 0..3 {
        app.on_key(key(KeyCode::Tab));
    }
    assert_eq!(app.screen.setup().unwrap().step, Page::Tag);
    app.on_key(key(KeyCode::Char('p')));
    typ(&mut app, "0.7");
    assert_eq!(
        app.on_key(key(KeyCode::Enter)),
        vec![Effect::Setup(SetupTask::Pull("0.7".into()))]
    );
    app.on_setup_msg(SetupMsg::PullDone(Err(stage2_tui::app::setup::PullFailure {
        message: "registry.example.internal:5002/docker-openshift/4.run-installer:0.7: pinging container registry registry.example.internal:5002: Get \"https://registry.example.internal:5002/v2/\": tls: failed to verify certificate: x509: certificate signed by unknown authority".into(),
        tls: true,
    })));
    let msg = app.screen.setup().unwrap().message.clone().unwrap();
    assert!(
        msg.contains("a TLS problem")
            && msg.contains("Press T")
            && msg.contains("--tls-verify=false"),
        "{msg}"
    );
    assert_eq!(
        app.on_key(key(KeyCode::Char('T'))),
        vec![
            Effect::TlsVerify(false),
            Effect::Setup(SetupTask::Pull("0.7".into()))
        ]
    );
    assert!(!app.screen.setup().unwrap().tag.tls_verify);
}

#[test]
fn esc_goes_back_from_setup_to_the_dashboard_and_asks_first_when_edits_would_be_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    // Nothing edited: Esc is back to the dashboard at once.
    app.on_key(key(KeyCode::Esc));
    assert!(matches!(app.screen, stage2_tui::app::Screen::Dashboard));
    // With an edit: Esc asks, Enter keeps setup and the edit, y goes back.
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    edit_the_first_field(&mut app);
    app.on_key(key(KeyCode::Esc));
    let screen = render(&app, dir.path());
    assert!(
        screen.contains("Go back to the dashboard and lose your changes?"),
        "{screen}"
    );
    app.on_key(key(KeyCode::Enter));
    assert!(app.screen.setup().is_some_and(|s| s.config.changed()));
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Char('y')));
    assert!(matches!(app.screen, stage2_tui::app::Screen::Dashboard));
    // Esc while a field is being edited only leaves the field.
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Down));
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::Esc));
    assert!(app.screen.setup().is_some());
}

#[test]
fn w_in_the_lose_edits_question_saves_and_nothing_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    edit_the_first_field(&mut app);
    app.on_key(key(KeyCode::Char('q')));
    let screen = render(&app, dir.path());
    assert!(
        screen.contains("w saves them instead (nothing starts, nothing is lost)"),
        "{screen}"
    );
    let mut effects = app.on_key(key(KeyCode::Char('w')));
    assert!(app.overlay.is_none(), "w answered the question");
    effects.extend(app.settle());
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Start(_) | Effect::Quit)),
        "{effects:?}"
    );
    assert!(!app.screen.setup().unwrap().config.changed(), "saved");
}

#[test]
fn saving_over_a_change_on_disk_shows_it_and_needs_y_and_never_starts_after_w() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    edit_the_first_field(&mut app);
    // Someone else changes config.json meanwhile.
    let on_disk =
        fixture("valid.json").replacen("\"satellitefqdn\": \"", "\"satellitefqdn\": \"other-", 1);
    std::fs::write(dir.path().join("config.json"), &on_disk).unwrap();
    let mut effects = app.on_key(key(KeyCode::Char('w')));
    effects.extend(app.settle());
    let msg = app
        .screen
        .setup()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(msg.contains("changed on disk since it was loaded"), "{msg}");
    // O shows what would be dropped and asks; Enter is no.
    assert_eq!(app.on_key(key(KeyCode::Char('O'))), vec![]);
    let screen = render(&app, dir.path());
    assert!(
        screen.contains("Save yours over the change on disk (nothing starts)?"),
        "{screen}"
    );
    assert!(screen.contains("- \"satellitefqdn\": \"other-"), "{screen}");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("config.json")).unwrap(),
        on_disk
    );
    // y saves over it, and starts nothing (the save was a w).
    app.on_key(key(KeyCode::Char('O')));
    let mut effects = app.on_key(key(KeyCode::Char('y')));
    effects.extend(app.settle());
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Start(_))),
        "{effects:?}"
    );
    let now = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    assert_ne!(now, on_disk);
    assert!(!now.contains("other-"), "{now}");
}

#[test]
fn the_raw_editor_has_a_way_out_with_text_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::F(2)));
    assert!(app.screen.setup().unwrap().form.raw.is_some());
    // Break it, undo, redo.
    typ(&mut app, "}}");
    app.on_key(ctrl('z'));
    app.on_key(ctrl('y'));
    // Esc on broken text: asks; any other key keeps editing.
    app.on_key(key(KeyCode::Esc));
    let msg = app
        .screen
        .setup()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(msg.contains("d: discard these raw edits"), "{msg}");
    app.on_key(key(KeyCode::Char('x')));
    assert!(
        app.screen.setup().unwrap().form.raw.is_some(),
        "still editing"
    );
    // k keeps them aside, unsaved; F2 reopens them.
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Char('k')));
    let s = app.screen.setup().unwrap();
    assert!(s.form.raw.is_none() && s.form.raw_kept.is_some());
    assert!(s.config.parse_error.is_none(), "no stale parse error");
    assert!(
        s.unsaved().iter().any(|l| l.contains("kept aside")),
        "{:?}",
        s.unsaved()
    );
    app.on_key(key(KeyCode::F(2)));
    let text = app
        .screen
        .setup()
        .unwrap()
        .form
        .raw
        .as_ref()
        .unwrap()
        .area
        .lines()
        .join("\n");
    assert!(
        text.contains("}x}") || text.contains("}}"),
        "the kept text is back"
    );
    // d discards them: back to the form as it was, the error gone.
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Char('d')));
    let s = app.screen.setup().unwrap();
    assert!(s.form.raw.is_none() && s.form.raw_kept.is_none());
    assert!(s.config.parse_error.is_none());
    assert!(!s.config.changed());
    assert_eq!(
        s.message.as_deref(),
        Some("raw edits of config.json discarded")
    );
}

#[test]
fn slash_filters_the_config_form() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    app.on_key(key(KeyCode::Tab));
    app.on_key(key(KeyCode::Char('/')));
    typ(&mut app, "datastore");
    let screen = render(&app, dir.path());
    assert!(screen.contains("/datastore"), "{screen}");
    assert!(
        screen.contains("vsphere_datastore") || screen.contains("datastore"),
        "{screen}"
    );
    assert!(!screen.contains("Cluster id"), "{screen}");
    app.on_key(key(KeyCode::Enter));
    let s = app.screen.setup().unwrap();
    assert!(s.form.listed_rows().contains(&s.form.selected));
    // Esc drops the filter first (it does not leave the setup flow).
    app.on_key(key(KeyCode::Esc));
    let s = app.screen.setup().unwrap();
    assert!(s.form.filter.is_none());
    assert_eq!(s.form.listed_rows().len(), s.form.rows.len());
    assert!(app.screen.setup().is_some(), "still in the setup flow");
}

#[test]
fn moving_the_override_aside_and_back_is_file_work_off_the_update() {
    use stage2_tui::app::setup::{SetupMsg, SetupTask, file_op, stage_candidate};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let o = dir.path().join("openshift-install");
    std::fs::write(&o, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&o, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (mut app, _) = app_on(dir.path(), &fixture("valid.json"));
    let s = app.screen.setup_mut().unwrap();
    assert!(s.installer.override_present);
    let Some(SetupTask::File(op)) = s.use_embedded() else {
        panic!("moving it aside is a task")
    };
    assert!(o.exists(), "nothing moved in the update");
    let done = file_op(&s.dc.clone(), op);
    assert!(!done.override_present && done.override_aside);
    let effects = app.on_setup_msg(SetupMsg::File(done));
    assert_eq!(effects, vec![Effect::Setup(SetupTask::Versions)]);
    let s = app.screen.setup_mut().unwrap();
    assert!(!o.exists() && !s.installer.override_present && s.installer.override_aside);
    assert!(
        s.message
            .as_deref()
            .unwrap_or_default()
            .contains("moved aside"),
        "{:?}",
        s.message
    );
    let Some(SetupTask::File(op)) = s.use_override() else {
        panic!("bringing it back is a task")
    };
    let done = file_op(&s.dc.clone(), op);
    app.on_setup_msg(SetupMsg::File(done));
    let s = app.screen.setup().unwrap();
    assert!(o.exists() && s.installer.override_present && !s.installer.override_aside);
    // A file to copy in that is not executable is refused by the background copy, which says
    // why (it never got to run).
    let plain = dir.path().join("plain");
    std::fs::write(&plain, "x").unwrap();
    let e = stage_candidate(&plain, &dir.path().join("state/cand")).unwrap_err();
    assert!(e.to_string().contains("is not an executable file"), "{e}");
    let s = app.screen.setup_mut().unwrap();
    s.copy_override(plain.to_str().unwrap());
    let effects = app.on_setup_msg(SetupMsg::Candidate(Err(e)));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Setup(SetupTask::File(_))]
    ));
    let msg = app
        .screen
        .setup()
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    assert!(
        msg.starts_with("not copied:") && msg.contains("not an executable file"),
        "{msg}"
    );
}
