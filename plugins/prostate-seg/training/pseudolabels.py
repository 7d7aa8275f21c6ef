"""Stage 2/3 output: the semi-supervised and the self-supervised models' masks on every training volume,
written as NIfTI for the fusion workflow (workflows/prostate-pseudolabels.yaml).

usage: python pseudolabels.py [--data DIR] [--runs DIR]
Writes runs/pseudo/<case>_image.nii.gz, <case>_semi.nii.gz and <case>_self.nii.gz (NIfTI axes i,j,k = the
array's x,y,z; the spacing is a nominal 1 mm: PROMISE12's was not kept).
"""
import argparse
import os

import nibabel as nib
import numpy as np
import torch

import data
from unet import UNet


def save(array_zyx, path, dtype):
    image = nib.Nifti1Image(np.transpose(array_zyx, (2, 1, 0)).astype(dtype), np.eye(4))
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


def load_model(runs, stage):
    net = UNet()
    net.load_state_dict(torch.load(os.path.join(runs, stage, "model.pt")))
    return net.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    training, _ = data.split(root)
    out = os.path.join(args.runs, "pseudo")
    os.makedirs(out, exist_ok=True)
    semi, selfsup = load_model(args.runs, "semi"), load_model(args.runs, "selfsup")
    for case in training:
        image, _ = data.load_case(root, case)
        save(image, os.path.join(out, f"{case}_image.nii.gz"), np.int16)
        for name, net in (("semi", semi), ("self", selfsup)):
            mask = data.predict_volume(net, image) > 0.5
            save(mask, os.path.join(out, f"{case}_{name}.nii.gz"), np.uint8)
        print(case, flush=True)
    print(f"pseudo labels of {len(training)} training volumes in {out}")


if __name__ == "__main__":
    main()
