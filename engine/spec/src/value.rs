//! Run-time values: what expressions evaluate to and what flows between steps.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::ArtifactKind;

/// A reference to a stored artifact: its content hash and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// Lower-case hex sha256 of the content.
    pub hash: String,
    pub kind: ArtifactKind,
    pub media_type: String,
    pub size: u64,
    /// A file name suggestion for when the artifact is written out (e.g. `report.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What is known about the content besides its bytes (for a volume read from DICOM: UIDs, modality,
    /// acquisition parameters, geometry); recorded with the artifact in the run record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
}

/// A run-time value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    /// An artifact is serialized as `{"$artifact": {...}}` so it survives a JSON round trip.
    Artifact(ArtifactEnvelope),
    Map(BTreeMap<String, Value>),
}

/// The JSON envelope that marks an artifact inside a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactEnvelope {
    #[serde(rename = "$artifact")]
    pub artifact: ArtifactRef,
}

impl Value {
    pub fn artifact(r: ArtifactRef) -> Value {
        Value::Artifact(ArtifactEnvelope { artifact: r })
    }

    pub fn as_artifact(&self) -> Option<&ArtifactRef> {
        match self {
            Value::Artifact(e) => Some(&e.artifact),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Truthiness used by `when:` conditions and `!`, `&&`, `||`.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Artifact(_) => true,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "mapping",
            Value::Artifact(_) => "artifact",
        }
    }

    /// Every artifact referenced anywhere inside this value.
    pub fn artifacts(&self) -> Vec<&ArtifactRef> {
        let mut out = Vec::new();
        self.collect_artifacts(&mut out);
        out
    }

    fn collect_artifacts<'a>(&'a self, out: &mut Vec<&'a ArtifactRef>) {
        match self {
            Value::Artifact(e) => out.push(&e.artifact),
            Value::List(items) => items.iter().for_each(|v| v.collect_artifacts(out)),
            Value::Map(m) => m.values().for_each(|v| v.collect_artifacts(out)),
            _ => {}
        }
    }

    /// JSON for storage and display; whole numbers are written without a fraction (`3`, not `3.0`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => J::from(*n as i64),
            Value::Number(n) => serde_json::Number::from_f64(*n)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Artifact(e) => serde_json::to_value(e).unwrap_or(J::Null),
        }
    }

    pub fn from_json(json: serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => {
                if o.len() == 1 && o.contains_key("$artifact") {
                    if let Ok(env) = serde_json::from_value::<ArtifactEnvelope>(
                        serde_json::Value::Object(o.clone()),
                    ) {
                        return Value::Artifact(env);
                    }
                }
                Value::Map(
                    o.into_iter()
                        .map(|(k, v)| (k, Value::from_json(v)))
                        .collect(),
                )
            }
        }
    }
}

impl fmt::Display for Value {
    /// How a value reads when interpolated into a string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => {
                if n.fract() == 0.0 && n.abs() < 1e15 {
                    write!(f, "{}", *n as i64)
                } else {
                    write!(f, "{n}")
                }
            }
            Value::String(s) => f.write_str(s),
            Value::Artifact(e) => write!(f, "sha256:{}", e.artifact.hash),
            other => write!(f, "{}", other.to_json()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_survives_json() {
        let v = Value::List(vec![
            Value::artifact(ArtifactRef {
                hash: "ab".into(),
                kind: ArtifactKind::Json,
                media_type: "application/json".into(),
                size: 2,
                name: None,
                metadata: Some(serde_json::json!({"modality": "MR"})),
            }),
            Value::Number(3.0),
        ]);
        let back = Value::from_json(v.to_json());
        assert_eq!(back, v);
        assert_eq!(back.artifacts().len(), 1);
    }

    #[test]
    fn display_integers_without_fraction() {
        assert_eq!(Value::Number(3.0).to_string(), "3");
        assert_eq!(Value::Number(0.5).to_string(), "0.5");
    }
}
