//! Reading a file a user or a project names. A named path can be anything: a FIFO or a device
//! reads forever and says it is 0 bytes long, and a file can grow between asking its size and
//! reading it, so the size is never trusted: at most one byte past the limit is ever read.

use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a regular file")]
    NotRegular { path: PathBuf },
    #[error("{path} is {bytes} bytes, more than the {limit} it may be")]
    TooLarge { path: PathBuf, bytes: u64, limit: u64 },
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let io = |source| FileError::Io { path: path.to_path_buf(), source };
    // Asked before opening: opening a FIFO waits for a writer.
    let claimed = std::fs::metadata(path).map_err(io)?;
    if !claimed.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf() });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    // Asked again of what was opened, in case the path was replaced in between.
    if !file.metadata().map_err(io)?.is_file() {
        return Err(FileError::NotRegular { path: path.to_path_buf() });
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            bytes: claimed.len().max(bytes.len() as u64),
            limit,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_up_to_its_limit_and_refused_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("five");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_limited(&path, 5).unwrap(), b"12345");
        assert_eq!(
            read_limited(&path, 4).unwrap_err().to_string(),
            format!("{} is 5 bytes, more than the 4 it may be", path.display())
        );
        assert!(read_limited(&dir.path().join("absent"), 5).unwrap_err().to_string().contains("cannot read"));
        assert_eq!(
            read_limited(dir.path(), 5).unwrap_err().to_string(),
            format!("{} is not a regular file", dir.path().display())
        );
    }

    /// A FIFO claims 0 bytes and, opened, waits for a writer forever: it must be refused unopened.
    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_device_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.mid");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        assert_eq!(
            read_limited(&fifo, 1 << 20).unwrap_err().to_string(),
            format!("{} is not a regular file", fifo.display())
        );
        let endless = Path::new("/dev/zero");
        assert_eq!(read_limited(endless, 1 << 20).unwrap_err().to_string(), "/dev/zero is not a regular file");
    }
}
