//! The type system of workflow data: declared input types, parameter types, artifact kinds, and the
//! compatibility rule between what a step produces and what another step accepts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The type of a workflow input, given on the command line or by the API as a path or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputType {
    DicomSeries,
    DicomFolder,
    Nifti,
    Image,
    Text,
    Json,
    Path,
}

impl InputType {
    pub const ALL: [InputType; 7] = [
        InputType::DicomSeries,
        InputType::DicomFolder,
        InputType::Nifti,
        InputType::Image,
        InputType::Text,
        InputType::Json,
        InputType::Path,
    ];

    pub fn name(self) -> &'static str {
        match self {
            InputType::DicomSeries => "dicom-series",
            InputType::DicomFolder => "dicom-folder",
            InputType::Nifti => "nifti",
            InputType::Image => "image",
            InputType::Text => "text",
            InputType::Json => "json",
            InputType::Path => "path",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Inputs that name a folder expose `.files`, the sorted list of regular files below it.
    pub fn is_folder(self) -> bool {
        matches!(
            self,
            InputType::DicomFolder | InputType::DicomSeries | InputType::Path
        )
    }
}

/// The kind of a stored artifact (the content a step produced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    Volume,
    Mask,
    Image,
    Tensor,
    Text,
    Json,
    File,
}

impl ArtifactKind {
    pub const ALL: [ArtifactKind; 7] = [
        ArtifactKind::Volume,
        ArtifactKind::Mask,
        ArtifactKind::Image,
        ArtifactKind::Tensor,
        ArtifactKind::Text,
        ArtifactKind::Json,
        ArtifactKind::File,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Volume => "volume",
            ArtifactKind::Mask => "mask",
            ArtifactKind::Image => "image",
            ArtifactKind::Tensor => "tensor",
            ArtifactKind::Text => "text",
            ArtifactKind::Json => "json",
            ArtifactKind::File => "file",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == s)
    }

    /// The media type recorded when a step does not say otherwise.
    pub fn default_media_type(self) -> &'static str {
        match self {
            ArtifactKind::Text => "text/plain; charset=utf-8",
            ArtifactKind::Json => "application/json",
            _ => "application/octet-stream",
        }
    }
}

/// The type of any datum that flows through a workflow: what an expression evaluates to, what a step port
/// accepts or produces, what a parameter holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataType {
    /// Anything; used where the type is only known at run time.
    Any,
    Boolean,
    Integer,
    Number,
    String,
    /// A filesystem path given as a workflow input of the named type.
    Input(InputType),
    /// A path of no particular type (what ports that read files accept).
    Path,
    Artifact(ArtifactKind),
    List(Box<DataType>),
}

impl DataType {
    /// The parameter types a workflow author may declare.
    pub fn parse_param(s: &str) -> Option<Self> {
        Some(match s {
            "number" => DataType::Number,
            "integer" => DataType::Integer,
            "string" => DataType::String,
            "boolean" => DataType::Boolean,
            _ => return None,
        })
    }

    /// Whether a port of this type accepts a datum of type `actual`.
    pub fn accepts(&self, actual: &DataType) -> bool {
        use DataType::*;
        match (self, actual) {
            (Any, _) | (_, Any) => true,
            (Number, Integer) => true,
            (Path, Input(_) | String | Path) => true,
            (Input(want), Input(got)) => want == got || *got == InputType::Path,
            (Input(_), String | Path) => true,
            (String, Input(_) | Path) => true,
            // every artifact is a file; a mask is a volume.
            (Artifact(ArtifactKind::File), Artifact(_)) => true,
            (Artifact(ArtifactKind::Volume), Artifact(ArtifactKind::Mask)) => true,
            (Artifact(ArtifactKind::Text), String) => true,
            (Artifact(ArtifactKind::Json), Artifact(ArtifactKind::Text)) => false,
            (List(a), List(b)) => a.accepts(b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Any => f.write_str("any"),
            DataType::Boolean => f.write_str("boolean"),
            DataType::Integer => f.write_str("integer"),
            DataType::Number => f.write_str("number"),
            DataType::String => f.write_str("string"),
            DataType::Input(t) => write!(f, "{} path", t.name()),
            DataType::Path => f.write_str("path"),
            DataType::Artifact(k) => write!(f, "{} artifact", k.name()),
            DataType::List(inner) => write!(f, "list of {inner}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_rules() {
        let vol = DataType::Artifact(ArtifactKind::Volume);
        let mask = DataType::Artifact(ArtifactKind::Mask);
        assert!(vol.accepts(&mask));
        assert!(!mask.accepts(&vol));
        assert!(DataType::Artifact(ArtifactKind::File).accepts(&vol));
        assert!(DataType::Number.accepts(&DataType::Integer));
        assert!(!DataType::Integer.accepts(&DataType::Number));
        assert!(DataType::Path.accepts(&DataType::Input(InputType::Nifti)));
        assert!(!DataType::Input(InputType::Nifti).accepts(&DataType::Input(InputType::Text)));
        assert!(!vol.accepts(&DataType::Artifact(ArtifactKind::Text)));
    }

    #[test]
    fn names_round_trip() {
        for t in InputType::ALL {
            assert_eq!(InputType::parse(t.name()), Some(t));
        }
        for k in ArtifactKind::ALL {
            assert_eq!(ArtifactKind::parse(k.name()), Some(k));
        }
    }
}
