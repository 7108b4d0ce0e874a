//! Small file-system helpers shared by start-up code.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Write `data` to `path` with `mode` via a temporary file and a rename, so
/// a crash never leaves half a key or certificate behind.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    // `mode` at creation is filtered by the umask; set it exactly.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
    fs::rename(&tmp, path)
}

/// Read a private key file, refusing one that other accounts may read or
/// write (any group or other permission bit): a key another local user can
/// copy is no longer the CA's alone, and scepd should not sign with it as
/// if it were.
pub(crate) fn read_private(path: &Path) -> std::io::Result<Vec<u8>> {
    let mode = fs::metadata(path)?.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "mode {mode:04o} lets other accounts reach this private key; \
                 make it 0600 (chmod 600 {}) and check who may have copied it",
                path.display()
            ),
        ));
    }
    fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_key_open_to_others_is_refused_and_0600_is_read() {
        let dir = std::env::temp_dir().join(format!("scepd-fsutil-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.key");
        write_atomic(&key, b"secret", 0o600).unwrap();
        assert_eq!(read_private(&key).unwrap(), b"secret");
        write_atomic(&key, b"secret", 0o400).unwrap();
        assert_eq!(read_private(&key).unwrap(), b"secret");
        for wide in [0o640, 0o604, 0o644, 0o660, 0o606] {
            fs::set_permissions(&key, fs::Permissions::from_mode(wide)).unwrap();
            let err = read_private(&key).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(err.to_string().contains(&format!("{wide:04o}")), "{err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
