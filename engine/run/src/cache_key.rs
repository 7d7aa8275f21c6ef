//! The step cache key: sha256 over the plugin's identity and hashes, the evaluated parameters and the inputs
//! (artifacts by content hash), and the wanted outputs when only some are, in canonical JSON (sorted
//! keys). An input that names a file or folder on disk also contributes a fingerprint of what is there
//! (relative paths, sizes and modification times), so a cached step that reads a folder runs again when a
//! file in it is added, removed or rewritten.

use std::path::Path;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};
use voxflow_spec::Value;
use voxflow_steps::{PluginIdentity, StepArgs};

/// Folders deeper than this are not followed (a symlink loop must not hang the key).
const MAX_DEPTH: usize = 32;

pub(crate) fn cache_key(plugin: &PluginIdentity, args: &StepArgs) -> String {
    let to_json = |m: &std::collections::BTreeMap<String, Value>| {
        serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    };
    let paths: serde_json::Map<String, serde_json::Value> = args
        .inputs
        .iter()
        .filter_map(|(name, value)| {
            let mut prints = Vec::new();
            fingerprint_value(value, &mut prints);
            (!prints.is_empty()).then(|| (name.clone(), serde_json::json!(prints)))
        })
        .collect();
    // serde_json's map is ordered by key (no preserve_order feature), which makes this canonical.
    let mut doc = serde_json::json!({
        "plugin": plugin.name,
        "version": plugin.version,
        "sha256": plugin.sha256,
        "inputs": to_json(&args.inputs),
        "params": to_json(&args.params),
        "paths": paths,
    });
    // Only for plugins that have one, so that the keys of the others stay as they were.
    if let Some(config) = &plugin.config_sha256 {
        doc["config_sha256"] = serde_json::json!(config);
    }
    // Only when some outputs are left out, so that the keys of steps that produce everything stay as they
    // were: a result computed for fewer outputs must not answer a step that wants more.
    if let Some(wanted) = &args.wanted_outputs {
        doc["wanted_outputs"] = serde_json::json!(wanted);
    }
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// Fingerprints of the existing paths a value names (a string, or strings inside lists and maps).
fn fingerprint_value(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() && Path::new(s).exists() => {
            out.push(fingerprint(Path::new(s)));
        }
        Value::List(items) => items.iter().for_each(|v| fingerprint_value(v, out)),
        Value::Map(map) => map.values().for_each(|v| fingerprint_value(v, out)),
        _ => {}
    }
}

/// sha256 over every file under `path` (or `path` itself): relative path, size, modification time in ns.
fn fingerprint(path: &Path) -> String {
    let mut entries = Vec::new();
    list(path, Path::new(""), 0, &mut entries);
    entries.sort();
    let mut hasher = Sha256::new();
    for entry in entries {
        hasher.update(entry.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn list(path: &Path, relative: &Path, depth: usize, out: &mut Vec<String>) {
    let Ok(meta) = std::fs::metadata(path) else {
        out.push(format!("{}\tunreadable", relative.display()));
        return;
    };
    if meta.is_dir() {
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(dir) = std::fs::read_dir(path) else {
            out.push(format!("{}\tunlistable", relative.display()));
            return;
        };
        for entry in dir.flatten() {
            list(
                &entry.path(),
                &relative.join(entry.file_name()),
                depth + 1,
                out,
            );
        }
    } else {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        out.push(format!("{}\t{}\t{mtime}", relative.display(), meta.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_params_and_plugin_hash() {
        let id = PluginIdentity {
            name: "builtin/echo".into(),
            version: "1".into(),
            sha256: "a".into(),
            config_sha256: None,
        };
        let mut args = StepArgs::default();
        args.params
            .insert("message".into(), Value::String("x".into()));
        let k1 = cache_key(&id, &args);
        assert_eq!(k1, cache_key(&id, &args.clone()));
        args.params
            .insert("message".into(), Value::String("y".into()));
        assert_ne!(k1, cache_key(&id, &args));
        let other = PluginIdentity {
            sha256: "b".into(),
            ..id.clone()
        };
        assert_ne!(cache_key(&id, &args), cache_key(&other, &args));
        // The same model with other processing around it (an ONNX plugin's `model:` section).
        let processed = |config: &str| PluginIdentity {
            config_sha256: Some(config.into()),
            ..id.clone()
        };
        assert_ne!(cache_key(&id, &args), cache_key(&processed("c"), &args));
        assert_ne!(
            cache_key(&processed("c"), &args),
            cache_key(&processed("d"), &args)
        );
    }

    #[test]
    fn key_depends_on_the_wanted_outputs() {
        let id = PluginIdentity {
            name: "onnx/seg".into(),
            version: "1".into(),
            sha256: "a".into(),
            config_sha256: None,
        };
        let all = StepArgs::default();
        let mask_only = StepArgs {
            wanted_outputs: Some(["mask".to_string()].into()),
            ..StepArgs::default()
        };
        let probability_only = StepArgs {
            wanted_outputs: Some(["probability".to_string()].into()),
            ..StepArgs::default()
        };
        assert_ne!(cache_key(&id, &all), cache_key(&id, &mask_only));
        assert_ne!(
            cache_key(&id, &mask_only),
            cache_key(&id, &probability_only)
        );
        assert_eq!(
            cache_key(&id, &mask_only),
            cache_key(&id, &mask_only.clone())
        );
    }

    #[test]
    fn key_follows_the_files_a_path_input_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("study")).unwrap();
        std::fs::write(dir.path().join("study/1.dcm"), b"first").unwrap();
        let id = PluginIdentity {
            name: "builtin/load-volume".into(),
            version: "1".into(),
            sha256: "a".into(),
            config_sha256: None,
        };
        let mut args = StepArgs::default();
        let folder = dir.path().join("study").display().to_string();
        args.inputs.insert("source".into(), Value::String(folder));
        let before = cache_key(&id, &args);
        assert_eq!(before, cache_key(&id, &args));
        std::fs::write(dir.path().join("study/2.dcm"), b"second").unwrap();
        let added = cache_key(&id, &args);
        assert_ne!(before, added, "a file added to the folder");
        std::fs::write(dir.path().join("study/1.dcm"), b"rewritten").unwrap();
        assert_ne!(added, cache_key(&id, &args), "a file rewritten");
    }
}
