//! Stopping a step's ONNX Runtime runs when the step is cancelled or times out: a watcher beside the step
//! terminates the run in flight through ONNX Runtime's run options (so a long run on a large volume does
//! not go on holding cores after its attempt was given up, and a retry does not compete with it), later
//! runs are refused, and a run still waiting for cores gives up its turn.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::Duration;

use ort::session::RunOptions;

/// How often the watcher asks whether the step was told to stop, and a waiting run whether it was stopped:
/// the resolution of cancellation, as the WASM host's epoch is.
pub const POLL: Duration = Duration::from_millis(10);

/// The run options every run of one step call shares, and whether the call was told to stop.
pub struct RunStop {
    options: RunOptions,
    stopped: AtomicBool,
}

impl RunStop {
    /// Run options need the library loaded (a session opened) first; before that this is an error.
    pub fn new() -> Result<RunStop, String> {
        if crate::runtime::loaded_library().is_none() {
            return Err("ONNX Runtime is not loaded yet: open a session first".into());
        }
        let options = RunOptions::new()
            .map_err(|e| format!("cannot create ONNX Runtime run options: {e}"))?;
        Ok(RunStop {
            options,
            stopped: AtomicBool::new(false),
        })
    }

    /// Terminates the runs in flight under these options and refuses every later one.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Should the flag not be set, the run ends on its own and the next one is refused by `stopped`.
        let _ = self.options.terminate();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    pub(crate) fn options(&self) -> &RunOptions {
        &self.options
    }
}

/// Runs `work` with a fresh [`RunStop`] while a watcher thread stops it as soon as `stopping()` says so (it
/// asks every [`POLL`]); the watcher ends with `work`.
pub fn watched<R>(
    stopping: &(dyn Fn() -> bool + Sync),
    work: impl FnOnce(&RunStop) -> R,
) -> Result<R, String> {
    let stop = RunStop::new()?;
    let (finished, done) = channel::<()>();
    let outcome = std::thread::scope(|scope| {
        let stop = &stop;
        scope.spawn(move || loop {
            match done.recv_timeout(POLL) {
                Err(RecvTimeoutError::Timeout) => {
                    if stopping() {
                        stop.stop();
                        return;
                    }
                }
                // `work` returned (its sender dropped): nothing left to stop.
                _ => return,
            }
        });
        let outcome = work(stop);
        drop(finished);
        outcome
    });
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeConfig;
    use crate::tiling::Tensor;

    /// Waits until `done()`, failing the test after a minute (a broken watcher would otherwise hang it).
    fn wait_until(done: impl Fn() -> bool, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(POLL);
        }
    }

    /// Whether ONNX Runtime's library could be loaded; else the test says it skips.
    fn runtime_loaded() -> bool {
        match crate::runtime::environment(None) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("SKIPPED: {e}");
                false
            }
        }
    }

    /// The shipped prostate network in a session of its own (1 thread), its input and output names, and
    /// one input tile.
    fn prostate_network() -> (crate::session::ModelSession, String, String, Tensor) {
        let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/prostate-seg/prostate_seg.onnx");
        let config = RuntimeConfig {
            intra_threads: 1,
            ..RuntimeConfig::default()
        };
        let session = crate::session::open(&model, None, &config).unwrap();
        let input = session.info.inputs[0].name.clone();
        let output = session.info.outputs[0].name.clone();
        let tensor = Tensor {
            shape: vec![1, 3, 128, 128],
            data: vec![0.5; 3 * 128 * 128],
        };
        (session, input, output, tensor)
    }

    #[test]
    fn the_watcher_stops_the_runs_once_the_step_is_told_to() {
        if !runtime_loaded() {
            return;
        }
        let told = AtomicBool::new(false);
        let seen = watched(&|| told.load(Ordering::SeqCst), |stop| {
            assert!(!stop.is_stopped());
            told.store(true, Ordering::SeqCst);
            wait_until(|| stop.is_stopped(), "the watcher never stopped the runs");
        });
        assert!(seen.is_ok());
    }

    #[test]
    fn the_watcher_asks_and_leaves_a_step_that_is_not_told_to_stop() {
        if !runtime_loaded() {
            return;
        }
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let stopped = watched(
            &|| {
                asked.fetch_add(1, Ordering::SeqCst);
                false
            },
            |stop| {
                wait_until(
                    || asked.load(Ordering::SeqCst) >= 3,
                    "the watcher never asked",
                );
                stop.is_stopped()
            },
        );
        assert_eq!(stopped, Ok(false));
    }

    #[test]
    fn a_stopped_run_is_terminated_and_says_so() {
        if !runtime_loaded() {
            return;
        }
        let (session, input, output, tensor) = prostate_network();
        let run =
            |stop: &RunStop| session.run(&input, &tensor, std::slice::from_ref(&output), stop);
        let stop = RunStop::new().unwrap();
        assert_eq!(run(&stop).unwrap()[0].shape, vec![1, 2, 128, 128]);
        // ONNX Runtime's own flag, as the watcher sets it during a run: the run ends with its message.
        stop.options().terminate().unwrap();
        let terminated = run(&stop).unwrap_err();
        assert!(terminated.contains("terminate"), "{terminated}");
        // Stopped: refused before it runs, and named so.
        let stop = RunStop::new().unwrap();
        stop.stop();
        let refused = run(&stop).unwrap_err();
        assert!(refused.contains("stopped"), "{refused}");
    }

    #[test]
    fn a_stopped_run_waiting_for_its_session_leaves_the_queue() {
        if !runtime_loaded() {
            return;
        }
        let (session, input, output, tensor) = prostate_network();
        let stop = RunStop::new().unwrap();
        std::thread::scope(|scope| {
            // Another run of the same session holds the turn (as a fan-out sibling's would); held inside
            // the scope, so that a failing assertion hands it back and the waiting thread can end.
            let sibling = session.turn.acquire(1, &|| false).unwrap();
            let waiting =
                scope.spawn(|| session.run(&input, &tensor, std::slice::from_ref(&output), &stop));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiting.is_finished(), "it ran although the turn was taken");
            stop.stop();
            wait_until(
                || waiting.is_finished(),
                "the stopped run still waits for the session",
            );
            let left = waiting.join().unwrap().unwrap_err();
            assert!(left.contains("waiting for its turn"), "{left}");
            drop(sibling);
        });
        // The turn passed on: the next run goes through.
        let ran = session.run(
            &input,
            &tensor,
            std::slice::from_ref(&output),
            &RunStop::new().unwrap(),
        );
        assert_eq!(ran.unwrap()[0].shape, vec![1, 2, 128, 128]);
    }
}
