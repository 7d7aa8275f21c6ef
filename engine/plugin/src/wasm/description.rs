//! What a component says about itself (`describe`), and the check that it agrees with its `plugin.yaml`:
//! the manifest is what workflows are validated against, so a component whose ports or parameter schema
//! say otherwise (an old build, a copied manifest) is refused before it runs.

use crate::manifest::{Manifest, ParamDecl, PortDecl};

/// JSON Schema keywords the host understands in a parameter's schema; annotations are allowed too.
const KNOWN_KEYWORDS: [&str; 8] = [
    "type",
    "enum",
    "minimum",
    "maximum",
    "default",
    "description",
    "title",
    "examples",
];

/// A port as the component describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DescribedPort {
    pub name: String,
    /// `volume`, `mask`, `labels`, `volumes`, `text` or `json`.
    pub kind: String,
    pub optional: bool,
    pub description: String,
}

/// What a component says about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub inputs: Vec<DescribedPort>,
    pub outputs: Vec<DescribedPort>,
    /// JSON Schema of the parameters, as JSON text.
    pub params_schema: String,
}

impl Description {
    /// Whether the component agrees with the manifest; the error names the first disagreement.
    pub fn check_against(&self, manifest: &Manifest) -> Result<(), String> {
        if self.name != manifest.name || self.version != manifest.version {
            return Err(format!(
                "the component is {} {} but plugin.yaml says {} {} (rebuild it, or fix the manifest)",
                self.name, self.version, manifest.name, manifest.version
            ));
        }
        check_ports("input", &self.inputs, &manifest.inputs, true)?;
        check_ports("output", &self.outputs, &manifest.outputs, false)?;
        self.check_params(manifest)
    }

    fn check_params(&self, manifest: &Manifest) -> Result<(), String> {
        let schema: serde_json::Value = serde_json::from_str(&self.params_schema)
            .map_err(|e| format!("its parameter schema is not JSON: {e}"))?;
        if schema.get("type").and_then(|t| t.as_str()) != Some("object") {
            return Err(format!(
                "its parameter schema must be of type object, got {schema}"
            ));
        }
        let empty = serde_json::Map::new();
        let properties = match schema.get("properties") {
            None => &empty,
            Some(serde_json::Value::Object(p)) => p,
            Some(other) => return Err(format!("its schema's `properties` is {other}")),
        };
        let closed = schema.get("additionalProperties") == Some(&serde_json::Value::Bool(false));
        if closed {
            if let Some(name) = manifest
                .params
                .keys()
                .find(|n| !properties.contains_key(*n))
            {
                return Err(format!(
                    "plugin.yaml declares parameter `{name}`, which the component's schema does not allow"
                ));
            }
        }
        for (name, property) in properties {
            let decl = manifest.params.get(name).ok_or_else(|| {
                format!(
                    "the component takes parameter `{name}`, which plugin.yaml does not declare"
                )
            })?;
            check_param(name, property, decl)?;
        }
        // A required parameter is either required by the manifest too or filled in from its default.
        let required = schema.get("required").and_then(|r| r.as_array());
        if let Some(name) = required
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
            .find(|n| !manifest.params.contains_key(*n))
        {
            return Err(format!(
                "the component requires parameter `{name}`, which plugin.yaml does not declare"
            ));
        }
        Ok(())
    }
}

/// Ports must match by name; a list port is `volumes` on the wire; optional inputs must agree.
fn check_ports(
    side: &str,
    described: &[DescribedPort],
    declared: &[PortDecl],
    check_optional: bool,
) -> Result<(), String> {
    for decl in declared {
        let port = described
            .iter()
            .find(|p| p.name == decl.name)
            .ok_or_else(|| {
                format!(
                    "plugin.yaml declares {side} `{}`, which the component does not have",
                    decl.name
                )
            })?;
        let volume_like = |k: &str| matches!(k, "volume" | "mask" | "labels");
        let fits = match (decl.ty.as_str(), decl.list) {
            (ty, true) => port.kind == "volumes" || port.kind == ty,
            (ty, false) if volume_like(ty) => volume_like(&port.kind),
            (ty, false) => port.kind == ty,
        };
        if !fits {
            return Err(format!(
                "{side} `{}` is `{}` in the component but `{}{}` in plugin.yaml",
                decl.name,
                port.kind,
                decl.ty,
                if decl.list { " (list)" } else { "" }
            ));
        }
        if check_optional && port.optional != decl.optional {
            return Err(format!(
                "{side} `{}` is {} in the component but {} in plugin.yaml",
                decl.name,
                if port.optional {
                    "optional"
                } else {
                    "required"
                },
                if decl.optional {
                    "optional"
                } else {
                    "required"
                }
            ));
        }
    }
    if let Some(extra) = described
        .iter()
        .find(|p| !declared.iter().any(|d| d.name == p.name))
    {
        return Err(format!(
            "the component has {side} `{}`, which plugin.yaml does not declare",
            extra.name
        ));
    }
    Ok(())
}

/// One parameter: the manifest may only narrow what the component's schema accepts, since the host checks
/// values against the manifest.
fn check_param(name: &str, property: &serde_json::Value, decl: &ParamDecl) -> Result<(), String> {
    let Some(property) = property.as_object() else {
        return Err(format!("the schema of parameter `{name}` is not an object"));
    };
    if let Some(keyword) = property
        .keys()
        .find(|k| !KNOWN_KEYWORDS.contains(&k.as_str()))
    {
        return Err(format!(
            "the schema of parameter `{name}` uses `{keyword}`, which voxflow does not check; \
             use type, enum, minimum and maximum"
        ));
    }
    if let Some(ty) = property.get("type").and_then(|t| t.as_str()) {
        let fits = ty == decl.ty || (ty == "number" && decl.ty == "integer");
        if !fits {
            return Err(format!(
                "parameter `{name}` is `{ty}` in the component's schema but `{}` in plugin.yaml",
                decl.ty
            ));
        }
    }
    if let Some(allowed) = property.get("enum").and_then(|e| e.as_array()) {
        let declared = decl.allowed.as_deref().unwrap_or_default();
        let outside = declared.iter().find(|v| !allowed.contains(v));
        if declared.is_empty() || outside.is_some() {
            return Err(format!(
                "parameter `{name}`: the component accepts only {} but plugin.yaml allows {}",
                serde_json::Value::Array(allowed.clone()),
                outside.map_or("any value".to_string(), |v| v.to_string())
            ));
        }
    }
    let bound = |key: &str| property.get(key).and_then(|v| v.as_f64());
    if let Some(min) = bound("minimum") {
        if decl.minimum.is_none_or(|m| m < min) {
            return Err(format!(
                "parameter `{name}`: the component's minimum is {min}, plugin.yaml's is {}",
                decl.minimum.map_or("unset".into(), |m| m.to_string())
            ));
        }
    }
    if let Some(max) = bound("maximum") {
        if decl.maximum.is_none_or(|m| m > max) {
            return Err(format!(
                "parameter `{name}`: the component's maximum is {max}, plugin.yaml's is {}",
                decl.maximum.map_or("unset".into(), |m| m.to_string())
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::parse(
            "name: fuse\nversion: 0.1.0\nkind: wasm\ncomponent: f.wasm\n\
             inputs:\n  - {name: masks, type: mask, list: true}\n  - {name: prior, type: volume, optional: true}\n\
             outputs:\n  - {name: mask, type: mask}\n\
             params:\n  op: {type: string, enum: [and, or], default: and}\n  k: {type: integer, minimum: 1, maximum: 5, default: 2}\n",
        )
        .unwrap()
    }

    fn port(name: &str, kind: &str, optional: bool) -> DescribedPort {
        DescribedPort {
            name: name.into(),
            kind: kind.into(),
            optional,
            description: String::new(),
        }
    }

    fn description(schema: serde_json::Value) -> Description {
        Description {
            name: "fuse".into(),
            version: "0.1.0".into(),
            inputs: vec![
                port("masks", "volumes", false),
                port("prior", "volume", true),
            ],
            outputs: vec![port("mask", "mask", false)],
            params_schema: schema.to_string(),
        }
    }

    #[test]
    fn agreeing_description_passes() {
        let schema = serde_json::json!({"type": "object", "additionalProperties": false, "properties": {
            "op": {"type": "string", "enum": ["and", "or", "majority"]},
            "k": {"type": "integer", "minimum": 0, "maximum": 10, "description": "neighbours"}}});
        description(schema).check_against(&manifest()).unwrap();
        description(serde_json::json!({"type": "object"}))
            .check_against(&manifest())
            .unwrap();
    }

    #[test]
    fn each_disagreement_is_named() {
        let m = manifest();
        let mut d = description(serde_json::json!({"type": "object"}));
        d.version = "0.2.0".into();
        assert!(d.check_against(&m).unwrap_err().contains("0.2.0"));

        let mut d = description(serde_json::json!({"type": "object"}));
        d.inputs[1].optional = false;
        assert!(d
            .check_against(&m)
            .unwrap_err()
            .contains("`prior` is required"));

        let mut d = description(serde_json::json!({"type": "object"}));
        d.outputs.push(port("extra", "json", false));
        assert!(d.check_against(&m).unwrap_err().contains("`extra`"));

        let mut d = description(serde_json::json!({"type": "object"}));
        d.inputs[0].kind = "text".into();
        assert!(d
            .check_against(&m)
            .unwrap_err()
            .contains("`masks` is `text`"));

        let cases = [
            (
                serde_json::json!({"type": "object", "properties": {"op": {"type": "string", "enum": ["and"]}}}),
                "allows \"or\"",
            ),
            (
                serde_json::json!({"type": "object", "properties": {"k": {"type": "string"}}}),
                "`string`",
            ),
            (
                serde_json::json!({"type": "object", "properties": {"k": {"type": "integer", "maximum": 3}}}),
                "maximum is 3",
            ),
            (
                serde_json::json!({"type": "object", "properties": {"k": {"type": "integer", "pattern": "x"}}}),
                "`pattern`",
            ),
            (
                serde_json::json!({"type": "object", "properties": {"z": {"type": "number"}}}),
                "`z`",
            ),
            (
                serde_json::json!({"type": "object", "additionalProperties": false, "properties": {"op": {}}}),
                "`k`",
            ),
            (serde_json::json!({"type": "array"}), "type object"),
        ];
        for (schema, expected) in cases {
            let error = description(schema.clone()).check_against(&m).unwrap_err();
            assert!(error.contains(expected), "{schema}: {error}");
        }
    }
}
