//! `voxflow validate` on the shipped workflows (all valid) and on a corpus of broken ones (each problem
//! reported with the right line and column), plus a no-panic sweep over mangled workflow text.

use std::path::{Path, PathBuf};
use std::process::Command;

use voxflow_steps::StepRegistry;

fn voxflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voxflow"))
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A problem `voxflow validate` must report: line, column, and text the message must contain.
type Expected = (usize, usize, &'static str);

/// Each broken workflow with every problem it must yield.
const EXPECTED: &[(&str, &[Expected])] = &[
    (
        "01-unknown-field.yaml",
        &[(
            7,
            5,
            "unknown field `retyr` in a step; did you mean `retry`?",
        )],
    ),
    (
        "02-missing-steps.yaml",
        &[(1, 1, "missing the required field `steps`")],
    ),
    (
        "03-bad-api-version.yaml",
        &[(1, 13, "unsupported apiVersion `voxflow/v2`")],
    ),
    (
        "04-unknown-plugin.yaml",
        &[(5, 11, "unknown plugin `builtin/ech`")],
    ),
    (
        "05-dangling-step-reference.yaml",
        &[(
            12,
            13,
            "step `lod` that does not exist; did you mean `load`?",
        )],
    ),
    (
        "06-unknown-output.yaml",
        &[(10, 11, "has no output `volume`; its outputs are: file")],
    ),
    (
        "07-cycle.yaml",
        &[(4, 9, "steps form a cycle: a -> c -> b -> a")],
    ),
    (
        "08-self-reference.yaml",
        &[(4, 9, "step `loop` depends on itself")],
    ),
    (
        "09-type-mismatch.yaml",
        &[(10, 7, "expects a file artifact, but it is given a string")],
    ),
    (
        "10-bad-duration.yaml",
        &[(7, 14, "`ten minutes` is not a duration")],
    ),
    (
        "11-unknown-input-type.yaml",
        &[(4, 19, "unknown input type `dicom-seriez`")],
    ),
    (
        "12-undeclared-input.yaml",
        &[(
            8,
            21,
            "input `scna` that the workflow does not declare; did you mean `scan`?",
        )],
    ),
    (
        "13-item-outside-foreach.yaml",
        &[(6, 22, "only defined inside a step with `foreach`")],
    ),
    (
        "14-bad-expression.yaml",
        &[(9, 35, "bad expression in when: expected a value")],
    ),
    (
        "15-duplicate-step-id.yaml",
        &[(7, 9, "step id `hello` is already used at line 4")],
    ),
    (
        "16-wrong-field-type.yaml",
        &[
            (7, 12, "cache must be true or false"),
            (8, 28, "max_attempts must be a whole number of at least 1"),
        ],
    ),
    (
        "17-param-default-out-of-range.yaml",
        &[
            (4, 39, "2 is above the maximum 1"),
            (5, 34, "`fast` is not one of: accurate, balanced"),
        ],
    ),
    ("18-yaml-syntax-error.yaml", &[(6, 38, "YAML syntax error")]),
    (
        "19-needs-unknown-step.yaml",
        &[(
            9,
            13,
            "needs `frist`, which is not a step here; did you mean `first`?",
        )],
    ),
    (
        "20-missing-required-input.yaml",
        &[(4, 5, "missing the input `path`")],
    ),
    (
        "21-foreach-not-a-list.yaml",
        &[(7, 14, "needs a list, but the expression is a string")],
    ),
    (
        "22-inner-step-not-visible.yaml",
        &[(
            14,
            21,
            "is inside group `per_file` and cannot be seen from here",
        )],
    ),
    (
        "23-parameter-under-inputs.yaml",
        &[
            (4, 5, "missing the parameter `message`"),
            (6, 15, "`message` belongs under `with:`"),
        ],
    ),
    (
        "24-every-problem-reported.yaml",
        &[
            (4, 24, "unknown field `optional` in input `scan`"),
            (9, 14, "`5 parsecs` is not a duration"),
            (
                12,
                21,
                "step `load` (builtin/load-file) has no output `text`",
            ),
        ],
    ),
    (
        "25-duplicate-key.yaml",
        &[(7, 1, "duplicate key `name` (first defined at line 2)")],
    ),
    (
        "26-bad-plugin-reference.yaml",
        &[(5, 11, "`echo` is not a plugin reference")],
    ),
    (
        "27-bad-step-id.yaml",
        &[(4, 9, "`load.volume` is not a valid name")],
    ),
    (
        "28-not-a-mapping.yaml",
        &[(1, 1, "the workflow must be a mapping, found a list")],
    ),
];

/// Builds the repository's plugins that are not built yet (`voxflow plugin build`); false when the
/// wasm32-wasip2 target is missing, so they cannot be.
fn build_missing_plugins() -> bool {
    let plugins = repo_root().join("plugins");
    let mut ok = true;
    for entry in std::fs::read_dir(&plugins).unwrap().flatten() {
        let dir = entry.path();
        let Ok(text) = std::fs::read_to_string(dir.join("plugin.yaml")) else {
            continue;
        };
        let Some(component) = text.lines().find_map(|l| l.strip_prefix("component: ")) else {
            continue;
        };
        if dir.join(component.trim()).is_file() {
            continue;
        }
        let built = voxflow()
            .args(["plugin", "build"])
            .arg(&dir)
            .output()
            .unwrap();
        ok &= built.status.success();
    }
    ok
}

#[test]
fn shipped_workflows_are_valid() {
    let dir = repo_root().join("workflows");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(files.len() >= 2, "expected workflows in {}", dir.display());
    if !build_missing_plugins() {
        eprintln!(
            "SKIPPED: workflows using WebAssembly plugins (cannot build them: rustup target add wasm32-wasip2)"
        );
        files.retain(|f| !std::fs::read_to_string(f).unwrap().contains("uses: wasm/"));
    }
    let out = voxflow()
        .current_dir(repo_root())
        .arg("validate")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.ends_with(": ok")).count(),
        files.len()
    );
}

#[test]
fn every_broken_workflow_reports_its_problems_with_positions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid-workflows");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = EXPECTED.iter().map(|(f, _)| *f).collect();
    assert_eq!(
        on_disk, listed,
        "every broken workflow needs its expectations here"
    );
    for (file, expected) in EXPECTED {
        let path = dir.join(file);
        let out = voxflow().arg("validate").arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{file}: {stdout}");
        let diagnostics: Vec<&str> = stdout
            .lines()
            .filter(|l| !l.ends_with("problem") && !l.ends_with("problems"))
            .collect();
        assert_eq!(
            diagnostics.len(),
            expected.len(),
            "{file}: expected {} problems, got:\n{stdout}",
            expected.len()
        );
        for (line, column, text) in *expected {
            let prefix = format!("{}:{line}:{column}: ", path.display());
            assert!(
                diagnostics
                    .iter()
                    .any(|d| d.starts_with(&prefix) && d.contains(text)),
                "{file}: no `{line}:{column}: ...{text}...` in:\n{stdout}"
            );
        }
    }
}

#[test]
fn non_utf8_and_missing_files_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("latin1.yaml");
    std::fs::write(&bad, b"apiVersion: voxflow/v1\nname: caf\xe9\n").unwrap();
    let out = voxflow()
        .arg("validate")
        .arg(&bad)
        .arg(dir.path().join("absent.yaml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("latin1.yaml:2:10: the file is not UTF-8 text"),
        "{stdout}"
    );
    assert!(
        stdout.contains("absent.yaml:1:1: cannot read the workflow file"),
        "{stdout}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = voxflow().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = voxflow()
        .args(["run", "workflows/dag-demo.yaml", "--input", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Truncations and byte-level damage of every shipped and broken workflow must give diagnostics, never a
/// panic (the library is called directly, so a panic fails this test).
#[test]
fn mangled_workflows_never_panic() {
    let registry = StepRegistry::with_builtins();
    let mut sources = Vec::new();
    for dir in [
        repo_root().join("workflows"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid-workflows"),
    ] {
        for e in std::fs::read_dir(dir).unwrap() {
            sources.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    let replacements: &[&[u8]] = &[
        b"",
        b"{",
        b"}",
        b"[",
        b"${{",
        b"}}",
        b"&a",
        b"*a",
        b"\t",
        b"\n  -",
        b":",
        b"'",
        b"\"",
        b"!!binary",
        b"\xff",
    ];
    let mut checked = 0usize;
    for src in &sources {
        let step = (src.len() / 40).max(1);
        for cut in (0..src.len()).step_by(step) {
            for rep in replacements {
                let mut m = src[..cut].to_vec();
                m.extend_from_slice(rep);
                m.extend_from_slice(&src[(cut + 1).min(src.len())..]);
                let text = String::from_utf8_lossy(&m);
                let _ = voxflow_spec::check_workflow(Path::new("mangled.yaml"), &text, &registry);
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} variants checked");
}
