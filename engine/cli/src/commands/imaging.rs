//! `voxflow inspect PATH` and `voxflow convert INPUT OUTPUT.nii.gz`: look into DICOM folders and NIfTI
//! files, and turn a DICOM series into NIfTI (the job people use dcm2niix for).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use voxflow_imaging::dicom::SeriesRule;
use voxflow_imaging::inspect::{inspect, Report};
use voxflow_imaging::nifti::write_nifti;
use voxflow_imaging::source::{load_source, Origin};

use crate::EXIT_FAILED;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A DICOM file, a folder (searched recursively, DICOMDIR trees included) or a NIfTI file.
    pub path: PathBuf,
    /// Print JSON for machines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// A DICOM folder or file, or a NIfTI file.
    pub input: PathBuf,
    /// The NIfTI file to write (`.nii` or `.nii.gz`).
    pub output: PathBuf,
    /// Which series, when the input holds several: a SeriesInstanceUID or MODALITY:PATTERN (e.g. `MR:t2*tra*`).
    #[arg(long)]
    pub series: Option<String>,
}

pub fn inspect_command(args: &InspectArgs) -> anyhow::Result<u8> {
    let report = match inspect(&args.path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_FAILED);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    print!("{}", describe(&report));
    Ok(0)
}

fn describe(report: &Report) -> String {
    let mut out = String::new();
    let mm = |v: [f64; 3]| format!("{:.3} x {:.3} x {:.3} mm", v[0], v[1], v[2]);
    match report {
        Report::Nifti { path, image } => {
            let d = image.dims;
            let _ = writeln!(
                out,
                "{}: NIfTI-1, {} x {} x {} {}",
                path.display(),
                d[0],
                d[1],
                d[2],
                image.dtype
            );
            let _ = writeln!(out, "  spacing      {}", mm(image.spacing));
            let _ = writeln!(
                out,
                "  orientation  {} (from the {})",
                image.orientation, image.affine_source
            );
            let _ = writeln!(
                out,
                "  stored       {}, {} endian",
                image.stored_dtype, image.endianness
            );
        }
        Report::Dicom {
            path,
            series,
            skipped,
        } => {
            let _ = writeln!(
                out,
                "{}: {} series, {} files skipped",
                path.display(),
                series.len(),
                skipped.len()
            );
            for s in series {
                let _ = writeln!(out, "series {}", s.series_instance_uid);
                let _ = writeln!(
                    out,
                    "  modality     {}  \"{}\"  patient {}",
                    s.modality, s.description, s.patient_id
                );
                match (s.dims, s.spacing) {
                    (Some(d), Some(sp)) => {
                        let _ = writeln!(
                            out,
                            "  size         {} x {} x {} ({} files)",
                            d[0], d[1], d[2], s.files
                        );
                        let _ = writeln!(out, "  spacing      {}", mm(sp));
                    }
                    _ => {
                        let _ = writeln!(
                            out,
                            "  size         {} frames in {} files",
                            s.frames, s.files
                        );
                    }
                }
                if let Some(o) = &s.orientation {
                    let _ = writeln!(out, "  orientation  {o}");
                }
                for (name, uid) in &s.transfer_syntaxes {
                    let _ = writeln!(out, "  transfer     {name} ({uid})");
                }
                for p in &s.problems {
                    let _ = writeln!(out, "  problem      {p}");
                }
            }
            for (file, why) in skipped {
                let _ = writeln!(out, "skipped {}: {why}", file.display());
            }
        }
    }
    out
}

pub fn convert_command(args: &ConvertArgs) -> anyhow::Result<u8> {
    let rule = args
        .series
        .as_deref()
        .map(SeriesRule::parse)
        .unwrap_or_default();
    let volume = match load_source(&args.input, &rule) {
        Ok(loaded) => {
            if let Origin::Dicom { warnings, .. } = &loaded.origin {
                for w in warnings {
                    eprintln!("warning: {w}");
                }
            }
            loaded.volume
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_FAILED);
        }
    };
    write_nifti(&volume, &args.output, "voxflow convert")
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    let d = volume.dims();
    println!(
        "wrote {} ({} x {} x {} {}, spacing {:.3} x {:.3} x {:.3} mm, {})",
        args.output.display(),
        d[0],
        d[1],
        d[2],
        volume.data.dtype(),
        volume.geometry.spacing[0],
        volume.geometry.spacing[1],
        volume.geometry.spacing[2],
        volume.geometry.orientation_ras()
    );
    Ok(0)
}
