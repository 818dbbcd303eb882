//! The README's screenshots, rendered by the real drawing code into SVG.
//! Regenerate with: `UPDATE_SCREENSHOTS=1 cargo test --test screenshots`.
//! Without it, the test fails when a screenshot no longer matches the code.

use ratatui::{Terminal, backend::TestBackend};
use stage2_tui::app::App;
use stage2_tui::ui::{self, Hits, scenes, svg};

fn shot(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut hits = Hits::new();
    t.draw(|f| ui::draw(f, app, &mut hits)).unwrap();
    let (bg, fg) = if app.theme().name == "light" {
        ("#ffffff", "#1c1c1c")
    } else {
        ("#121212", "#d0d0d0")
    };
    svg::render(t.backend().buffer(), bg, fg)
}

#[test]
fn screenshots_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut help = scenes::running(d);
    help.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('?'),
        crossterm::event::KeyModifiers::NONE,
    ));
    let mut confirm = scenes::failed(d);
    confirm.selected = confirm.pipeline.index_of("4.run-installer").unwrap();
    confirm.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('f'),
        crossterm::event::KeyModifiers::NONE,
    ));
    // The question comes when the job that reads the deployconfig's files answers.
    confirm.settle();
    let mut light = scenes::running(d);
    light.theme = light.themes.iter().position(|t| t.name == "light").unwrap();
    let cfg = |n: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/config")
                .join(n),
        )
        .unwrap()
    };
    let key = |c| crossterm::event::KeyEvent::new(c, crossterm::event::KeyModifiers::NONE);
    let setup_dir = tempfile::tempdir().unwrap();
    let sd = setup_dir.path();
    let (mut pre, _) = scenes::setup(sd, &cfg("ip-outside-network.json"));
    pre.on_setup_msg(stage2_tui::app::setup::SetupMsg::Checks(
        scenes::setup_checks(),
    ));
    let pre_shot = shot(&pre, 120, 34);
    pre.on_key(key(crossterm::event::KeyCode::Tab));
    pre.on_key(key(crossterm::event::KeyCode::Char('E')));
    let form_shot = shot(&pre, 120, 34);
    let raw_dir = tempfile::tempdir().unwrap();
    let (mut raw, _) = scenes::setup(raw_dir.path(), &cfg("missing-comma.json"));
    raw.on_key(key(crossterm::event::KeyCode::Tab));
    let raw_shot = shot(&raw, 120, 34);
    let inst_dir = tempfile::tempdir().unwrap();
    std::fs::write(inst_dir.path().join("openshift-install"), "#!/bin/sh\n").unwrap();
    let (mut inst, _) = scenes::setup(inst_dir.path(), &cfg("valid.json"));
    inst.on_key(key(crossterm::event::KeyCode::Tab));
    inst.on_key(key(crossterm::event::KeyCode::Tab));
    inst.on_setup_msg(scenes::setup_versions());
    let inst_shot = shot(&inst, 120, 34);
    inst.on_key(key(crossterm::event::KeyCode::Tab));
    inst.on_setup_msg(scenes::setup_tags());
    let tags_shot = shot(&inst, 120, 34);
    inst.on_key(key(crossterm::event::KeyCode::Down));
    inst.on_key(key(crossterm::event::KeyCode::Enter));
    inst.on_key(key(crossterm::event::KeyCode::Tab));
    let review_shot = shot(&inst, 120, 34);
    let shots = [
        ("setup-preflight", pre_shot),
        ("setup-form", form_shot),
        ("setup-raw-error", raw_shot),
        ("setup-installer", inst_shot),
        ("setup-tags", tags_shot),
        ("setup-review", review_shot),
        ("dashboard-running", shot(&scenes::running(d), 120, 34)),
        ("dashboard-failed", shot(&scenes::failed(d), 120, 34)),
        ("confirm-rerun", shot(&confirm, 120, 34)),
        ("log-search", shot(&scenes::log_search(d, 34), 120, 34)),
        ("help", shot(&help, 120, 34)),
        ("dashboard-light", shot(&light, 120, 34)),
        ("dashboard-completed", shot(&scenes::completed(d), 120, 34)),
        ("dashboard-cluster", shot(&scenes::cluster(d), 120, 34)),
        ("dashboard-serving", shot(&scenes::serving(d), 120, 34)),
    ];
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("screenshots");
    let update = std::env::var_os("UPDATE_SCREENSHOTS").is_some();
    let mut stale = Vec::new();
    for (name, svg) in shots {
        let path = out.join(format!("{name}.svg"));
        if update {
            std::fs::create_dir_all(&out).unwrap();
            std::fs::write(&path, svg).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(svg.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "screenshots out of date: {stale:?}; run UPDATE_SCREENSHOTS=1 cargo test --test screenshots"
    );
}
