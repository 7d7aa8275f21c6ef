"""Stage 2/3 output: the semi-supervised and the self-supervised models' masks on every training volume,
written as NIfTI for the fusion workflow (workflows/prostate-pseudolabels.yaml).

usage: python pseudolabels.py [--data DIR] [--runs DIR]
Writes runs/pseudo/<case>_image.nii.gz, <case>_semi.nii.gz and <case>_self.nii.gz (NIfTI axes i,j,k = the
array's x,y,z; the spacing is a nominal 1 mm: PROMISE12's was not kept).
"""
import os

import numpy as np
import torch

import data
from unet import load_trained


def main():
    args = data.arguments(__doc__).parse_args()
    torch.set_num_threads(2)
    root = data.data_dir(args.data)
    training, _ = data.split(root)
    out = os.path.join(args.runs, "pseudo")
    os.makedirs(out, exist_ok=True)
    semi, selfsup = load_trained(args.runs, "semi"), load_trained(args.runs, "selfsup")
    for case in training:
        image, _ = data.load_case(root, case)
        data.write_nifti_zyx(image, os.path.join(out, f"{case}_image.nii.gz"), np.int16)
        for name, net in (("semi", semi), ("self", selfsup)):
            mask = data.predict_volume(net, image) > 0.5
            data.write_nifti_zyx(mask, os.path.join(out, f"{case}_{name}.nii.gz"), np.uint8)
        print(case, flush=True)
    print(f"pseudo labels of {len(training)} training volumes in {out}")


if __name__ == "__main__":
    main()
