//! Opening a file to serve: plainly, or with `disable_symlinks on` one
//! component at a time with `O_NOFOLLOW` (`openat(2)` through rustix's safe
//! wrapper), so that no symbolic link anywhere on the path is followed, with
//! no window between a check and the open.

use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{openat, statat, AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

/// The file or directory at `path`, open for reading, and its metadata.
pub fn open(path: &Path, no_symlinks: bool) -> io::Result<(File, Metadata)> {
    let file = if no_symlinks {
        open_no_symlinks(path)?
    } else {
        File::open(path)?
    };
    let meta = file.metadata()?;
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
}
