//! The terminal: raw mode and the alternate screen, restored on every way out (normal exit,
//! error, panic). Ctrl-C arrives as a key in raw mode; SIGINT/SIGTERM from outside become
//! events through `watch`'s signal flag.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

pub type Tty = Terminal<CrosstermBackend<Stdout>>;

/// Owns the terminal while the dashboard runs; dropping it restores the screen.
pub struct Guard {
    pub terminal: Tty,
}

impl Guard {
    pub fn enter() -> io::Result<Guard> {
        install_panic_hook();
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, Hide) {
            restore();
            return Err(e);
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore())?;
        Ok(Guard { terminal })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Whether the screen is ours: leaving the alternate screen twice would move the cursor
/// back over whatever was printed in between (a panic message).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Put the terminal back as the shell left it. Only the first call after `enter` acts.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, Show);
}

/// A panic on the UI thread restores the terminal before the message is printed, so the
/// message is readable and the shell usable. Panics elsewhere (the sampler) are caught by
/// their thread and shown in the dashboard instead.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("main") {
                restore();
                previous(info);
            }
        }));
    });
}
