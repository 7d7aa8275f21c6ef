//! The step cache key: sha256 over the plugin's identity and hash, the evaluated parameters and the inputs
//! (artifacts by content hash), in canonical JSON (sorted keys).

use sha2::{Digest, Sha256};
use voxflow_spec::Value;
use voxflow_steps::{PluginIdentity, StepArgs};

pub(crate) fn cache_key(plugin: &PluginIdentity, args: &StepArgs) -> String {
    let to_json = |m: &std::collections::BTreeMap<String, Value>| {
        serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
    };
    // serde_json's map is ordered by key (no preserve_order feature), which makes this canonical.
    let doc = serde_json::json!({
        "plugin": plugin.name,
        "version": plugin.version,
        "sha256": plugin.sha256,
        "inputs": to_json(&args.inputs),
        "params": to_json(&args.params),
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
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
    }
}
