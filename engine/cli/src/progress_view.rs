//! How run progress is shown: indicatif bars on a terminal, one plain line per event otherwise (logs, CI).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use voxflow_run::{Progress, ProgressEvent};
use voxflow_store::StepStatus;

fn item(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" [item {key}]")
    }
}

fn ms(d: Duration) -> String {
    if d.as_secs() >= 10 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The line for an event, or None for events not worth a line.
fn describe(event: &ProgressEvent) -> Option<String> {
    Some(match event {
        ProgressEvent::RunStarted { run_id, steps } => {
            format!("run {run_id} started ({steps} steps)")
        }
        ProgressEvent::FanOut { step, items } => format!("{step}: fan-out over {items} items"),
        ProgressEvent::AttemptStarted { step, key, attempt } => {
            format!("{step}{}: attempt {attempt} started", item(key))
        }
        ProgressEvent::StepFinished {
            step,
            key,
            attempt,
            status,
            cache_hit,
            duration,
            error,
        } => {
            let what = if *cache_hit {
                "reused from cache".to_string()
            } else {
                format!("{status} in {}", ms(*duration))
            };
            let err = error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!("{step}{}: attempt {attempt} {what}{err}", item(key))
        }
        ProgressEvent::RetryScheduled {
            step,
            key,
            next_attempt,
            delay,
        } => format!(
            "{step}{}: retrying (attempt {next_attempt}) in {}",
            item(key),
            ms(*delay)
        ),
        ProgressEvent::RunFinished { run_id, status } => format!("run {run_id} {status}"),
    })
}

/// One line per event on stderr.
pub struct PlainLines;

impl Progress for PlainLines {
    fn event(&self, event: &ProgressEvent) {
        if let Some(line) = describe(event) {
            let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            eprintln!("[{now}] {line}");
        }
    }
}

/// A live bar with counts; failures and retries are printed above it.
pub struct TerminalBars {
    bar: ProgressBar,
    done: AtomicU64,
    failed: AtomicU64,
    cached: AtomicU64,
}

impl TerminalBars {
    pub fn new() -> Self {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        TerminalBars {
            bar,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cached: AtomicU64::new(0),
        }
    }

    fn refresh(&self, current: &str) {
        self.bar.set_message(format!(
            "{} steps done ({} from cache), {} failed attempts | {current}",
            self.done.load(Ordering::Relaxed),
            self.cached.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        ));
    }
}

impl Progress for TerminalBars {
    fn event(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::StepFinished {
                status, cache_hit, ..
            } => {
                if *status == StepStatus::Succeeded {
                    self.done.fetch_add(1, Ordering::Relaxed);
                    if *cache_hit {
                        self.cached.fetch_add(1, Ordering::Relaxed);
                    }
                } else {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    if let Some(line) = describe(event) {
                        self.bar.println(line);
                    }
                }
            }
            ProgressEvent::RetryScheduled { .. }
            | ProgressEvent::RunStarted { .. }
            | ProgressEvent::FanOut { .. } => {
                if let Some(line) = describe(event) {
                    self.bar.println(line);
                }
            }
            ProgressEvent::RunFinished { .. } => {
                self.bar.finish_and_clear();
                return;
            }
            ProgressEvent::AttemptStarted { .. } => {}
        }
        if let Some(line) = describe(event) {
            self.refresh(&line);
        }
    }
}
