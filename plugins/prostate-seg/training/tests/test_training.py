"""Unit tests of the training code's rules on synthetic volumes: the extent rule, the central slice, the
crop and the network grid, the loss's ignored voxels and the ring growth (one network, the taper, partners,
the oracles, the carried annotation, the distance weight).

They need the training environment (requirements.txt: PyTorch, SciPy), not PROMISE12; CI does not install
PyTorch, so they run where the models are trained:
    cd plugins/prostate-seg/training && ~/venv-prostate/bin/python -m unittest discover -s tests -v
"""
import os
import sys
import unittest

import numpy as np
import torch
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import data  # noqa: E402
import registration  # noqa: E402
import rings  # noqa: E402
import train  # noqa: E402
from evaluate_onnx import along_z  # noqa: E402
from pseudolabels import gland_ends, gland_extent  # noqa: E402


def disk_volume(slices=9, size=100, radii=(0, 0, 8, 12, 15, 12, 8, 0, 0)):
    """An image and a gland mask (z, y, x): a disk per slice, centred in-plane, of the given radii."""
    yy, xx = np.mgrid[:size, :size]
    mask = np.stack([(yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 < r * r if r else np.zeros((size, size), bool)
                     for r in radii[:slices]]).astype(np.uint8)
    image = (100 + 200 * mask + np.random.default_rng(0).normal(0, 5, mask.shape)).astype(np.float32)
    return image, mask


class ConstantLogits(torch.nn.Module):
    """A stand-in network whose gland is a fixed rectangle of the network grid, whatever the input; the
    rectangle is symmetric left-right so that test-time mirroring keeps it."""

    def __init__(self, rows, half_width):
        super().__init__()
        self.rows, self.cols = rows, slice(data.SIZE // 2 - half_width, data.SIZE // 2 + half_width)

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 2, x.shape[2], x.shape[3])
        logits[:, 1] = -5.0
        logits[:, 1, self.rows, self.cols] = 5.0
        return logits


class ExtentRule(unittest.TestCase):
    def test_the_gland_ends_where_the_area_vanishes_or_grows_by_a_quarter(self):
        self.assertTrue(gland_ends(0, 100))
        self.assertTrue(gland_ends(126, 100))
        self.assertFalse(gland_ends(125, 100))
        self.assertFalse(gland_ends(1, 100))

    def test_the_extent_walks_out_from_the_central_slice(self):
        areas = [50, 0, 40, 60, 80, 70, 200, 30]  # slice 1 empty, slice 6 grows by more than 25 %
        mask = np.zeros((len(areas), 20, 20), np.uint8)
        for z, a in enumerate(areas):
            mask[z].flat[:a] = 1
        self.assertEqual(gland_extent(mask, centre=4, centre_area=80), (2, 5))

    def test_the_central_slice_is_the_middle_of_the_glands_extent(self):
        _, mask = disk_volume()
        self.assertEqual(data.central_slice(mask), 4)
        mask[6] = 0
        self.assertEqual(data.central_slice(mask), 4)  # extent 2-5: 3.5 rounds to 4 (round half to even)


class NetworkGrid(unittest.TestCase):
    def test_the_crop_is_centred_as_the_onnx_step_computes_it(self):
        self.assertEqual(data.crop_box(100), (20, 60))
        self.assertEqual(data.crop_box(101), (20, 61))
        self.assertEqual(data.cropped(np.zeros((2, 100, 50))).shape, (2, 60, 30))

    def test_a_mask_survives_the_network_grid_by_the_pixel_centre(self):
        """The ceiling of a perfect network (label_grid.py): a mask taken to the grid under nearest-exact and
        mapped back as the step maps logits keeps its Dice near 1; legacy nearest shifts it and loses more."""
        _, mask = disk_volume(size=150, radii=(0, 20, 30, 20, 0))
        scores = {}
        for rule in data.LABEL_RESIZES:
            grid = torch.from_numpy(data.label_slices(mask, rule=rule).astype(np.float32))
            logits = torch.stack([-10 * grid, 10 * grid], dim=1)
            back = data.probability_on_source(logits, mask.shape[1:]) > 0.5
            scores[rule] = data.dice(back, mask)
        self.assertGreater(scores["nearest-exact"], 0.97)
        self.assertGreater(scores["nearest-exact"], scores["nearest"])

    def test_dice(self):
        a = np.zeros((4, 4), bool)
        b = a.copy()
        self.assertEqual(data.dice(a, b), 1.0)  # both empty: agreement
        a[0, :2], b[0, 1:3] = True, True
        self.assertAlmostEqual(data.dice(a, b), 0.5)


class Loss(unittest.TestCase):
    def test_ignored_voxels_do_not_reach_the_loss(self):
        torch.manual_seed(0)
        logits = torch.randn(2, 2, 8, 8)
        target = torch.randint(0, 2, (2, 8, 8))
        target[:, :4] = data.IGNORE
        changed = logits.clone()
        changed[:, :, :4] = torch.randn(2, 2, 4, 8)  # only where the target is ignored
        self.assertAlmostEqual(float(train.segmentation_loss(logits, target)),
                               float(train.segmentation_loss(changed, target)), places=5)
        changed[:, 1, 4:] += 1.0  # the prostate channel where the target counts
        self.assertNotAlmostEqual(float(train.segmentation_loss(logits, target)),
                                  float(train.segmentation_loss(changed, target)), places=5)


class RingGrowth(unittest.TestCase):
    def volume(self, networks=1):
        image, mask = disk_volume()
        return rings.Volume("synthetic", image, mask, networks=networks)

    def test_only_the_central_slice_is_labelled_at_the_start(self):
        v = self.volume()
        self.assertEqual(v.centre, 4)
        labelled = np.where((v.labels != data.IGNORE).reshape(v.shape[0], -1).any(axis=1))[0]
        self.assertEqual(labelled.tolist(), [4])
        np.testing.assert_array_equal(v.labels[4], v.truth[4])

    def test_one_network_labels_the_next_ring_whole(self):
        v = self.volume()
        v.grow([ConstantLogits(slice(40, 90), 30)], ring=1)
        self.assertTrue(v.open())
        for z in (3, 5):
            self.assertFalse((v.labels[z] == data.IGNORE).any())
            self.assertGreater((v.labels[z] == 1).sum(), 0)
        inputs, targets = v.slices()
        self.assertEqual(len(inputs), 3)

    def test_the_distance_weight_falls_with_each_ring(self):
        v = self.volume()
        np.testing.assert_allclose(v.weights(0.5), [1.0])
        v.grow([ConstantLogits(slice(40, 90), 30)], ring=1)
        v.grow([ConstantLogits(slice(40, 90), 30)], ring=2)
        np.testing.assert_allclose(v.weights(0.5), [0.25, 0.5, 1.0, 0.5, 0.25])  # slices 2-6 about the centre 4
        inputs, targets = v.slices()
        sampler = train.Slices([inputs], [targets], weight=[v.weights(0.5)])
        self.assertEqual(len(sampler.weight), len(sampler.x))

    def test_the_taper_keeps_a_ring_within_its_pixels_of_the_slice_before(self):
        image, mask = disk_volume()
        v = rings.Volume("synthetic", image, mask, taper=1)
        wide = ConstantLogits(slice(40, 90), 30)
        v.grow([wide], ring=1)
        allowed = ndimage.binary_dilation(mask[4] == 1, rings.CROSS, iterations=1)
        self.assertTrue((v.labels[5] == 1).sum() > 0 and not ((v.labels[5] == 1) & ~allowed).any())
        self.assertTrue(((v.network_masks[5] == 1) & ~allowed).any())  # the network's own mask reached beyond

    def test_partners_teach_their_and_and_ignore_their_disagreement(self):
        v = self.volume(networks=2)
        wide, narrow = ConstantLogits(slice(40, 90), 30), ConstantLogits(slice(60, 90), 30)
        v.grow([wide, narrow], ring=1)
        self.assertTrue(v.open())
        alone = self.volume()
        alone.grow([narrow], ring=1)
        z = 5
        np.testing.assert_array_equal(v.labels[z] == 1, alone.labels[z] == 1)  # the narrow one lies within the wide one
        self.assertGreater((v.labels[z] == data.IGNORE).sum(), 0)  # where only the wide one finds gland
        inputs, targets = v.slices()
        self.assertEqual(len(inputs), 3)  # a slice with ignored voxels still trains
        self.assertIn(data.IGNORE, np.unique(targets))
        self.assertGreater(rings.quality([v])["ignored_in_reached"], 0)

    def test_a_side_stops_where_either_partners_area_grows_too_much(self):
        small, large = ConstantLogits(slice(50, 78), 14), ConstantLogits(slice(20, 110), 45)
        alone = self.volume()
        alone.grow([small], ring=1)
        self.assertTrue(alone.open())  # the small one alone would go on
        v = self.volume(networks=2)
        v.grow([small, large], ring=1)
        self.assertIsNone(v.last_area[-1])  # the large one's area is far more than 1.25x the annotated one
        self.assertIsNone(v.last_area[+1])
        self.assertTrue((v.labels[:4] == 0).all() and (v.labels[5:] == 0).all())  # taught as background beyond
        self.assertEqual(v.end, {-1: 4, +1: 4})

    def test_the_oracle_labels_each_ring_by_the_true_mask_and_stops_at_the_true_ends(self):
        image, mask = disk_volume()
        v = rings.Volume("synthetic", image, mask, oracle="masks")
        for ring in (1, 2, 3):
            v.grow([ConstantLogits(slice(0, 128), 64)], ring)  # the network is not asked
        np.testing.assert_array_equal(v.labels, mask)  # gland 2-6, background beyond on both sides
        self.assertEqual(v.end, {-1: 2, +1: 6})
        self.assertFalse(v.open())

    def test_the_oracle_extent_keeps_the_networks_masks_within_the_true_ends(self):
        image, mask = disk_volume()
        v = rings.Volume("synthetic", image, mask, oracle="extent")
        large = ConstantLogits(slice(20, 110), 45)  # its area rule would stop both sides at once
        for ring in (1, 2, 3):
            v.grow([large], ring)
        self.assertEqual(v.end, {-1: 2, +1: 6})
        self.assertTrue((v.labels[[0, 1, 7, 8]] == 0).all())
        self.assertTrue(all((v.labels[z] == 1).sum() > mask[z].sum() for z in (2, 3, 5, 6)))  # the network's own masks


class MoreAnnotatedSlices(unittest.TestCase):
    """rings.py --annotated N: more annotated slices, spread evenly over the extent."""

    def test_spaced_slices_lie_evenly_over_the_extent_and_skip_the_central_one(self):
        _, mask = disk_volume(radii=(0, 8, 10, 12, 15, 12, 10, 8, 0))  # extent 1-7, centre 4
        self.assertEqual(data.spaced_slices(mask, 3), [3, 6])  # 2.5 and 5.5, rounded half up
        self.assertEqual(data.spaced_slices(mask, 5), [2, 3, 5, 6])  # 2, 3, 5 and 6 of 1-7
        _, short = disk_volume(radii=(0, 0, 0, 12, 15, 12, 0, 0, 0))  # extent 3-5: 3.5 and 4.5 round to 4 and 5
        self.assertEqual(data.spaced_slices(short, 3), [5])  # the one on the central slice is left out

    def test_annotated_slices_are_taught_from_the_start_and_a_side_goes_on_until_it_passes_them(self):
        image, mask = disk_volume(radii=(0, 8, 10, 12, 15, 12, 10, 8, 0))
        v = rings.Volume("synthetic", image, mask, annotated=3)
        np.testing.assert_array_equal(v.labels[[3, 4, 6]], mask[[3, 4, 6]])
        self.assertEqual(list(v.labelled()), [3, 4, 6])
        large = ConstantLogits(slice(10, 118), 54)  # its area rule would stop both sides at once
        v.grow([large], ring=1)
        self.assertTrue(v.open())
        np.testing.assert_array_equal(v.labels[3], mask[3])  # the annotation, not the network's mask
        self.assertGreater((v.labels[5] == 1).sum(), 4 * mask[5].sum())  # the network's mask: slice 6 lies beyond
        v.grow([large], ring=2)
        self.assertEqual(v.end[-1], 3)  # nothing annotated beyond slice 2: the area rule ends the low side
        np.testing.assert_array_equal(v.labels[6], mask[6])
        self.assertEqual(set(rings.quality([v])["by_distance"]), {1, 2, 3, 4})  # slices 3, 4 and 6 left out

    def test_one_annotated_slice_is_the_default(self):
        image, mask = disk_volume()
        self.assertEqual(rings.Volume("synthetic", image, mask).annotated_slices(), {4})


class CarriedAnnotation(unittest.TestCase):
    """rings.py --registration: each ring's mask fused with the central annotation carried by registration."""

    def volume(self, rule):
        image, mask = disk_volume()
        registered = np.zeros_like(mask)
        registered[:, 30:70, 30:70] = 1  # a square carried mask, narrower than the wide network's gland
        return rings.Volume("synthetic", image, mask, registered=registered, registration_rule=rule), registered

    def first_ring(self, rule, net, z=5):
        """The volume after the first ring under `rule`, and on slice `z` its labels, the network's own mask
        and the carried mask."""
        v, registered = self.volume(rule)
        v.grow([net], ring=1)
        return v, v.labels[z], v.network_masks[z] == 1, registered[z] == 1

    def test_the_veto_teaches_the_networks_gland_outside_the_carried_mask_as_background(self):
        v, registered = self.volume("veto")
        wide = ConstantLogits(slice(40, 90), 30)
        alone = RingGrowth().volume()
        alone.grow([wide], ring=1)
        v.grow([wide], ring=1)
        z = 5
        np.testing.assert_array_equal(v.labels[z], (alone.labels[z] == 1) & (registered[z] == 1))
        self.assertFalse((v.labels[z] == data.IGNORE).any())
        np.testing.assert_array_equal(v.network_masks[z], alone.labels[z])  # the log keeps the network's own mask
        self.assertLess(rings.quality([v])["recall"], rings.quality([v], "network_masks")["recall"] + 1e-9)

    def test_the_and_ignores_where_only_one_source_finds_gland(self):
        v, labels, network, carried = self.first_ring("and", ConstantLogits(slice(40, 90), 30))
        np.testing.assert_array_equal(labels == 1, network & carried)
        np.testing.assert_array_equal(labels == data.IGNORE, network ^ carried)
        np.testing.assert_array_equal(labels == 0, ~network & ~carried)
        self.assertGreater((labels == data.IGNORE).sum(), 0)
        self.assertEqual(v.last_area[+1], (int(network.sum()),))  # the area rule reads the network's own mask

    def test_keep_ignores_the_networks_background_inside_the_carried_mask(self):
        _, labels, network, carried = self.first_ring("keep", ConstantLogits(slice(60, 90), 30))
        np.testing.assert_array_equal(labels == 1, network)
        np.testing.assert_array_equal(labels == data.IGNORE, ~network & carried)
        self.assertGreater((labels == data.IGNORE).sum(), 0)

    def test_registration_carries_the_annotation_to_the_neighbouring_slices(self):
        image, mask = disk_volume(size=128)
        carried = registration.carried_annotation(image, mask)  # from the central slice, 4
        self.assertGreater(data.dice(carried[4] > 0, mask[4] > 0), 0.95)  # the annotation, through the network grid
        self.assertGreater(data.dice(carried[3] > 0, mask[3] > 0), 0.8)  # the disk shrinks 15 -> 12 pixels


class SmoothingAlongZ(unittest.TestCase):
    def test_it_matches_the_fusion_plugins_smoothing(self):
        # The values wasm/probability-fusion's unit test expects of `smoothed_along` (weight 0.25, end
        # slices repeated), on a volume whose every voxel of a slice holds that slice's value.
        fused = np.array([0.4, 0.5, 0.9, 0.45, 0.0], np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
        expected = np.array([0.425, 0.575, 0.6875, 0.45, 0.1125], np.float32)[:, None, None]
        np.testing.assert_allclose(along_z(fused), np.broadcast_to(expected, fused.shape), atol=1e-6)


if __name__ == "__main__":
    unittest.main()
