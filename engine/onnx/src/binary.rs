//! Two-class softmax maps carried as one channel, the difference of the two logits: softmax over two
//! classes is the sigmoid of that difference, and the winner is its sign, so a binary segmentation model's
//! answers are cut to one channel as they come and everything after the network (mirroring back, resizing
//! back, smoothing, uncropping, mapping back to the source grid) handles half the values. Every step of
//! that path is linear, so it gives the two-channel result up to float rounding.

use voxflow_imaging::VoxelData;

use crate::spec::{Activation, Layout, OutputSpec};
use crate::tiling::Tensor;

/// Whether an output port of type `ty` with `spec` can be made from the logit difference alone: softmax
/// masks, label maps and probability maps (not class scores, which report every class).
pub fn reducible(ty: &str, spec: &OutputSpec) -> bool {
    spec.activation == Activation::Softmax
        && match ty {
            "volume" | "labels" => true,
            "mask" => spec.channel.is_none_or(|c| c <= 1),
            _ => false,
        }
}

/// The second channel minus the first of a map output (`[N, 2, ...]`, or `[N, ..., 2]` channels last);
/// `None` for scores (`[N, K]`) and for maps of other than two channels, which stay as they are.
pub fn logit_difference(tensor: &Tensor, layout: Layout) -> Option<Tensor> {
    let shape = &tensor.shape;
    if shape.len() < 4 || tensor.data.len() != shape.iter().product::<usize>() {
        return None;
    }
    let last = layout == Layout::Nhwc;
    let axis = if last { shape.len() - 1 } else { 1 };
    if shape[axis] != 2 {
        return None;
    }
    let data = if last {
        tensor.data.chunks_exact(2).map(|p| p[1] - p[0]).collect()
    } else {
        let plane: usize = shape[2..].iter().product();
        tensor
            .data
            .chunks_exact(2 * plane)
            .flat_map(|sample| {
                let (first, second) = sample.split_at(plane);
                second.iter().zip(first).map(|(b, a)| b - a)
            })
            .collect()
    };
    let mut shape = shape.clone();
    shape[axis] = 1;
    Some(Tensor { shape, data })
}

/// Cuts each answer whose index `wanted` marks to its logit difference where it is a two-channel map,
/// marking it in `cut` (the other answers, and maps of other than two channels, stay as they are).
pub fn cut_answers(answers: &mut [Tensor], wanted: &[bool], layout: Layout, cut: &mut [bool]) {
    for (t, answer) in answers.iter_mut().enumerate() {
        if !wanted.get(t).copied().unwrap_or(false) {
            continue;
        }
        if let Some(difference) = logit_difference(answer, layout) {
            *answer = difference;
            if let Some(mark) = cut.get_mut(t) {
                *mark = true;
            }
        }
    }
}

/// What an output port of type `ty` holds, from the logit difference `d` of each voxel, as the two
/// channels would give it: a probability map the chosen channel's probability (the last, 1, by default),
/// a mask and a label map the winner (channel 0 on ties, as argmax takes the first).
pub fn port_voxels(ty: &str, spec: &OutputSpec, d: &[f32]) -> VoxelData {
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    match ty {
        "volume" if spec.channel == Some(0) => {
            VoxelData::F32(d.iter().map(|&v| sigmoid(-v)).collect())
        }
        "volume" => VoxelData::F32(d.iter().map(|&v| sigmoid(v)).collect()),
        "mask" if spec.channel == Some(0) => VoxelData::U8(
            d.iter()
                .map(|&v| u8::from(v <= 0.0 || v.is_nan()))
                .collect(),
        ),
        _ => VoxelData::U8(d.iter().map(|&v| u8::from(v > 0.0)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiling::Channels;
    use crate::values;

    fn spec(channel: Option<usize>) -> OutputSpec {
        OutputSpec {
            tensor: "logits".into(),
            activation: Activation::Softmax,
            channel,
            threshold: 0.5,
            classes: Vec::new(),
            smooth: 0.0,
        }
    }

    /// Logit pairs with ties, large margins both ways and a NaN.
    const PAIRS: [(f32, f32); 7] = [
        (0.0, 0.0),
        (1.5, -2.0),
        (-3.0, 4.25),
        (20.0, -30.0),
        (-40.0, 35.0),
        (0.1, 0.1000001),
        (f32::NAN, 1.0),
    ];

    #[test]
    fn every_port_from_the_difference_is_what_the_two_channels_give() {
        let n = PAIRS.len();
        let two = Channels {
            dims: [n, 1, 1],
            count: 2,
            data: PAIRS
                .iter()
                .map(|p| p.0)
                .chain(PAIRS.iter().map(|p| p.1))
                .collect(),
        };
        let d: Vec<f32> = PAIRS.iter().map(|(a, b)| b - a).collect();
        for channel in [None, Some(0), Some(1)] {
            let spec = spec(channel);
            // Masks and label maps: argmax over the raw channels, as OnnxPlugin::call takes them.
            let mask = values::mask(&two, &spec);
            assert_eq!(
                port_voxels("mask", &spec, &d),
                VoxelData::U8(mask),
                "{channel:?}"
            );
            // Probability maps: softmax, then the chosen channel (the last by default).
            let mut p = two.clone();
            values::activate(&mut p, Activation::Softmax);
            let c = channel.unwrap_or(1);
            let VoxelData::F32(got) = port_voxels("volume", &spec, &d) else {
                panic!("a probability map is float")
            };
            for (g, e) in got.iter().zip(p.channel(c)) {
                assert!(
                    (g - e).abs() < 1e-6 || (g.is_nan() && e.is_nan()),
                    "{g} vs {e}"
                );
            }
        }
        let labels: Vec<u8> = values::argmax(&two).into_iter().map(|c| c as u8).collect();
        assert_eq!(
            port_voxels("labels", &spec(None), &d),
            VoxelData::U8(labels)
        );
    }

    #[test]
    fn the_difference_is_taken_along_the_layouts_channel_axis() {
        // [N=2, C=2, H=1, W=3]: sample-major, then channel.
        let nchw = Tensor {
            shape: vec![2, 2, 1, 3],
            data: vec![
                1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 0.0, 0.0, 0.0, -1.0, -2.0, -3.0,
            ],
        };
        let d = logit_difference(&nchw, Layout::Nchw).unwrap();
        assert_eq!(d.shape, vec![2, 1, 1, 3]);
        assert_eq!(d.data, vec![9.0, 18.0, 27.0, -1.0, -2.0, -3.0]);
        // The same values channels last: [N=1, H=1, W=3, C=2].
        let nhwc = Tensor {
            shape: vec![1, 1, 3, 2],
            data: vec![1.0, 10.0, 2.0, 20.0, 3.0, 30.0],
        };
        let d = logit_difference(&nhwc, Layout::Nhwc).unwrap();
        assert_eq!((d.shape, d.data), (vec![1, 1, 3, 1], vec![9.0, 18.0, 27.0]));
        // 3D maps: [N=1, C=2, k=1, j=1, i=2].
        let ncdhw = Tensor {
            shape: vec![1, 2, 1, 1, 2],
            data: vec![0.5, 1.0, 2.5, -1.0],
        };
        assert_eq!(
            logit_difference(&ncdhw, Layout::Ncdhw).unwrap().data,
            vec![2.0, -2.0]
        );
        // Scores, three classes and a short buffer stay as they are.
        let scores = Tensor {
            shape: vec![1, 2],
            data: vec![0.0, 1.0],
        };
        assert!(logit_difference(&scores, Layout::Nchw).is_none());
        let three = Tensor {
            shape: vec![1, 3, 1, 1],
            data: vec![0.0; 3],
        };
        assert!(logit_difference(&three, Layout::Nchw).is_none());
        let short = Tensor {
            shape: vec![1, 2, 1, 2],
            data: vec![0.0; 3],
        };
        assert!(logit_difference(&short, Layout::Nchw).is_none());
    }

    #[test]
    fn scores_and_other_activations_keep_their_channels() {
        assert!(reducible("mask", &spec(None)));
        assert!(reducible("volume", &spec(Some(0))));
        assert!(!reducible("mask", &spec(Some(2))));
        assert!(!reducible("json", &spec(None)));
        let mut sigmoid = spec(None);
        sigmoid.activation = Activation::Sigmoid;
        assert!(!reducible("mask", &sigmoid));
    }
}
