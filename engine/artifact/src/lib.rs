//! Content-addressed artifact files: every artifact is stored once under its sha256, written to a temporary
//! name in the same folder tree and renamed into place, so a crash or a cancelled step never leaves a half
//! file where a reader could find it.
//!
//! Layout under the data directory: `artifacts/sha256/ab/abcdef…` for content, `artifacts/tmp/` for files
//! being written (removed on drop, and swept when the store is opened).
//!
//! ```
//! use voxflow_artifact::ArtifactStore;
//! use voxflow_spec::types::ArtifactKind;
//! let dir = tempfile::tempdir().unwrap();
//! let store = ArtifactStore::open(dir.path()).unwrap();
//! let a = store.put_bytes(b"hello", ArtifactKind::Text, None, Some("greeting.txt")).unwrap();
//! assert_eq!(a.hash, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
//! assert_eq!(store.read(&a).unwrap(), b"hello");
//! ```

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use voxflow_spec::types::ArtifactKind;
use voxflow_spec::ArtifactRef;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("artifact sha256:{hash} is not in the artifact store at {root}")]
    Missing { hash: String, root: PathBuf },
    #[error("artifact sha256:{hash} is corrupt: its content hashes to {actual}")]
    Corrupt { hash: String, actual: String },
    #[error("`{0}` is not a sha256 hash")]
    BadHash(String),
}

fn io_err<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> ArtifactError + 'p {
    move |source| ArtifactError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The artifact files of one data directory.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    /// Opens (creating if needed) the artifact store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, ArtifactError> {
        let root = data_dir.join("artifacts");
        let tmp = root.join("tmp");
        fs::create_dir_all(root.join("sha256")).map_err(io_err("cannot create", &root))?;
        fs::create_dir_all(&tmp).map_err(io_err("cannot create", &tmp))?;
        Ok(ArtifactStore { root })
    }

    /// Removes leftovers of interrupted writes. Only call this when no other process writes to this store.
    pub fn sweep_temporary_files(&self) -> Result<usize, ArtifactError> {
        let tmp = self.root.join("tmp");
        let mut removed = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err("cannot list", &tmp))? {
            let entry = entry.map_err(io_err("cannot list", &tmp))?;
            if fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the content with this hash lives.
    pub fn path_of(&self, hash: &str) -> Result<PathBuf, ArtifactError> {
        if hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(ArtifactError::BadHash(hash.to_string()));
        }
        Ok(self.root.join("sha256").join(&hash[..2]).join(hash))
    }

    pub fn contains(&self, hash: &str) -> bool {
        self.path_of(hash).is_ok_and(|p| p.is_file())
    }

    /// Starts writing a new artifact; nothing is visible until [`ArtifactWriter::finish`].
    pub fn writer(&self) -> Result<ArtifactWriter, ArtifactError> {
        let tmp_dir = self.root.join("tmp");
        let file = tempfile::Builder::new()
            .prefix("partial-")
            .tempfile_in(&tmp_dir)
            .map_err(io_err("cannot create a temporary file in", &tmp_dir))?;
        Ok(ArtifactWriter {
            store: self.clone(),
            file,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub fn put_bytes(
        &self,
        bytes: &[u8],
        kind: ArtifactKind,
        media_type: Option<&str>,
        name: Option<&str>,
    ) -> Result<ArtifactRef, ArtifactError> {
        let mut w = self.writer()?;
        w.write_all(bytes)
            .map_err(io_err("cannot write", w.file.path()))?;
        w.finish(kind, media_type, name)
    }

    /// Copies a file into the store, hashing it on the way.
    pub fn put_file(
        &self,
        source: &Path,
        kind: ArtifactKind,
        media_type: Option<&str>,
    ) -> Result<ArtifactRef, ArtifactError> {
        let mut input = File::open(source).map_err(io_err("cannot open", source))?;
        let mut w = self.writer()?;
        io::copy(&mut input, &mut w).map_err(io_err("cannot copy", source))?;
        let name = source.file_name().and_then(|n| n.to_str());
        w.finish(kind, media_type, name)
    }

    /// Opens an artifact's content for streaming reads (large volumes need not be held whole).
    pub fn open_content(&self, artifact: &ArtifactRef) -> Result<File, ArtifactError> {
        let path = self.path_of(&artifact.hash)?;
        File::open(&path).map_err(|e| self.missing_or(e, &artifact.hash, &path))
    }

    pub fn read(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, ArtifactError> {
        let path = self.path_of(&artifact.hash)?;
        fs::read(&path).map_err(|e| self.missing_or(e, &artifact.hash, &path))
    }

    fn missing_or(&self, e: io::Error, hash: &str, path: &Path) -> ArtifactError {
        if e.kind() == io::ErrorKind::NotFound {
            ArtifactError::Missing {
                hash: hash.to_string(),
                root: self.root.clone(),
            }
        } else {
            ArtifactError::Io {
                action: "cannot read",
                path: path.to_path_buf(),
                source: e,
            }
        }
    }

    /// Re-hashes stored content and compares it with its name.
    pub fn verify(&self, hash: &str) -> Result<(), ArtifactError> {
        let path = self.path_of(hash)?;
        let mut f = File::open(&path).map_err(|e| self.missing_or(e, hash, &path))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(io_err("cannot read", &path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let actual = hex::encode(hasher.finalize());
        if actual != hash {
            return Err(ArtifactError::Corrupt {
                hash: hash.to_string(),
                actual,
            });
        }
        Ok(())
    }

    /// Writes an artifact's content to `dest` through a temporary file in the destination folder.
    pub fn export(&self, artifact: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError> {
        let src = self.path_of(&artifact.hash)?;
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        let mut input = File::open(&src).map_err(|e| self.missing_or(e, &artifact.hash, &src))?;
        let mut tmp =
            output_tempfile(dir).map_err(io_err("cannot create a temporary file in", dir))?;
        io::copy(&mut input, &mut tmp).map_err(io_err("cannot write", dest))?;
        tmp.as_file()
            .sync_all()
            .map_err(io_err("cannot sync", dest))?;
        tmp.persist(dest).map_err(|e| ArtifactError::Io {
            action: "cannot rename into",
            path: dest.to_path_buf(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// A temporary file for a user-visible output, renamed into place when complete. Unlike tempfile's
/// private default (0600), it gets the permissions any new file gets here (0666 less the umask).
pub fn output_tempfile(dir: &Path) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".voxflow-partial-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

/// A streaming writer for one artifact. Dropping it without `finish` deletes the partial file.
pub struct ArtifactWriter {
    store: ArtifactStore,
    file: NamedTempFile,
    hasher: Sha256,
    size: u64,
}

impl Write for ArtifactWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ArtifactWriter {
    /// A failure to write this artifact's content (by whatever wrote into it), naming its temporary file.
    pub fn write_error(&self, source: io::Error) -> ArtifactError {
        ArtifactError::Io {
            action: "cannot write",
            path: self.file.path().to_path_buf(),
            source,
        }
    }

    /// Makes the content durable and visible under its hash.
    pub fn finish(
        mut self,
        kind: ArtifactKind,
        media_type: Option<&str>,
        name: Option<&str>,
    ) -> Result<ArtifactRef, ArtifactError> {
        let tmp_path = self.file.path().to_path_buf();
        self.file
            .flush()
            .map_err(io_err("cannot write", &tmp_path))?;
        let hash = hex::encode(self.hasher.finalize());
        let dest = self.store.path_of(&hash)?;
        if !dest.is_file() {
            self.file
                .as_file()
                .sync_all()
                .map_err(io_err("cannot sync", &tmp_path))?;
            let parent = dest.parent().unwrap_or(&self.store.root);
            fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
            self.file.persist(&dest).map_err(|e| ArtifactError::Io {
                action: "cannot rename into",
                path: dest.clone(),
                source: e.error,
            })?;
        }
        Ok(ArtifactRef {
            hash,
            kind,
            media_type: media_type.unwrap_or(kind.default_media_type()).to_string(),
            size: self.size,
            name: name.map(str::to_string),
            metadata: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_content_is_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let a = store
            .put_bytes(b"{}", ArtifactKind::Json, None, None)
            .unwrap();
        let b = store
            .put_bytes(b"{}", ArtifactKind::Json, None, None)
            .unwrap();
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.media_type, "application/json");
        store.verify(&a.hash).unwrap();
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(store.root().join("sha256")).unwrap().count(),
            0
        );
    }

    #[test]
    fn corruption_and_absence_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let a = store
            .put_bytes(b"abc", ArtifactKind::Text, None, None)
            .unwrap();
        fs::write(store.path_of(&a.hash).unwrap(), b"abd").unwrap();
        assert!(matches!(
            store.verify(&a.hash),
            Err(ArtifactError::Corrupt { .. })
        ));
        let missing = ArtifactRef {
            hash: "0".repeat(64),
            ..a
        };
        assert!(matches!(
            store.read(&missing),
            Err(ArtifactError::Missing { .. })
        ));
        assert!(matches!(
            store.path_of("../../etc/passwd"),
            Err(ArtifactError::BadHash(_))
        ));
    }

    #[test]
    fn export_writes_through_a_temporary_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let a = store
            .put_bytes(b"data", ArtifactKind::File, None, None)
            .unwrap();
        let dest = dir.path().join("out/nested/file.bin");
        store.export(&a, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1);
    }
}
