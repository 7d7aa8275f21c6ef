"""Stage 2/3 output: the semi-supervised and the self-supervised models' masks on every training volume,
kept only over the gland's extent along z, written as NIfTI for the fusion workflow
(workflows/prostate-pseudolabels.yaml).

The extent comes from the one thing an annotator gave: the central slice. The gland is widest near its
middle, so walking out from the central slice its cross-section shrinks; a network that has only seen
central slices, though, finds "a gland" on every slice (the bladder above, muscle below). Each source's
mask is therefore kept from the central slice outwards, in both directions, up to the slice before the
first one whose predicted area is empty or grows by more than GROWTH over the previous slice (starting
from the annotated area); beyond that the source says background. Those background slices are what
teaches the final model where a gland ends.

usage: python pseudolabels.py [--data DIR] [--runs DIR] [--semi STAGE] [--round NAME] [--track] [--register]
                              [--extent own|mirrored]
  --semi STAGE --round round2: a second round of self-training, a stage 5 model (EXPERIMENTS.md: final-scratch,
  0.3.0's from random weights) in the semi-supervised source's place (into runs/round2/pseudo,
  runs/round2/pseudo-raw).
  --track --round tracked: each slice keeps only the components touching the previous slice's kept mask
  (tracked_from_centre; measured, not the default), into runs/tracked/.
  --register: also a third source, <case>_reg.nii.gz: the annotation carried slice by slice by deformable
  registration (registration.py), kept within the outermost slices the other two sources' extents reach;
  into runs/reg/ (unless --round says otherwise) for workflows/prostate-pseudolabels-three.yaml
  (measured, not shipped).
  --extent mirrored: both sources within one extent symmetric about the central slice (data.mirrored_extent:
  the annotator's central slice is the middle of the gland, and the sources find its low-z end far better
  than its high-z end), into runs/mirrored/.
Writes runs/pseudo/<case>_image.nii.gz, <case>_semi.nii.gz and <case>_self.nii.gz (NIfTI axes i,j,k = the
array's x,y,z; the spacing is a nominal 1 mm: PROMISE12's was not kept); the masks before the extent is
applied, and the extents (extents.json), go to runs/pseudo-raw/ for evaluate.py.
"""
import json
import os

import numpy as np
import torch
from scipy import ndimage

import data
import registration
from unet import load_trained

GROWTH = 1.25


def gland_ends(area, previous_area):
    """The extent rule: the gland has ended at a slice whose predicted area is empty or grows by more than
    GROWTH over the previous slice's (the annotated area next to the central slice)."""
    return area == 0 or area > previous_area * GROWTH


def gland_extent(mask, centre, centre_area):
    """(first, last) slice of the gland's extent in a predicted (z, y, x) mask, walking out from the
    annotated central slice while the predicted area neither vanishes nor grows by more than GROWTH."""
    areas = mask.reshape(mask.shape[0], -1).sum(axis=1)

    def walk(step):
        z, previous = centre, centre_area
        while 0 <= z + step < len(areas):
            area = areas[z + step]
            if gland_ends(area, previous):
                break
            z, previous = z + step, area
        return z

    return walk(-1), walk(+1)


def tracked_from_centre(mask, centre, annotation):
    """The gland as one object through the annotated slice: walking out from the central slice in both
    directions, each slice keeps only the 2D components of the source's mask that overlap what the slice
    before it kept (the annotation on the central slice), up to the slice before the first one where
    nothing overlaps or the kept area grows by more than GROWTH. Stray blobs off the central slice then
    neither count towards the area nor reach the pseudo labels (the central slice is kept whole: training
    replaces it with the annotation). Returns the kept mask and its extent (first, last)."""
    kept = np.zeros_like(mask)
    kept[centre] = mask[centre]
    ends = []
    for step in (-1, +1):
        z, previous = centre, annotation.astype(bool)
        while 0 <= z + step < mask.shape[0]:
            components, _ = ndimage.label(mask[z + step])
            touching = np.unique(components[previous & (components > 0)])
            current = np.isin(components, touching) & (components > 0)
            if gland_ends(current.sum(), previous.sum()):
                break
            z, previous = z + step, current
            kept[z] = current
        ends.append(z)
    return kept, (ends[0], ends[1])


def within_extent(mask, extent):
    kept = np.zeros_like(mask)
    kept[extent[0]:extent[1] + 1] = mask[extent[0]:extent[1] + 1]
    return kept


def main():
    parser = data.arguments(__doc__)
    parser.add_argument("--semi", default="semi", help="the stage whose model is the semi-supervised source")
    parser.add_argument("--round", default="",
                        help="a subfolder of --runs for another set of pseudo labels (a later round's, or --track's)")
    parser.add_argument("--track", action="store_true",
                        help="keep, slice by slice from the central one, only the components that overlap the "
                             "previous slice's (tracked_from_centre) instead of every component within the extent")
    parser.add_argument("--extent", choices=["own", "mirrored"], default="own",
                        help="own: each source within its own extent (the default); mirrored: both sources within "
                             "one extent symmetric about the central slice, its low-z end the sources' outermost "
                             "(data.mirrored_extent; into runs/mirrored/ unless --round says otherwise)")
    parser.add_argument("--register", action="store_true",
                        help="also write a third source, the annotation propagated by registration (registration.py)")
    args = data.parse(parser)
    if args.track and args.extent == "mirrored":
        parser.error("--extent mirrored cuts the sources' whole masks, not --track's; give one of the two")
    if args.register and args.extent == "mirrored":
        parser.error("--register bounds registration by the sources' own extents; run it without --extent mirrored")
    if args.register and not args.round:
        args.round = "reg"
    if args.extent == "mirrored" and not args.round:
        args.round = "mirrored"
    torch.set_num_threads(2)
    if args.register:
        registration.single_threaded()
    root = data.data_dir(args.data)
    training, _ = data.split(root, args.fold)
    out = os.path.join(args.runs, args.round, "pseudo")
    raw = os.path.join(args.runs, args.round, "pseudo-raw")
    os.makedirs(out, exist_ok=True)
    os.makedirs(raw, exist_ok=True)
    semi, selfsup = load_trained(args.runs, args.semi), load_trained(args.runs, "selfsup")
    extents = {}
    for case in training:
        image, label = data.load_case(root, case)
        centre = data.central_slice(label)
        centre_area = int(label[centre].sum())  # the annotation: the only mask a training case gives
        data.write_nifti_zyx(image, os.path.join(out, f"{case}_image.nii.gz"), np.int16)
        extents[case] = {"central_slice": centre, "slices": int(image.shape[0])}
        masks = {}
        for name, net in (("semi", semi), ("self", selfsup)):
            mask = masks[name] = (data.predict_volume(net, image) > 0.5).astype(np.uint8)
            if args.track:
                kept, extent = tracked_from_centre(mask, centre, label[centre] > 0)
            else:
                extent = gland_extent(mask, centre, centre_area)
                kept = within_extent(mask, extent)
            extents[case][name] = [int(extent[0]), int(extent[1])]
            data.write_nifti_zyx(mask, os.path.join(raw, f"{case}_{name}.nii.gz"), np.uint8)
            if args.extent == "own":
                data.write_nifti_zyx(kept, os.path.join(out, f"{case}_{name}.nii.gz"), np.uint8)
        if args.extent == "mirrored":  # both sources again, within the one extent mirrored about the centre
            extents[case]["own"] = {name: extents[case][name] for name in masks}
            mirrored = data.mirrored_extent(extents[case], centre, image.shape[0])
            for name, mask in masks.items():
                extents[case][name] = [int(mirrored[0]), int(mirrored[1])]
                data.write_nifti_zyx(within_extent(mask, mirrored), os.path.join(out, f"{case}_{name}.nii.gz"), np.uint8)
        if args.register:
            mask = registration.carried_annotation(image, label)
            reach = data.sources_reach(extents[case])
            extents[case]["reg"] = list(reach)
            data.write_nifti_zyx(mask, os.path.join(raw, f"{case}_reg.nii.gz"), np.uint8)
            data.write_nifti_zyx(within_extent(mask, reach), os.path.join(out, f"{case}_reg.nii.gz"), np.uint8)
        print(case, extents[case], flush=True)
    with open(os.path.join(raw, "extents.json"), "w") as f:
        json.dump(extents, f, indent=1)
    print(f"pseudo labels of {len(training)} training volumes in {out}")


if __name__ == "__main__":
    main()
