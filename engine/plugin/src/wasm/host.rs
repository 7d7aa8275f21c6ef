//! The wasmtime side: one engine per process (component model, epoch interruption driven by a 10 ms
//! ticker; a second, fuel-metered engine for plugins that declare an instruction budget), components compiled once and cached on disk, and a fresh store per call that grants nothing
//! (no files, no network, no environment) and caps memory and wall-clock time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings;
use crate::PluginError;

/// How often the epoch advances: the resolution of timeouts and cancellation.
const TICK: Duration = Duration::from_millis(10);
/// The guest's stderr kept for error messages (a panic message, say); more is dropped.
const STDERR_CAPACITY: usize = 64 * 1024;
/// Plugin calls that may run at once in this process (the pool's size).
const MAX_CONCURRENT_CALLS: u32 = 64;
/// Log lines a guest may send per call.
const MAX_LOG_LINES: usize = 1000;

/// What one call's store holds: WASI with nothing granted, the limits, and what the guest reported.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub log: Vec<String>,
    pub progress: Option<(u64, u64)>,
    deadline: Instant,
    cancel: tokio_util::sync::CancellationToken,
    pub why_stopped: Option<Stopped>,
}

/// Why the host interrupted a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    Timeout,
    Cancelled,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::voxflow::plugin::types::Host for CallState {}

impl bindings::voxflow::plugin::host::Host for CallState {
    fn log(&mut self, level: bindings::voxflow::plugin::host::Level, message: String) {
        use bindings::voxflow::plugin::host::Level;
        if self.log.len() < MAX_LOG_LINES {
            let level = match level {
                Level::Debug => "debug",
                Level::Info => "info",
                Level::Warn => "warning",
                Level::Error => "error",
            };
            let mut message = message;
            message.truncate(4096);
            self.log.push(format!("{level}: {message}"));
        }
    }

    fn progress(&mut self, done: u64, total: u64) {
        self.progress = Some((done, total));
    }

    fn cancelled(&mut self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// One wasmtime engine and the linker plugins are instantiated with.
struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
}

impl Runtime {
    fn new(metered: bool) -> Result<Runtime, PluginError> {
        let host_err = |e: wasmtime::Error| PluginError::Host(format!("{e:#}"));
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // Fuel costs every instruction, so only plugins that ask for a budget run on the metered engine.
        config.consume_fuel(metered);
        // Linear memories come from a pool and stay resident between calls (up to 64 MiB each): a fresh
        // mapping per call pays page faults on every volume copied in (measured 6-12 ms per 10 MB).
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(MAX_CONCURRENT_CALLS)
            .total_core_instances(MAX_CONCURRENT_CALLS * 8)
            .total_memories(MAX_CONCURRENT_CALLS * 2)
            .total_tables(MAX_CONCURRENT_CALLS * 8)
            .max_memory_size(4 << 30)
            .linear_memory_keep_resident(64 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(host_err)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(host_err)?;
        bindings::Step::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(host_err)?;
        Ok(Runtime { engine, linker })
    }
}

/// The process-wide WebAssembly host: a plain engine, a fuel-metered one for plugins with an instruction
/// budget, the epoch ticker that drives both, and the compiled-component cache.
pub struct WasmHost {
    plain: Runtime,
    metered: Runtime,
    cache_dir: Option<PathBuf>,
}

impl WasmHost {
    /// The shared host; `cache_dir` (compiled components) is taken from the first caller.
    pub fn shared(cache_dir: Option<&Path>) -> Result<Arc<WasmHost>, PluginError> {
        static HOST: OnceLock<Mutex<Option<Arc<WasmHost>>>> = OnceLock::new();
        let cell = HOST.get_or_init(|| Mutex::new(None));
        let mut guard = cell
            .lock()
            .map_err(|_| PluginError::Host("host lock poisoned".into()))?;
        if let Some(host) = guard.as_ref() {
            return Ok(host.clone());
        }
        let host = Arc::new(WasmHost::new(cache_dir.map(Path::to_path_buf))?);
        *guard = Some(host.clone());
        Ok(host)
    }

    fn new(cache_dir: Option<PathBuf>) -> Result<WasmHost, PluginError> {
        let (plain, metered) = (Runtime::new(false)?, Runtime::new(true)?);
        let tickers = [plain.engine.weak(), metered.engine.weak()];
        std::thread::Builder::new()
            .name("voxflow-wasm-epoch".into())
            .spawn(move || loop {
                let mut alive = false;
                for weak in &tickers {
                    if let Some(engine) = weak.upgrade() {
                        engine.increment_epoch();
                        alive = true;
                    }
                }
                if !alive {
                    break;
                }
                std::thread::sleep(TICK);
            })
            .map_err(|e| PluginError::Host(format!("cannot start the epoch ticker: {e}")))?;
        Ok(WasmHost {
            plain,
            metered,
            cache_dir,
        })
    }

    fn runtime(&self, metered: bool) -> &Runtime {
        if metered {
            &self.metered
        } else {
            &self.plain
        }
    }

    /// Compiles a component (or loads the compilation this engine made of the same bytes before) and
    /// prepares it for instantiation.
    pub(crate) fn prepare(
        &self,
        wasm: &[u8],
        sha256: &str,
        path: &Path,
        metered: bool,
    ) -> Result<bindings::StepPre<CallState>, PluginError> {
        let runtime = self.runtime(metered);
        let bad = |what: &str, e: wasmtime::Error| PluginError::Component {
            path: path.to_path_buf(),
            message: format!("{what}: {e:#}"),
        };
        let component = self
            .compile_cached(&runtime.engine, wasm, sha256)
            .map_err(|e| bad("cannot compile", e))?;
        let pre = runtime
            .linker
            .instantiate_pre(&component)
            .map_err(|e| bad("does not fit the voxflow:plugin contract", e))?;
        bindings::StepPre::new(pre)
            .map_err(|e| bad("does not export the voxflow:plugin/step world", e))
    }

    fn compile_cached(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &str,
    ) -> wasmtime::Result<Component> {
        let Some(dir) = &self.cache_dir else {
            return Component::new(engine, wasm);
        };
        let mut key = Sha256::new();
        key.update(sha256.as_bytes());
        std::hash::Hash::hash(
            &engine.precompile_compatibility_hash(),
            &mut HashToSha(&mut key),
        );
        let file = dir.join(format!("{}.cwasm", hex::encode(key.finalize())));
        if file.is_file() {
            // SAFETY: files in this folder are only ever written below, by this engine configuration's
            // `precompile_component`, under a key that includes the compatibility hash.
            if let Ok(c) = unsafe { Component::deserialize_file(engine, &file) } {
                return Ok(c);
            }
        }
        let compiled = engine.precompile_component(wasm)?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.partial-{}", sha256, std::process::id()));
        std::fs::write(&tmp, &compiled)?;
        std::fs::rename(&tmp, &file)?;
        // SAFETY: as above; the bytes were produced by this engine a moment ago.
        unsafe { Component::deserialize(engine, &compiled) }
    }

    /// A store for one call: nothing granted, memory capped, a deadline, and the step's cancellation.
    pub(crate) fn store(
        &self,
        cancel: tokio_util::sync::CancellationToken,
        memory_bytes: usize,
        timeout: Duration,
        read_only: &[(PathBuf, String)],
        fuel: Option<u64>,
    ) -> Result<(Store<CallState>, MemoryOutputPipe), String> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let mut builder = WasiCtx::builder();
        builder.stderr(stderr.clone());
        for (host, guest) in read_only {
            builder
                .preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadOnly)
                .map_err(|e| format!("cannot grant {} read-only: {e:#}", host.display()))?;
        }
        let wasi = builder.build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .instances(16)
            .tables(64)
            .memories(16)
            .build();
        let state = CallState {
            wasi,
            table: ResourceTable::new(),
            limits,
            log: Vec::new(),
            progress: None,
            deadline: Instant::now() + timeout,
            cancel,
            why_stopped: None,
        };
        let mut store = Store::new(&self.runtime(fuel.is_some()).engine, state);
        if let Some(fuel) = fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| format!("cannot set the fuel budget: {e:#}"))?;
        }
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let state = ctx.data_mut();
            let stopped = if state.cancel.is_cancelled() {
                Some(Stopped::Cancelled)
            } else if Instant::now() >= state.deadline {
                Some(Stopped::Timeout)
            } else {
                None
            };
            match stopped {
                None => Ok(UpdateDeadline::Continue(1)),
                Some(why) => {
                    state.why_stopped = Some(why);
                    Err(wasmtime::Trap::Interrupt.into())
                }
            }
        });
        Ok((store, stderr))
    }
}

/// Feeds `std::hash::Hash` output into a sha256.
struct HashToSha<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashToSha<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
