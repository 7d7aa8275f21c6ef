//! The NIfTI header as voxflow uses it, read from NIfTI-1 (through the `nifti` crate) or NIfTI-2 (parsed
//! here: the crate reads only NIfTI-1), and the affine chosen as the standard says.

/// Header fields of NIfTI-1 or NIfTI-2, widened to the NIfTI-2 types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Header {
    /// 1 or 2.
    pub version: u8,
    /// `true` for a single file (`n+1`/`n+2`), `false` for a `.hdr`/`.img` pair (`ni1`/`ni2`).
    pub single_file: bool,
    pub big_endian: bool,
    pub datatype: i16,
    pub dim: [i64; 8],
    pub pixdim: [f64; 8],
    pub vox_offset: u64,
    pub scl_slope: f64,
    pub scl_inter: f64,
    pub qform_code: i32,
    pub sform_code: i32,
    pub quatern: [f64; 3],
    pub qoffset: [f64; 3],
    pub srow: [[f64; 4]; 3],
}

/// Bytes needed to tell the version and parse either header.
pub(crate) const MAX_HEADER_BYTES: usize = 540;

impl Header {
    /// Parses the header at the start of `bytes` (NIfTI-1: 348 bytes, NIfTI-2: 540 bytes, either byte order).
    pub fn parse(bytes: &[u8]) -> Result<Header, String> {
        let first = bytes
            .get(..4)
            .ok_or_else(|| format!("{} bytes: too short for a NIfTI header", bytes.len()))?;
        let first: [u8; 4] = [first[0], first[1], first[2], first[3]];
        match (i32::from_le_bytes(first), i32::from_be_bytes(first)) {
            (348, _) | (_, 348) => Self::parse_nifti1(bytes),
            (540, _) => Self::parse_nifti2(bytes, false),
            (_, 540) => Self::parse_nifti2(bytes, true),
            (le, _) => Err(format!(
                "sizeof_hdr is {le}: not a NIfTI-1 (348) or NIfTI-2 (540) header"
            )),
        }
    }

    fn parse_nifti1(bytes: &[u8]) -> Result<Header, String> {
        let h = nifti::NiftiHeader::from_reader(bytes).map_err(|e| e.to_string())?;
        let single_file = &h.magic == b"n+1\0";
        let mut dim = [0i64; 8];
        for (d, &v) in dim.iter_mut().zip(&h.dim) {
            // The crate reads dims as u16; NIfTI-1 stores i16 and negative sizes are invalid anyway.
            *d = i64::from(v as i16);
        }
        Ok(Header {
            version: 1,
            single_file,
            big_endian: h.endianness == nifti::Endianness::Big,
            datatype: h.datatype,
            dim,
            pixdim: h.pixdim.map(f64::from),
            vox_offset: if h.vox_offset.is_finite() && h.vox_offset >= 0.0 {
                h.vox_offset as u64
            } else {
                return Err(format!("vox_offset {} is not a byte offset", h.vox_offset));
            },
            scl_slope: f64::from(h.scl_slope),
            scl_inter: f64::from(h.scl_inter),
            qform_code: i32::from(h.qform_code),
            sform_code: i32::from(h.sform_code),
            quatern: [h.quatern_b, h.quatern_c, h.quatern_d].map(f64::from),
            qoffset: [h.quatern_x, h.quatern_y, h.quatern_z].map(f64::from),
            srow: [h.srow_x, h.srow_y, h.srow_z].map(|r| r.map(f64::from)),
        })
    }

    /// The NIfTI-2 layout (nifti2.h): 540 bytes, 64-bit dims and offsets, double-precision geometry.
    fn parse_nifti2(bytes: &[u8], big_endian: bool) -> Result<Header, String> {
        if bytes.len() < 540 {
            return Err(format!(
                "NIfTI-2 header truncated: {} of 540 bytes",
                bytes.len()
            ));
        }
        let magic = &bytes[4..12];
        let single_file = match &magic[..4] {
            b"n+2\0" => true,
            b"ni2\0" => false,
            other => {
                return Err(format!(
                    "NIfTI-2 magic is {:?}, expected \"n+2\" or \"ni2\"",
                    String::from_utf8_lossy(other)
                ))
            }
        };
        let field = |at: usize, n: usize| {
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&bytes[at..at + n]);
            if big_endian {
                b[..n].reverse();
            }
            b
        };
        let i16_at = |at| {
            let b = field(at, 2);
            i16::from_le_bytes([b[0], b[1]])
        };
        let i32_at = |at| {
            let b = field(at, 4);
            i32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        let i64_at = |at| i64::from_le_bytes(field(at, 8));
        let f64_at = |at| f64::from_le_bytes(field(at, 8));
        let vox_offset = i64_at(168);
        Ok(Header {
            version: 2,
            single_file,
            big_endian,
            datatype: i16_at(12),
            dim: std::array::from_fn(|n| i64_at(16 + 8 * n)),
            pixdim: std::array::from_fn(|n| f64_at(104 + 8 * n)),
            vox_offset: u64::try_from(vox_offset)
                .map_err(|_| format!("vox_offset {vox_offset} is negative"))?,
            scl_slope: f64_at(176),
            scl_inter: f64_at(184),
            qform_code: i32_at(344),
            sform_code: i32_at(348),
            quatern: [f64_at(352), f64_at(360), f64_at(368)],
            qoffset: [f64_at(376), f64_at(384), f64_at(392)],
            srow: std::array::from_fn(|r| std::array::from_fn(|c| f64_at(400 + 32 * r + 8 * c))),
        })
    }

    /// The voxel-to-RAS affine: sform when its code is set, else qform, else pixdim only; and which it was.
    pub fn affine(&self) -> ([[f64; 4]; 4], &'static str) {
        if self.sform_code > 0 {
            let [x, y, z] = self.srow;
            ([x, y, z, [0.0, 0.0, 0.0, 1.0]], "sform")
        } else if self.qform_code > 0 {
            (self.qform(), "qform")
        } else {
            let mut a = [[0.0; 4]; 4];
            for (axis, row) in a.iter_mut().enumerate().take(3) {
                row[axis] = self.pixdim[axis + 1];
            }
            a[3][3] = 1.0;
            (a, "pixdim")
        }
    }

    /// The qform affine (method 2 of the NIfTI-1 standard).
    fn qform(&self) -> [[f64; 4]; 4] {
        let [mut b, mut c, mut d] = self.quatern;
        // As nifti1_io's quatern_to_mat44: a nearly-zero `a` is a 180-degree turn; renormalize (b, c, d).
        let mut a = 1.0 - (b * b + c * c + d * d);
        if a < 1e-7 {
            let norm = 1.0 / (b * b + c * c + d * d).sqrt();
            (b, c, d) = (b * norm, c * norm, d * norm);
            a = 0.0;
        } else {
            a = a.sqrt();
        }
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - c * c - b * b,
            ],
        ];
        let qfac = if self.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let s = [self.pixdim[1], self.pixdim[2], self.pixdim[3] * qfac];
        let mut m = [[0.0; 4]; 4];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] = r[i][j] * s[j];
            }
            m[i][3] = self.qoffset[i];
        }
        m[3][3] = 1.0;
        m
    }
}
