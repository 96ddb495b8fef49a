//! Opening a file to serve: plainly, or with `disable_symlinks on` one
//! component at a time with `O_NOFOLLOW` (`openat(2)` through rustix's safe
//! wrapper), so that no symbolic link anywhere on the path is followed, with
//! no window between a check and the open.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{fstat, openat, statat, AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// What serving reads of an open file: `fstat(2)`'s size, modification
/// time and type (std's `Metadata` asks `statx` for every field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub size: u64,
    /// Seconds since the epoch (before it: negative).
    pub mtime_unix: i64,
    kind: FileType,
}

impl Meta {
    /// The metadata of the open `file`.
    pub fn of(file: &impl std::os::fd::AsFd) -> io::Result<Meta> {
        let st = fstat(file)?;
        Ok(Meta {
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_unix: st.st_mtime,
            kind: FileType::from_raw_mode(st.st_mode),
        })
    }

    pub fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }

    pub fn is_file(&self) -> bool {
        self.kind == FileType::RegularFile
    }
}

/// The file or directory at `path`, open for reading, and its metadata.
pub fn open(path: &Path, no_symlinks: bool) -> io::Result<(File, Meta)> {
    let file = if no_symlinks {
        open_no_symlinks(path)?
    } else {
        // rustix's system calls, not std's `File::open` and `metadata`: the
        // same two calls (openat, fstat) with less on the way, on every
        // file response. Non-blocking, as nginx: a FIFO under the root
        // does not stall the worker (it is then refused as not a regular
        // file); regular files ignore the flag.
        File::from(rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )?)
    };
    let meta = Meta::of(&file)?;
    Ok((file, meta))
}

fn open_no_symlinks(path: &Path) -> io::Result<File> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let last_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let parts: Vec<Component<'_>> = path.components().collect();
    let mut at: Option<OwnedFd> = None;
    let count = parts.len();
    for (i, part) in parts.into_iter().enumerate() {
        let name: &std::ffi::OsStr = match part {
            Component::RootDir => "/".as_ref(),
            Component::CurDir => ".".as_ref(),
            Component::ParentDir => "..".as_ref(),
            Component::Normal(n) => n,
            Component::Prefix(_) => return Err(io::ErrorKind::InvalidInput.into()),
        };
        let flags = if i + 1 == count {
            last_flags
        } else {
            dir_flags
        };
        let opened = match &at {
            Some(dir) => openat(dir, name, flags, Mode::empty()),
            None => openat(CWD, name, flags, Mode::empty()),
        };
        let fd = match opened {
            Ok(fd) => fd,
            // A link where a directory was expected says ENOTDIR: it is the
            // link that was refused (ELOOP, nginx's 403), not a missing file.
            Err(Errno::NOTDIR | Errno::LOOP) if is_symlink(at.as_ref(), name) => {
                return Err(Errno::LOOP.into())
            }
            Err(e) => return Err(e.into()),
        };
        at = Some(fd);
    }
    match at {
        Some(fd) => Ok(File::from(fd)),
        None => Err(io::ErrorKind::NotFound.into()),
    }
}

/// Whether `name` in `dir` (or the working directory) is a symbolic link.
fn is_symlink(dir: Option<&OwnedFd>, name: &std::ffi::OsStr) -> bool {
    let stat = match dir {
        Some(d) => statat(d, name, AtFlags::SYMLINK_NOFOLLOW),
        None => statat(CWD, name, AtFlags::SYMLINK_NOFOLLOW),
    };
    stat.is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_are_refused_anywhere_on_the_path_when_asked() {
        let dir = std::env::temp_dir().join(format!("sp-open-{}", std::process::id()));
        let real = dir.join("real");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("f.txt"), b"hi").unwrap();
        std::os::unix::fs::symlink(&real, dir.join("linkdir")).unwrap();
        std::os::unix::fs::symlink(real.join("f.txt"), real.join("link.txt")).unwrap();
        for p in ["real/f.txt", "linkdir/f.txt", "real/link.txt"] {
            assert!(open(&dir.join(p), false).is_ok(), "{p}");
        }
        assert!(open(&dir.join("real/f.txt"), true).is_ok());
        assert!(open(&dir.join("real"), true).unwrap().1.is_dir());
        for p in ["linkdir/f.txt", "real/link.txt", "linkdir"] {
            let e = open(&dir.join(p), true).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(Errno::LOOP.raw_os_error()), "{p}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn meta_is_fstat_s_size_time_and_type_and_a_fifo_does_not_block() {
        let dir = std::env::temp_dir().join(format!("sp-open-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"12345").unwrap();
        let (f, m) = open(&dir.join("f"), false).unwrap();
        let std_meta = f.metadata().unwrap();
        assert_eq!(m.size, 5);
        assert!(m.is_file() && !m.is_dir());
        let secs = std_meta
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert_eq!(m.mtime_unix, i64::try_from(secs).unwrap());
        let (_, d) = open(&dir, false).unwrap();
        assert!(d.is_dir() && !d.is_file());
        // A FIFO opens at once (no writer needed) and is not a regular file.
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::RUSR | Mode::WUSR, 0).unwrap();
        for no_symlinks in [false, true] {
            let (_, m) = open(&fifo, no_symlinks).unwrap();
            assert!(!m.is_file() && !m.is_dir());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
