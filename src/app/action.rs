//! User intents: the names used by the key map file, the help overlay and the buttons.

use serde::{Deserialize, Serialize};

/// Everything a key or a click can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Leave (asks first while a step runs; the stages keep running).
    Quit,
    /// Show every key of this screen.
    Help,
    /// Select the previous step / scroll up a line.
    Up,
    /// Select the next step / scroll down a line.
    Down,
    /// Scroll up a page.
    PageUp,
    /// Scroll down a page.
    PageDown,
    /// Scroll up half a page.
    HalfPageUp,
    /// Scroll down half a page.
    HalfPageDown,
    /// Go to the first line / step.
    Top,
    /// Go to the last line / step (and follow).
    Bottom,
    /// Open the full log of the selected step.
    OpenLog,
    /// Back to the dashboard.
    Back,
    /// Run the selected failed step again, and everything after it.
    Retry,
    /// Skip the selected step and go on.
    Skip,
    /// Stop the running step (kills its container).
    Stop,
    /// Run again from the selected step.
    ResumeFrom,
    /// Keep the ign-webserver up 5 more minutes.
    ExtendWindow,
    /// Stop the ign-webserver now.
    EndWindow,
    /// Mouse capture on/off (off lets the terminal select text).
    ToggleMouse,
    /// Next colour theme.
    CycleTheme,
    /// Search the log.
    Search,
    /// Next search match.
    NextMatch,
    /// Previous search match.
    PrevMatch,
    /// Wrap long lines on/off.
    ToggleWrap,
    /// Show timestamps on/off.
    ToggleTimestamps,
    /// Line numbers on/off.
    LineNumbers,
    /// Focus the next log pane (and scroll it in place with the movement keys).
    FocusPane,
    /// A shell in the selected step's running container (the TUI steps aside until it exits).
    Shell,
    /// The selected step's container as the engine describes it (JSON, in `$PAGER`).
    Inspect,
    /// A failed step: a shell in its image with the same mounts, to look around.
    DebugShell,
    /// The selected step's log in `$PAGER`.
    Pager,
    /// Jump to the first error line.
    FirstError,
    /// Save the log to a file.
    SaveLog,
    /// Copy the visible lines to the clipboard (OSC 52, works over SSH).
    CopyLog,
    /// Follow new lines.
    Follow,
    /// Next setup step.
    NextStep,
    /// Previous setup step.
    PrevStep,
    /// Edit the selected field / choose the selected tag.
    Edit,
    /// Add a node to the selected node group.
    AddRow,
    /// Remove the selected node.
    DeleteRow,
    /// Open the raw JSON editor.
    RawEditor,
    /// Show or mask the selected secret.
    Reveal,
    /// Jump to the next field with a problem.
    NextProblem,
    /// Run the pre-flight checks again.
    Recheck,
    /// Use the installer embedded in the 4.run-installer image.
    UseEmbedded,
    /// Use the override in the deployconfig folder.
    UseOverride,
    /// Pull a tag.
    PullTag,
    /// Save the changes and start stage 2.
    StartRun,
    /// Save mine over a file that changed on disk.
    Overwrite,
    /// Reload the files from disk.
    Reload,
    /// Yes.
    Confirm,
    /// No / close.
    Cancel,
    /// Log view: the previous attempt of the step.
    PrevAttempt,
    /// Log view: the next attempt of the step.
    NextAttempt,
    /// Every message so far, with its time.
    Messages,
    /// Setup: save the changed files without starting.
    SaveOnly,
    /// Setup: undo the last change to the form.
    Undo,
    /// Setup: apply the safe fix a pre-flight problem offers.
    Fix,
    /// Setup: the raw editor of secrets.json.
    RawSecrets,
    /// Dashboard: write a support bundle (tar.gz, secrets masked).
    Bundle,
    /// Setup: pull without checking the registry's certificate (`--tls-verify=false`).
    NoTlsVerify,
    /// Dashboard: open the setup flow.
    Setup,
}

impl Action {
    /// A short label for footers and buttons.
    pub fn label(self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::Help => "help",
            Action::Up => "up",
            Action::Down => "down",
            Action::PageUp => "page up",
            Action::PageDown => "page down",
            Action::HalfPageUp => "half page up",
            Action::HalfPageDown => "half page down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::OpenLog => "open log",
            Action::Back => "back",
            Action::Retry => "retry",
            Action::Skip => "skip",
            Action::Stop => "stop",
            Action::ResumeFrom => "resume from here",
            Action::ExtendWindow => "+5 min",
            Action::EndWindow => "end window",
            Action::ToggleMouse => "mouse on/off",
            Action::CycleTheme => "theme",
            Action::Search => "search",
            Action::NextMatch => "next match",
            Action::PrevMatch => "prev match",
            Action::ToggleWrap => "wrap",
            Action::LineNumbers => "line numbers",
            Action::FocusPane => "focus a pane (scroll it)",
            Action::Shell => "shell in container",
            Action::Inspect => "inspect container",
            Action::DebugShell => "debug shell (failed step)",
            Action::Pager => "log in $PAGER",
            Action::ToggleTimestamps => "timestamps",
            Action::FirstError => "first error",
            Action::SaveLog => "save",
            Action::CopyLog => "copy",
            Action::Follow => "follow",
            Action::NextStep => "next step",
            Action::PrevStep => "previous step",
            Action::Edit => "edit / choose",
            Action::AddRow => "add node",
            Action::DeleteRow => "remove node",
            Action::RawEditor => "raw JSON",
            Action::Reveal => "reveal secret",
            Action::NextProblem => "next problem",
            Action::Recheck => "check again",
            Action::UseEmbedded => "use embedded",
            Action::UseOverride => "use override",
            Action::PullTag => "pull a tag",
            Action::StartRun => "save and start",
            Action::Overwrite => "overwrite",
            Action::Reload => "reload",
            Action::Confirm => "yes",
            Action::Cancel => "no",
            Action::PrevAttempt => "previous attempt",
            Action::NextAttempt => "next attempt",
            Action::Messages => "messages",
            Action::SaveOnly => "save (no start)",
            Action::Undo => "undo",
            Action::Fix => "apply the fix",
            Action::RawSecrets => "raw secrets.json",
            Action::Setup => "setup",
            Action::Bundle => "support bundle",
            Action::NoTlsVerify => "pull without TLS verification",
        }
    }
}
