//! `plugin.yaml`: what a plugin declares (name, version, kind, ports, parameters, resource limits) and how
//! that becomes the step signature the validator checks workflows against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use voxflow_spec::types::{ArtifactKind, DataType};
use voxflow_spec::{PortSpec, StepSignature, Value};

use crate::PluginError;

/// The file name of a manifest inside a plugin folder.
pub const MANIFEST_FILE: &str = "plugin.yaml";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    Wasm,
    Onnx,
}

/// An input or output port.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortDecl {
    pub name: String,
    /// `volume`, `mask`, `labels`, `text` or `json`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Several values of the type on this one port (a list in the workflow).
    #[serde(default)]
    pub list: bool,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub description: String,
}

/// A parameter: its type, allowed values and default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// `string`, `number`, `integer` or `boolean`.
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, rename = "enum")]
    pub allowed: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    #[serde(default)]
    pub minimum: Option<f64>,
    #[serde(default)]
    pub maximum: Option<f64>,
    #[serde(default)]
    pub description: String,
}

/// What a plugin may use per call; a workflow may tighten these, never loosen them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap, MiB (inputs, working set and outputs all live there).
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Wall-clock limit per call, e.g. `90s`, `5m`.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Optional instruction budget per call (wasmtime fuel); such a plugin runs on a metered engine.
    #[serde(default)]
    pub fuel: Option<u64>,
}

fn default_memory_mb() -> u64 {
    1024
}

fn default_timeout() -> Duration {
    Duration::from_secs(600)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: default_memory_mb(),
            timeout: default_timeout(),
            fuel: None,
        }
    }
}

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "`{text}` is not a duration (e.g. 500ms, 90s, 5m, 1h)"
        ))
    })
}

/// `500ms`, `90s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

/// A parsed `plugin.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    #[serde(default)]
    pub description: String,
    /// The WebAssembly component, relative to the manifest's folder.
    #[serde(default)]
    pub component: Option<PathBuf>,
    /// An ONNX plugin's model and the processing around it (read by voxflow-onnx).
    #[serde(default)]
    pub model: Option<serde_json::Value>,
    #[serde(default)]
    pub inputs: Vec<PortDecl>,
    #[serde(default)]
    pub outputs: Vec<PortDecl>,
    #[serde(default)]
    pub params: BTreeMap<String, ParamDecl>,
    #[serde(default)]
    pub limits: Limits,
    /// String parameters that name folders the plugin may read: the host mounts each read-only at
    /// `/grants/NAME` and hands the plugin that path instead. Nothing else on disk is visible.
    #[serde(default)]
    pub reads: Vec<String>,
}

/// Where a granted folder appears inside the sandbox.
pub fn grant_path(param: &str) -> String {
    format!("/grants/{param}")
}

impl Manifest {
    /// Reads `DIR/plugin.yaml` (or the given file).
    pub fn load(path: &Path) -> Result<(Manifest, PathBuf), PluginError> {
        let file = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let bad = |message: String| PluginError::Manifest {
            path: file.clone(),
            message,
        };
        let text = std::fs::read_to_string(&file).map_err(|e| bad(e.to_string()))?;
        let manifest = Self::parse(&text).map_err(bad)?;
        let dir = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        Ok((manifest, dir))
    }

    /// Parses manifest text; the error says which field is wrong.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let doc = docs.into_iter().next().ok_or("the manifest is empty")?;
        let json = yaml_to_json(doc)?;
        let manifest: Manifest = serde_json::from_value(json).map_err(|e| e.to_string())?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), String> {
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "name `{}`: use letters, digits, `-` and `_`",
                self.name
            ));
        }
        if self.kind == PluginKind::Wasm && self.component.is_none() {
            return Err("a wasm plugin names its `component` file".to_string());
        }
        if self.kind == PluginKind::Onnx && self.model.is_none() {
            return Err("an onnx plugin describes its `model`".to_string());
        }
        if self.kind == PluginKind::Wasm && self.model.is_some() {
            return Err(
                "`model` is for onnx plugins; a wasm plugin names its `component`".to_string(),
            );
        }
        for port in self.inputs.iter().chain(&self.outputs) {
            port_kind(&port.ty).ok_or_else(|| {
                format!(
                    "port `{}`: type `{}` is not one of volume, mask, labels, text, json",
                    port.name, port.ty
                )
            })?;
        }
        for (name, p) in &self.params {
            DataType::parse_param(&p.ty).ok_or_else(|| {
                format!(
                    "param `{name}`: type `{}` is not one of string, number, integer, boolean",
                    p.ty
                )
            })?;
        }
        for name in &self.reads {
            match self.params.get(name) {
                Some(p) if p.ty == "string" => {}
                _ => {
                    return Err(format!(
                        "reads: `{name}` must be a string parameter naming a folder"
                    ))
                }
            }
        }
        if self.limits.memory_mb == 0 || self.limits.memory_mb > 64 * 1024 {
            return Err(format!(
                "limits.memory_mb {} is outside 1..65536",
                self.limits.memory_mb
            ));
        }
        Ok(())
    }

    /// The name workflows use: `KIND/NAME` (e.g. `wasm/label-fusion`).
    pub fn step_name(&self) -> String {
        let kind = match self.kind {
            PluginKind::Wasm => "wasm",
            PluginKind::Onnx => "onnx",
        };
        format!("{kind}/{}", self.name)
    }

    /// The signature the validator checks `inputs:` and `with:` against.
    pub fn signature(&self) -> StepSignature {
        let port = |p: &PortDecl, output: bool| {
            let kind = port_kind(&p.ty).unwrap_or(ArtifactKind::File);
            let mut ty = DataType::Artifact(kind);
            if p.list {
                ty = DataType::List(Box::new(ty));
            }
            let mut spec = PortSpec::required(&p.name, ty, &p.description);
            spec.required = !p.optional && !output;
            spec
        };
        StepSignature {
            plugin: self.step_name(),
            version: self.version.clone(),
            description: self.description.clone(),
            inputs: self.inputs.iter().map(|p| port(p, false)).collect(),
            params: self
                .params
                .iter()
                .map(|(name, p)| {
                    let ty = DataType::parse_param(&p.ty).unwrap_or(DataType::Any);
                    match &p.default {
                        Some(d) => PortSpec::optional(
                            name,
                            ty,
                            Some(Value::from_json(d.clone())),
                            &p.description,
                        ),
                        None => PortSpec::required(name, ty, &p.description),
                    }
                })
                .collect(),
            outputs: self.outputs.iter().map(|p| port(p, true)).collect(),
        }
    }

    /// Checks evaluated parameters against the declarations and returns them as one JSON object with
    /// defaults filled in; the error names the parameter.
    pub fn checked_params(
        &self,
        given: &BTreeMap<String, Value>,
    ) -> Result<serde_json::Value, String> {
        if let Some(unknown) = given.keys().find(|k| !self.params.contains_key(*k)) {
            return Err(format!("unknown parameter `{unknown}`"));
        }
        let mut out = serde_json::Map::new();
        for (name, decl) in &self.params {
            let value = match given.get(name) {
                Some(v) => v.to_json(),
                None => match &decl.default {
                    Some(d) => d.clone(),
                    None => return Err(format!("parameter `{name}` is required")),
                },
            };
            let ok = match decl.ty.as_str() {
                "string" => value.is_string(),
                "number" => value.is_number(),
                "integer" => value.as_f64().is_some_and(|f| f.fract() == 0.0),
                "boolean" => value.is_boolean(),
                _ => true,
            };
            if !ok {
                return Err(format!(
                    "parameter `{name}` must be a {}, got {value}",
                    decl.ty
                ));
            }
            if let Some(allowed) = &decl.allowed {
                if !allowed.contains(&value) {
                    return Err(format!(
                        "parameter `{name}` is {value}; allowed: {}",
                        allowed
                            .iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            if let Some(n) = value.as_f64() {
                if decl.minimum.is_some_and(|m| n < m) || decl.maximum.is_some_and(|m| n > m) {
                    return Err(format!(
                        "parameter `{name}` is {n}, outside {}..{}",
                        decl.minimum.map_or("".into(), |m| m.to_string()),
                        decl.maximum.map_or("".into(), |m| m.to_string())
                    ));
                }
            }
            out.insert(name.clone(), value);
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// The artifact kind behind a port type (`labels` are stored as masks: integer label maps).
pub fn port_kind(ty: &str) -> Option<ArtifactKind> {
    Some(match ty {
        "volume" => ArtifactKind::Volume,
        "mask" | "labels" => ArtifactKind::Mask,
        "text" => ArtifactKind::Text,
        "json" => ArtifactKind::Json,
        _ => return None,
    })
}

fn yaml_to_json(y: yaml_rust2::Yaml) -> Result<serde_json::Value, String> {
    use yaml_rust2::Yaml;
    Ok(match y {
        Yaml::Null => serde_json::Value::Null,
        Yaml::Boolean(b) => serde_json::Value::Bool(b),
        Yaml::Integer(i) => serde_json::Value::from(i),
        Yaml::Real(r) => serde_json::Value::from(
            r.parse::<f64>()
                .map_err(|_| format!("`{r}` is not a number"))?,
        ),
        Yaml::String(s) => serde_json::Value::String(s),
        Yaml::Array(items) => serde_json::Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s,
                    Yaml::Integer(i) => i.to_string(),
                    other => return Err(format!("mapping key {other:?} is not a string")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            serde_json::Value::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err("unsupported YAML value".to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: demo\nversion: 0.1.0\nkind: wasm\ncomponent: demo.wasm\n\
        inputs:\n  - {name: masks, type: mask, list: true}\noutputs:\n  - {name: mask, type: mask}\n\
        params:\n  operation: {type: string, enum: [and, or], default: and}\n  \
        radius: {type: number, minimum: 0, maximum: 10, default: 1}\n\
        limits: {memory_mb: 256, timeout: 90s}\n";

    #[test]
    fn parses_and_checks_parameters() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.step_name(), "wasm/demo");
        assert_eq!(m.limits.timeout, Duration::from_secs(90));
        let sig = m.signature();
        assert!(matches!(sig.inputs[0].ty, DataType::List(_)));
        let mut given = BTreeMap::new();
        assert_eq!(
            m.checked_params(&given).unwrap(),
            serde_json::json!({"operation": "and", "radius": 1})
        );
        given.insert("operation".into(), Value::String("xor".into()));
        assert!(m.checked_params(&given).unwrap_err().contains("allowed"));
        given.insert("operation".into(), Value::String("or".into()));
        given.insert("radius".into(), Value::Number(11.0));
        assert!(m.checked_params(&given).unwrap_err().contains("outside"));
        given.insert("bogus".into(), Value::Null);
        assert!(m
            .checked_params(&given)
            .unwrap_err()
            .contains("unknown parameter `bogus`"));
    }

    #[test]
    fn errors_name_the_field() {
        let err = Manifest::parse(&GOOD.replace("kind: wasm", "kind: lua")).unwrap_err();
        assert!(err.contains("lua"), "{err}");
        let err = Manifest::parse(&format!("{GOOD}colour: blue\n")).unwrap_err();
        assert!(err.contains("colour"), "{err}");
        let err = Manifest::parse(&GOOD.replace("90s", "soon")).unwrap_err();
        assert!(err.contains("duration"), "{err}");
        let err =
            Manifest::parse(&GOOD.replace("type: mask, list", "type: blob, list")).unwrap_err();
        assert!(err.contains("blob"), "{err}");
    }
}
