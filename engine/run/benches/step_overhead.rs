//! Engine overhead per step: workflows of no-op steps (`builtin/pass`), as a chain (each step waits for the
//! previous) and as a fan-out, recorded in SQLite and in PostgreSQL. Throughput is in steps per second, so
//! the per-step overhead is its inverse. The PostgreSQL group needs the server of `VOXFLOW_TEST_POSTGRES_URL`
//! (skipped with a message when unreachable).
//!
//! Run: `cargo bench -p voxflow-run --bench step_overhead`

use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tokio_util::sync::CancellationToken;
use voxflow_artifact::ArtifactStore;
use voxflow_run::{Executor, Plan, RunRequest};
use voxflow_steps::StepRegistry;
use voxflow_store::{RunStatus, Store};
use voxflow_testkit::TestDatabase;

const STEPS: usize = 50;

fn chain_workflow(n: usize) -> String {
    let mut y = String::from("apiVersion: voxflow/v1\nname: chain\nsteps:\n  - id: s0\n    uses: builtin/pass\n    with: { value: 0 }\n");
    for i in 1..n {
        y.push_str(&format!(
            "  - id: s{i}\n    uses: builtin/pass\n    with: {{ value: \"${{{{ steps.s{}.outputs.value }}}}\" }}\n",
            i - 1
        ));
    }
    y
}

fn fanout_workflow() -> String {
    "apiVersion: voxflow/v1\nname: fanout\ninputs:\n  dir: { type: path }\nsteps:\n  - id: each\n    foreach: \"${{ inputs.dir.files }}\"\n    uses: builtin/pass\n    with: { value: \"${{ item }}\" }\n".to_string()
}

/// A workflow input as NAME and path.
type Input<'a> = (&'a str, &'a Path);

fn plan(yaml: &str, inputs: &[(&str, &Path)], registry: &StepRegistry) -> Plan {
    let wf = voxflow_spec::check_workflow(Path::new("bench.yaml"), yaml, registry)
        .expect("valid bench workflow");
    let request = RunRequest {
        inputs: inputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.display().to_string()))
            .collect(),
        params: Default::default(),
    };
    Plan::new(Arc::new(wf), registry, &request).expect("plan")
}

fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    label: &str,
    store: Arc<Store>,
    data: &Path,
) {
    let registry = StepRegistry::with_builtins();
    let artifacts = ArtifactStore::open(data).unwrap();
    let files = data.join("items");
    std::fs::create_dir_all(&files).unwrap();
    for i in 0..STEPS {
        std::fs::write(files.join(format!("{i:03}")), b"").unwrap();
    }
    let executor = Executor::new(store, artifacts).with_jobs(2);
    let chain = chain_workflow(STEPS);
    let fanout = fanout_workflow();
    let mut group = c.benchmark_group(format!("engine_overhead/{label}"));
    group.throughput(Throughput::Elements(STEPS as u64));
    group.sample_size(20);
    let dir_input = [("dir", files.as_path())];
    let cases: [(&str, &str, &[Input]); 2] = [
        ("chain_of_50_noop_steps", &chain, &[]),
        ("fanout_of_50_noop_steps", &fanout, &dir_input),
    ];
    for (name, yaml, inputs) in cases {
        group.bench_function(name, |b| {
            b.iter_batched(
                || plan(yaml, inputs, &registry),
                |p| {
                    let out = rt
                        .block_on(executor.execute(p, CancellationToken::new()))
                        .unwrap();
                    assert_eq!(out.status, RunStatus::Succeeded);
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = rt
        .block_on(Store::open_sqlite(&dir.path().join("bench.db")))
        .unwrap();
    bench_backend(
        c,
        &rt,
        "sqlite",
        Arc::new(sqlite),
        &dir.path().join("sqlite"),
    );

    let pg = rt.block_on(async {
        let db = tokio::time::timeout(std::time::Duration::from_secs(10), TestDatabase::create())
            .await
            .ok()?;
        let store = Store::connect(&db.url).await.ok()?;
        Some((db, store))
    });
    match pg {
        Some((db, store)) => {
            bench_backend(
                c,
                &rt,
                "postgres",
                Arc::new(store),
                &dir.path().join("postgres"),
            );
            rt.block_on(db.drop_now());
        }
        None => eprintln!("SKIPPED: PostgreSQL benchmark (no server at VOXFLOW_TEST_POSTGRES_URL)"),
    }
}

criterion_group!(benches, overhead);
criterion_main!(benches);
