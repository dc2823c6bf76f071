//! Folders only the service's own user may enter: they hold the database,
//! the master key by default, and sealed uploads.

use std::path::Path;

/// Creates the folder (and its parents) with mode 700. An existing folder
/// is left as it is.
pub fn create(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}
