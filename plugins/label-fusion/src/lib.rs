//! label-fusion: fuses binary masks voxel-wise (AND, OR, majority vote) and reports where the sources agree.
//! The fusion functions are plain Rust ([`fuse`], [`agreement`]); the plugin wraps them for voxflow.

use voxflow_plugin_sdk::{export_plugin, Description, Inputs, Outputs, Plugin, PluginError, Port};

/// How the sources are combined at each voxel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Foreground where every source is foreground.
    And,
    /// Foreground where any source is foreground.
    Or,
    /// Foreground where more than half of the sources are foreground.
    Majority,
}

impl Operation {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "and" => Some(Self::And),
            "or" => Some(Self::Or),
            "majority" => Some(Self::Majority),
            _ => None,
        }
    }
}

/// Agreement map values.
pub const AGREE_BACKGROUND: u8 = 0;
pub const AGREE_FOREGROUND: u8 = 1;
pub const DISAGREE: u8 = 255;

/// The most masks one call fuses (votes are counted in a byte per voxel).
pub const MAX_SOURCES: usize = 255;

/// How many sources are foreground at each voxel. All masks must have the same length and there are at
/// most [`MAX_SOURCES`] (the caller checks). Written as straight loops over bytes so that they vectorize,
/// natively and in WebAssembly (simd128), where every loop iteration also pays the host's interruption check.
pub fn votes(masks: &[Vec<bool>]) -> Vec<u8> {
    let len = masks.first().map_or(0, Vec::len);
    let mut votes = vec![0u8; len];
    for mask in masks {
        for (v, &m) in votes.iter_mut().zip(mask) {
            *v += u8::from(m);
        }
    }
    votes
}

/// The fused mask from the votes of `sources` masks.
pub fn fuse_votes(votes: &[u8], sources: usize, operation: Operation) -> Vec<bool> {
    let n = sources.min(MAX_SOURCES) as u8;
    // More than half: 2v > n, i.e. v > n / 2 (integer division).
    let threshold = match operation {
        Operation::And => n.saturating_sub(1),
        Operation::Or => 0,
        Operation::Majority => n / 2,
    };
    votes.iter().map(|&v| v > threshold).collect()
}

/// Per voxel from the votes of `sources` masks: 1 where all are foreground, 0 where all are background,
/// 255 where they disagree.
pub fn agreement_votes(votes: &[u8], sources: usize) -> Vec<u8> {
    let n = sources.min(MAX_SOURCES) as u8;
    votes
        .iter()
        .map(|&v| {
            if v == 0 {
                AGREE_BACKGROUND
            } else if v == n {
                AGREE_FOREGROUND
            } else {
                DISAGREE
            }
        })
        .collect()
}

/// The fused mask. All masks must have the same length (the caller checks the grids).
pub fn fuse(masks: &[Vec<bool>], operation: Operation) -> Vec<bool> {
    fuse_votes(&votes(masks), masks.len(), operation)
}

/// Per voxel: 1 where all sources are foreground, 0 where all are background, 255 where they disagree.
pub fn agreement(masks: &[Vec<bool>]) -> Vec<u8> {
    agreement_votes(&votes(masks), masks.len())
}

pub struct LabelFusion;

impl Plugin for LabelFusion {
    fn describe() -> Description {
        Description::new("label-fusion", env!("CARGO_PKG_VERSION"))
            .input(Port::new("masks", "volumes").describe("the masks to fuse, on one voxel grid"))
            .output(Port::new("mask", "mask"))
            .output(Port::new("agreement", "labels"))
            .params(serde_json::json!({
                "type": "object",
                "properties": {"operation": {"type": "string", "enum": ["and", "or", "majority"]}},
                "additionalProperties": false
            }))
    }

    fn run(mut inputs: Inputs, params: serde_json::Value) -> Result<Outputs, PluginError> {
        let name = params
            .get("operation")
            .and_then(|v| v.as_str())
            .unwrap_or("and");
        let operation = Operation::parse(name).ok_or_else(|| {
            PluginError::bad_params(format!("operation `{name}`: expected and, or or majority"))
        })?;
        let volumes = inputs.volumes("masks")?;
        if volumes.len() < 2 || volumes.len() > MAX_SOURCES {
            return Err(PluginError::bad_input(format!(
                "fusion takes 2 to {MAX_SOURCES} masks, got {}",
                volumes.len()
            )));
        }
        if let Some((n, _)) = volumes
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, v)| !v.same_grid(&volumes[0]))
        {
            return Err(PluginError::bad_input(format!(
                "mask {} is on another voxel grid ({:?} voxels) than mask 1 ({:?})",
                n + 1,
                volumes[n].geometry.dims,
                volumes[0].geometry.dims
            )));
        }
        let masks: Vec<Vec<bool>> = volumes.iter().map(|v| v.nonzero()).collect();
        let votes = votes(&masks);
        drop(masks);
        let fused = fuse_votes(&votes, volumes.len(), operation);
        let agree = agreement_votes(&votes, volumes.len());
        let first = &volumes[0];
        Ok(Outputs::new()
            .volume("mask", first.with_mask(fused))
            .volume(
                "agreement",
                voxflow_plugin_sdk::Volume {
                    geometry: first.geometry.clone(),
                    data: voxflow_plugin_sdk::VoxelData::U8(agree),
                },
            ))
    }
}

export_plugin!(LabelFusion);

#[cfg(test)]
mod tests {
    use super::*;

    fn m(bits: &[u8]) -> Vec<bool> {
        bits.iter().map(|&b| b == 1).collect()
    }

    #[test]
    fn boolean_operations() {
        let masks = [m(&[1, 1, 0, 0]), m(&[1, 0, 1, 0])];
        assert_eq!(fuse(&masks, Operation::And), m(&[1, 0, 0, 0]));
        assert_eq!(fuse(&masks, Operation::Or), m(&[1, 1, 1, 0]));
        // Majority of two is "both": more than half.
        assert_eq!(fuse(&masks, Operation::Majority), m(&[1, 0, 0, 0]));
        let three = [m(&[1, 1, 0]), m(&[1, 0, 0]), m(&[0, 1, 1])];
        assert_eq!(fuse(&three, Operation::Majority), m(&[1, 1, 0]));
    }

    #[test]
    fn agreement_marks_disagreement() {
        let masks = [m(&[1, 1, 0, 0]), m(&[1, 0, 1, 0])];
        assert_eq!(agreement(&masks), vec![1, 255, 255, 0]);
    }

    #[test]
    fn run_checks_grids_and_params() {
        use voxflow_plugin_sdk::{Geometry, Value, Volume, VoxelData};
        let g = Geometry::new([2, 2, 1], [1.0, 1.0, 3.0]);
        let a = Volume::new(g.clone(), VoxelData::U8(vec![1, 1, 0, 0])).unwrap();
        let b = Volume::new(g, VoxelData::U8(vec![1, 0, 1, 0])).unwrap();
        let inputs = Inputs(vec![(
            "masks".into(),
            Value::Volumes(vec![a.clone(), b.clone()]),
        )]);
        let out = LabelFusion::run(inputs.clone(), serde_json::json!({"operation": "or"})).unwrap();
        assert_eq!(out.0[0].1, Value::Volume(a.with_mask(m(&[1, 1, 1, 0]))));
        let err = LabelFusion::run(inputs, serde_json::json!({"operation": "xor"})).unwrap_err();
        assert_eq!(err.code, "bad-params");
        let other = Volume::new(
            Geometry::new([4, 1, 1], [1.0; 3]),
            VoxelData::U8(vec![0; 4]),
        )
        .unwrap();
        let err = LabelFusion::run(
            Inputs(vec![("masks".into(), Value::Volumes(vec![a, other]))]),
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(err.message.contains("another voxel grid"), "{err}");
    }
}
