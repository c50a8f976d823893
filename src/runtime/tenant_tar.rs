//! Tars of a tenant's directories: packed from the fd-relative walk of [`tenant_fs`], and
//! unpacked through its [`DirSink`], so neither side ever follows a symlink. Unpacking refuses
//! entries that escape the target (`..`, absolute paths, a path through a symlink).

use super::tenant_fs::{self, DirSink, Meta, Node, Sink};
use std::io::{self, Read, Write};
use std::path::Path;

struct TarSink<W: Write> {
    tar: tar::Builder<W>,
}

fn header(meta: &Meta, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode);
    h.set_uid(meta.uid.into());
    h.set_gid(meta.gid.into());
    h.set_mtime(meta.mtime.max(0) as u64);
    h.set_size(0);
    h
}

impl<W: Write> Sink for TarSink<W> {
    fn put(&mut self, rel: &Path, meta: &Meta, node: Node<'_>) -> io::Result<()> {
        match node {
            Node::Dir => {
                let mut h = header(meta, tar::EntryType::Directory);
                self.tar.append_data(&mut h, rel, io::empty())
            }
            Node::File(data) => {
                let mut h = header(meta, tar::EntryType::Regular);
                h.set_size(meta.size);
                self.tar.append_data(&mut h, rel, data)
            }
            Node::Symlink(target) => {
                let mut h = header(meta, tar::EntryType::Symlink);
                self.tar.append_link(&mut h, rel, target)
            }
        }
    }
}

/// A tar of the tree under `dir` written to `to`, which is handed back finished.
pub fn pack<W: Write>(dir: &Path, to: W) -> io::Result<W> {
    let mut sink = TarSink {
        tar: tar::Builder::new(to),
    };
    tenant_fs::walk(dir, &mut sink)?;
    sink.tar.into_inner()
}

/// Unpacks a tar into the existing directory `into`. Directories, regular files and symlinks
/// are kept (owners and permissions too, set-id bits dropped); other kinds are skipped.
pub fn unpack<R: Read>(from: R, into: &Path) -> io::Result<()> {
    let mut sink = DirSink::new(into)?;
    let mut archive = tar::Archive::new(from);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let h = entry.header();
        let meta = Meta {
            mode: h.mode()? & 0o1777,
            uid: h.uid()? as u32,
            gid: h.gid()? as u32,
            mtime: h.mtime()? as i64,
            size: h.size()?,
        };
        let kind = h.entry_type();
        let path = entry.path()?.into_owned();
        match kind {
            tar::EntryType::Directory => sink.put(&path, &meta, Node::Dir)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                sink.put(&path, &meta, Node::File(&mut entry))?
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| io::Error::other("a symlink without a target"))?
                    .into_owned();
                sink.put(&path, &meta, Node::Symlink(target.into_os_string()))?
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// Longer than the 100 bytes of a plain tar name.
    const LONG: &str = "long-name-long-name-long-name-long-name-long-name-long-name-long-name/\
                        long-name-long-name-long-name-long-name-long-name-long-name-long-name/x";

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(src.join("a/b")).unwrap();
        std::fs::write(src.join("a/b/file"), b"attachment").unwrap();
        std::fs::set_permissions(src.join("a/b/file"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::os::unix::fs::symlink("/etc", src.join("a/escape")).unwrap();
        std::os::unix::fs::symlink("b/file", src.join("a/inside")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let deep = src.join(LONG);
        std::fs::create_dir_all(deep.parent().unwrap()).unwrap();
        std::fs::write(&deep, b"deep").unwrap();
        t
    }

    #[test]
    fn packs_and_unpacks_symlinks_as_links() {
        let t = tree();
        let bytes = pack(&t.path().join("src"), Vec::new()).unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(bytes.as_slice(), &out).unwrap();
        assert_eq!(std::fs::read(out.join("a/b/file")).unwrap(), b"attachment");
        let mode = std::fs::metadata(out.join("a/b/file")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read_link(out.join("a/escape")).unwrap(),
            Path::new("/etc")
        );
        assert_eq!(
            std::fs::read_link(out.join("a/inside")).unwrap(),
            Path::new("b/file")
        );
        assert!(!out.join("fifo").exists(), "a fifo is left out");
        assert_eq!(std::fs::read(out.join(LONG)).unwrap(), b"deep");
        // Unpacking again over the same files is refused rather than written through.
        assert!(unpack(bytes.as_slice(), &out).is_err());
    }

    #[test]
    fn copy_tree_keeps_links_and_skips_specials() {
        let t = tree();
        let out = t.path().join("copy");
        std::fs::create_dir(&out).unwrap();
        tenant_fs::copy_tree(&t.path().join("src"), &out).unwrap();
        assert_eq!(std::fs::read(out.join("a/b/file")).unwrap(), b"attachment");
        assert_eq!(
            std::fs::read_link(out.join("a/escape")).unwrap(),
            Path::new("/etc")
        );
        assert!(std::fs::symlink_metadata(out.join("fifo")).is_err());
    }

    #[test]
    fn unpacks_tars_the_old_walk_made() {
        // Backups made before the fd walk: `append_dir_all(".", dir)` without following links.
        let t = tree();
        std::fs::remove_file(t.path().join("src/fifo")).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(false);
        b.append_dir_all(".", t.path().join("src")).unwrap();
        let bytes = b.into_inner().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        unpack(bytes.as_slice(), &out).unwrap();
        assert_eq!(std::fs::read(out.join("a/b/file")).unwrap(), b"attachment");
        assert_eq!(
            std::fs::read_link(out.join("a/escape")).unwrap(),
            Path::new("/etc")
        );
        assert_eq!(std::fs::read(out.join(LONG)).unwrap(), b"deep");
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            let name = h.as_gnu_mut().unwrap();
            name.name[..path.len()].copy_from_slice(path.as_bytes());
            if *kind == tar::EntryType::Symlink {
                h.set_link_name(data).unwrap();
                h.set_size(0);
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            } else {
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_bytes()).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpack_refuses_escapes() {
        use tar::EntryType::{Regular, Symlink};
        let t = tempfile::tempdir().unwrap();
        let cases = [
            tar_of(&[("../outside", Regular, "x")]),
            tar_of(&[("/abs", Regular, "x")]),
            tar_of(&[("link", Symlink, ".."), ("link/outside", Regular, "x")]),
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let into = t.path().join(format!("into{i}"));
            std::fs::create_dir(&into).unwrap();
            assert!(unpack(bytes.as_slice(), &into).is_err(), "case {i}");
        }
        assert!(!t.path().join("outside").exists());
        assert!(!Path::new("/abs").exists());
    }
}
