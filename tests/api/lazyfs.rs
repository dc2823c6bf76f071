//! An in-memory FUSE file system that loses unsynced data at a simulated
//! power cut, in the manner of Jepsen's LazyFS.
//!
//! # Why
//!
//! Killing the server with SIGKILL proves little about durability: the
//! kernel's page cache survives the process, so everything the server
//! wrote — synced or not — is still there for the next reader. Only losing
//! the page cache shows whether an acknowledged dose was really on disk. This
//! module makes that loss happen on demand: the test puts the server's SQLite
//! directory on a [`LazyFs`] mount, kills the server, calls [`LazyFs::cut`],
//! and opens the copy that the cut leaves behind.
//!
//! # Model (the one LazyFS uses)
//!
//! * Metadata is durable as soon as the call returns: mkdir, create/mknod,
//!   unlink, rmdir, rename, and setattr of mode, owner and times.
//! * File data is not. Writes and truncation (setattr of size) change the
//!   file's current content, which every read sees at once, but reach the
//!   durable copy only when fsync or fdatasync is called on that file, through
//!   any handle of the inode. close, flush and release sync nothing, and
//!   fsyncdir is a no-op because directory changes are durable already.
//! * A file created and never synced therefore survives a cut empty.
//! * [`SyncMode::Ignore`] accepts fsync and fdatasync but makes nothing
//!   durable. It is the negative control: a test that passes under it is
//!   not testing anything.
//!
//! The durable copy is kept per inode and updated page by page (4 KiB):
//! an fsync copies only the pages written since the previous one, because
//! SQLite syncs files of tens of MB hundreds of times a second.
//!
//! # Kernel settings
//!
//! The kernel must not hold written data that the daemon has not seen, or a
//! write could escape the cut. Writeback caching is not requested, so every
//! write() reaches the daemon before it returns; attribute and entry TTLs are
//! zero. Files are not opened with direct I/O because SQLite maps the `-shm`
//! file shared, and no lock operations are implemented so that the kernel
//! keeps POSIX locks itself — which is what SQLite's WAL mode needs.
//!
//! No permission checks are made: the tests run as root.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, Session,
    SessionACL, TimeOrNow, WriteFlags,
};

/// Unit of dirty tracking, and of [`CutReport::dropped_bytes`].
const PAGE: usize = 4096;
/// Zero so that the kernel asks again rather than answer from a stale entry.
const TTL: Duration = Duration::ZERO;
/// Every file is held twice in memory; a runaway writer should fail, not
/// take the machine's memory.
const MAX_FILE_SIZE: u64 = 1 << 32;
/// Long enough for the kernel to write back a few dirty mmap pages, short
/// enough that a failing test still ends.
const UNMOUNT_TIMEOUT: Duration = Duration::from_secs(10);
const SESSION_EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const ROOT: u64 = INodeNo::ROOT.0;

/// Whether fsync and fdatasync make file data durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// As a disk would: synced data survives the cut.
    Honour,
    /// Syncs succeed but make nothing durable: a negative control that must
    /// lose data.
    Ignore,
}

/// What a [`LazyFs::cut`] kept and threw away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Regular files written into the cut's directory.
    pub files: usize,
    /// Bytes of file content written into the cut's directory.
    pub synced_bytes: u64,
    /// Unsynced file data the cut threw away, counted in whole 4 KiB pages
    /// written since the file's last sync, each clamped to the file's current
    /// length (so a 10-byte write to a 10-byte file counts 10). An unsynced
    /// truncation adds nothing. Files already unlinked are not counted.
    pub dropped_bytes: u64,
    /// fsync/fdatasync calls that made something durable.
    pub syncs: u64,
}

/// A mounted LazyFS-like file system. Dropping it unmounts it.
pub struct LazyFs {
    mountpoint: PathBuf,
    state: Arc<Mutex<State>>,
    session: Option<JoinHandle<io::Result<()>>>,
    mounted: bool,
}

impl LazyFs {
    /// Mounts an empty file system on `mountpoint`, an existing directory.
    pub fn mount(mountpoint: &Path, mode: SyncMode) -> io::Result<LazyFs> {
        // fuser mounts at the canonical path; umount2 must name the same one.
        let mountpoint = mountpoint.canonicalize()?;
        let root = Meta::from_dir(&fs::metadata(&mountpoint)?);
        let state = Arc::new(Mutex::new(State::new(mode, root)));

        let mut config = Config::default();
        config.mount_options = vec![MountOption::FSName("lazyfs".into())];
        // The server may drop privileges; the kernel would refuse it otherwise.
        config.acl = SessionACL::All;
        config.n_threads = Some(2);
        let session = Session::new(
            Daemon {
                state: Arc::clone(&state),
            },
            &mountpoint,
            &config,
        )?;
        let handle = thread::Builder::new()
            .name("lazyfs".into())
            .spawn(move || session.run())?;
        Ok(LazyFs {
            mountpoint,
            state,
            session: Some(handle),
            mounted: true,
        })
    }

    /// The power cut: call after every writer process has been killed.
    /// Unmounts, then writes the durable state (directories, and each file's
    /// content as of its last fsync/fdatasync) into `into` (an existing empty
    /// directory) as ordinary files, with their modes, owners and times.
    ///
    /// The durable state is frozen before the unmount, so data the kernel
    /// writes back while unmounting cannot count, and a process that still
    /// holds the mount only makes the unmount lazy.
    pub fn cut(mut self, into: &Path) -> io::Result<CutReport> {
        self.shutdown()?;
        let state = lock(&self.state);
        let mut report = CutReport {
            syncs: state.syncs,
            ..CutReport::default()
        };
        state.persist_dir(ROOT, into, &mut report)?;
        Ok(report)
    }

    fn shutdown(&mut self) -> io::Result<()> {
        lock(&self.state).power_off = true;
        let unmounted = if self.mounted {
            self.mounted = false;
            unmount(&self.mountpoint)
        } else {
            Ok(Unmount::Detached)
        };
        if let Some(session) = self.session.take() {
            // After a clean unmount the kernel ends the session at once.
            // After a lazy one it lives as long as its last user, so waiting
            // could hang; the thread is left to end on its own.
            if let Ok(Unmount::Clean) = unmounted {
                let deadline = Instant::now() + SESSION_EXIT_TIMEOUT;
                while !session.is_finished() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            if session.is_finished() {
                let _ = session.join();
            }
        }
        unmounted.map(|_| ())
    }
}

impl Drop for LazyFs {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

enum Unmount {
    Clean,
    /// Still in use, so only taken out of the namespace (or already gone).
    Detached,
}

/// Unmounts in a helper thread, because umount2 waits for the kernel to
/// write back dirty pages through the daemon, and a stuck daemon must not
/// hang the test.
fn unmount(mountpoint: &Path) -> io::Result<Unmount> {
    let path = CString::new(mountpoint.as_os_str().as_bytes())?;
    let (done, result) = mpsc::channel();
    thread::Builder::new()
        .name("lazyfs-umount".into())
        .spawn(move || {
            let _ = done.send(unmount_now(&path));
        })?;
    result.recv_timeout(UNMOUNT_TIMEOUT).unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("unmounting {} did not finish", mountpoint.display()),
        ))
    })
}

fn unmount_now(path: &CStr) -> io::Result<Unmount> {
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
        return Ok(Unmount::Clean);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // Someone unmounted it already.
        Some(libc::EINVAL) => Ok(Unmount::Detached),
        // A process that has not exited yet, or a shell's working directory,
        // still holds it. Detaching lets the test go on; the daemon keeps
        // serving that process until it lets go.
        Some(libc::EBUSY) => {
            // SAFETY: as above.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
                Ok(Unmount::Detached)
            } else {
                Err(io::Error::last_os_error())
            }
        }
        _ => Err(err),
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic in one request must not turn every later one, and the unmount
    // that waits on them, into a hang.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy)]
struct Meta {
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Meta {
    fn new(mode: u32, req: &Request) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm: (mode & 0o7777) as u16,
            uid: req.uid(),
            gid: req.gid(),
            atime: now,
            mtime: now,
            ctime: now,
        }
    }

    fn from_dir(dir: &fs::Metadata) -> Meta {
        let now = SystemTime::now();
        Meta {
            perm: (dir.mode() & 0o7777) as u16,
            uid: dir.uid(),
            gid: dir.gid(),
            atime: now,
            mtime: now,
            ctime: now,
        }
    }
}

struct Node {
    meta: Meta,
    kind: Kind,
}

enum Kind {
    Dir(Dir),
    File(FileData),
}

struct Dir {
    /// Needed to answer ".." and to refuse moving a directory into itself.
    parent: u64,
    entries: BTreeMap<OsString, u64>,
}

struct FileData {
    /// What reads see: the page cache.
    current: Vec<u8>,
    /// What survives a cut: the disk.
    durable: Vec<u8>,
    /// Pages of `current` written since the last sync.
    dirty: BTreeSet<usize>,
    /// The shortest `current` has been since the last sync. Bytes of
    /// `durable` past it were cut off and must not come back if the file
    /// grows again without being rewritten.
    low_water: usize,
    /// 0 once unlinked; the inode lives on while it is open.
    nlink: u32,
    open: u32,
}

impl FileData {
    fn new() -> FileData {
        FileData {
            current: Vec::new(),
            durable: Vec::new(),
            dirty: BTreeSet::new(),
            low_water: 0,
            nlink: 1,
            open: 0,
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&end| end <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        if data.is_empty() {
            return Ok(());
        }
        let (start, end) = (offset as usize, end as usize);
        if end > self.current.len() {
            // A hole left by writing past the end is zeros in both copies, so
            // its pages need not be marked.
            self.current.resize(end, 0);
        }
        self.current[start..end].copy_from_slice(data);
        self.dirty.extend(start / PAGE..=(end - 1) / PAGE);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let size = size as usize;
        self.current.resize(size, 0);
        self.low_water = self.low_water.min(size);
        Ok(())
    }

    /// Makes the current content durable; false if it already was.
    fn sync(&mut self) -> bool {
        let len = self.current.len();
        if self.dirty.is_empty() && self.low_water == len && self.durable.len() == len {
            return false;
        }
        self.durable.truncate(self.low_water);
        self.durable.resize(len, 0);
        for page in std::mem::take(&mut self.dirty) {
            let start = page * PAGE;
            if start < len {
                let end = (start + PAGE).min(len);
                self.durable[start..end].copy_from_slice(&self.current[start..end]);
            }
        }
        self.low_water = len;
        true
    }

    fn unsynced_bytes(&self) -> u64 {
        let len = self.current.len();
        self.dirty
            .iter()
            .map(|&page| page * PAGE)
            .filter(|&start| start < len)
            .map(|start| ((start + PAGE).min(len) - start) as u64)
            .sum()
    }
}

struct State {
    mode: SyncMode,
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    next_fh: u64,
    syncs: u64,
    /// Set by the cut: from then on nothing may change the durable state.
    power_off: bool,
}

impl State {
    fn new(mode: SyncMode, root: Meta) -> State {
        let root = Node {
            meta: root,
            kind: Kind::Dir(Dir {
                parent: ROOT,
                entries: BTreeMap::new(),
            }),
        };
        State {
            mode,
            nodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
            next_fh: 1,
            syncs: 0,
            power_off: false,
        }
    }

    fn powered(&self) -> Result<(), Errno> {
        if self.power_off {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&Dir, Errno> {
        match &self.node(ino)?.kind {
            Kind::Dir(dir) => Ok(dir),
            Kind::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut Dir, Errno> {
        match &mut self.node_mut(ino)?.kind {
            Kind::Dir(dir) => Ok(dir),
            Kind::File(_) => Err(Errno::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileData, Errno> {
        match &mut self.node_mut(ino)?.kind {
            Kind::File(file) => Ok(file),
            Kind::Dir(_) => Err(Errno::EISDIR),
        }
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let node = self.node(ino)?;
        let (kind, size, nlink) = match &node.kind {
            Kind::Dir(_) => (FileType::Directory, PAGE as u64, 2),
            Kind::File(file) => (FileType::RegularFile, file.current.len() as u64, file.nlink),
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: node.meta.atime,
            mtime: node.meta.mtime,
            ctime: node.meta.ctime,
            crtime: node.meta.ctime,
            kind,
            perm: node.meta.perm,
            nlink,
            uid: node.meta.uid,
            gid: node.meta.gid,
            rdev: 0,
            blksize: PAGE as u32,
            flags: 0,
        })
    }

    fn touch(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            let now = SystemTime::now();
            node.meta.mtime = now;
            node.meta.ctime = now;
        }
    }

    fn add(&mut self, parent: u64, name: &OsStr, meta: Meta, kind: Kind) -> Result<u64, Errno> {
        self.powered()?;
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node { meta, kind });
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        self.touch(parent);
        Ok(ino)
    }

    fn open(&mut self, ino: u64) -> Result<u64, Errno> {
        self.file_mut(ino)?.open += 1;
        let fh = self.next_fh;
        self.next_fh += 1;
        Ok(fh)
    }

    fn release(&mut self, ino: u64) {
        if let Ok(file) = self.file_mut(ino) {
            file.open = file.open.saturating_sub(1);
        }
        self.collect(ino);
    }

    /// Frees an unlinked file once nobody has it open.
    fn collect(&mut self, ino: u64) {
        if let Some(Node {
            kind: Kind::File(file),
            ..
        }) = self.nodes.get(&ino)
            && file.nlink == 0
            && file.open == 0
        {
            self.nodes.remove(&ino);
        }
    }

    /// Drops the inode that a removed or overwritten entry named.
    fn unlinked(&mut self, ino: u64) {
        match self.nodes.get_mut(&ino) {
            Some(Node {
                kind: Kind::File(file),
                meta,
            }) => {
                file.nlink = 0;
                meta.ctime = SystemTime::now();
                self.collect(ino);
            }
            Some(Node {
                kind: Kind::Dir(_), ..
            }) => {
                self.nodes.remove(&ino);
            }
            None => {}
        }
    }

    fn unlink(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.powered()?;
        let ino = self.child(parent, name)?;
        if let Kind::Dir(_) = self.node(ino)?.kind {
            return Err(Errno::EISDIR);
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.touch(parent);
        self.unlinked(ino);
        Ok(())
    }

    fn rmdir(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.powered()?;
        let ino = self.child(parent, name)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.touch(parent);
        self.unlinked(ino);
        Ok(())
    }

    /// True if `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: u64, ancestor: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.dir(ino) {
                Ok(dir) if ino != ROOT => ino = dir.parent,
                _ => return false,
            }
        }
    }

    fn set_parent(&mut self, ino: u64, parent: u64) {
        if let Ok(dir) = self.dir_mut(ino) {
            dir.parent = parent;
        }
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        self.powered()?;
        let known = RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE;
        if !known.contains(flags) {
            return Err(Errno::EINVAL);
        }
        let source = self.child(parent, name)?;
        let target = match self.child(new_parent, new_name) {
            Ok(ino) => Some(ino),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        let source_is_dir = matches!(self.node(source)?.kind, Kind::Dir(_));
        if source_is_dir && self.is_within(new_parent, source) {
            return Err(Errno::EINVAL);
        }

        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            let target = target.ok_or(Errno::ENOENT)?;
            if matches!(self.node(target)?.kind, Kind::Dir(_)) && self.is_within(parent, target) {
                return Err(Errno::EINVAL);
            }
            self.dir_mut(parent)?
                .entries
                .insert(name.to_owned(), target);
            self.dir_mut(new_parent)?
                .entries
                .insert(new_name.to_owned(), source);
            self.set_parent(target, parent);
            self.set_parent(source, new_parent);
            self.touch(parent);
            self.touch(new_parent);
            return Ok(());
        }

        if let Some(target) = target {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if target == source {
                return Ok(());
            }
            match (&self.node(target)?.kind, source_is_dir) {
                (Kind::Dir(dir), true) if !dir.entries.is_empty() => {
                    return Err(Errno::ENOTEMPTY);
                }
                (Kind::Dir(_), false) => return Err(Errno::EISDIR),
                (Kind::File(_), true) => return Err(Errno::ENOTDIR),
                _ => {}
            }
        }
        self.dir_mut(parent)?.entries.remove(name);
        let replaced = self
            .dir_mut(new_parent)?
            .entries
            .insert(new_name.to_owned(), source);
        if let Some(replaced) = replaced {
            self.unlinked(replaced);
        }
        self.set_parent(source, new_parent);
        self.touch(parent);
        self.touch(new_parent);
        if let Some(node) = self.nodes.get_mut(&source) {
            node.meta.ctime = SystemTime::now();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
    ) -> Result<FileAttr, Errno> {
        self.powered()?;
        let now = SystemTime::now();
        let resolve = |time| match time {
            TimeOrNow::SpecificTime(time) => time,
            TimeOrNow::Now => now,
        };
        if let Some(size) = size {
            self.file_mut(ino)?.truncate(size)?;
        }
        let meta = &mut self.node_mut(ino)?.meta;
        if size.is_some() {
            meta.mtime = now;
        }
        if let Some(mode) = mode {
            meta.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = uid {
            meta.uid = uid;
        }
        if let Some(gid) = gid {
            meta.gid = gid;
        }
        if let Some(atime) = atime {
            meta.atime = resolve(atime);
        }
        if let Some(mtime) = mtime {
            meta.mtime = resolve(mtime);
        }
        meta.ctime = now;
        self.attr(ino)
    }

    fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], Errno> {
        match &self.node(ino)?.kind {
            Kind::File(file) => {
                let len = file.current.len();
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
                let end = start.saturating_add(size as usize).min(len);
                Ok(&file.current[start..end])
            }
            Kind::Dir(_) => Err(Errno::EISDIR),
        }
    }

    fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.powered()?;
        self.file_mut(ino)?.write(offset, data)?;
        self.touch(ino);
        Ok(data.len() as u32)
    }

    fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        self.powered()?;
        let mode = self.mode;
        let synced = match &mut self.node_mut(ino)?.kind {
            Kind::File(file) if mode == SyncMode::Honour => file.sync(),
            _ => false,
        };
        if synced {
            self.syncs += 1;
        }
        Ok(())
    }

    fn used_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|node| match &node.kind {
                Kind::File(file) => file.current.len() as u64,
                Kind::Dir(_) => PAGE as u64,
            })
            .sum()
    }

    fn persist_dir(&self, dir: u64, dest: &Path, report: &mut CutReport) -> io::Result<()> {
        let Ok(entries) = self.dir(dir).map(|dir| &dir.entries) else {
            return Ok(());
        };
        for (name, &ino) in entries {
            let Some(node) = self.nodes.get(&ino) else {
                continue;
            };
            let path = dest.join(name);
            match &node.kind {
                Kind::Dir(_) => {
                    fs::create_dir(&path)?;
                    self.persist_dir(ino, &path, report)?;
                }
                Kind::File(file) => {
                    OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)?
                        .write_all(&file.durable)?;
                    report.files += 1;
                    report.synced_bytes += file.durable.len() as u64;
                    report.dropped_bytes += file.unsynced_bytes();
                }
            }
            // Last, so that writing the content or the children does not
            // change the times, and a read-only mode does not stop them.
            std::os::unix::fs::chown(&path, Some(node.meta.uid), Some(node.meta.gid))?;
            fs::set_permissions(&path, Permissions::from_mode(u32::from(node.meta.perm)))?;
            File::open(&path)?.set_times(
                FileTimes::new()
                    .set_accessed(node.meta.atime)
                    .set_modified(node.meta.mtime),
            )?;
        }
        Ok(())
    }
}

/// The FUSE side: turns requests into [`State`] calls under one lock, which
/// keeps concurrent requests (two session threads) consistent.
struct Daemon {
    state: Arc<Mutex<State>>,
}

impl Daemon {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn entry(&self, reply: ReplyEntry, result: Result<u64, Errno>) {
        let state = self.state();
        match result.and_then(|ino| state.attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }
}

fn empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn attr(reply: ReplyAttr, result: Result<FileAttr, Errno>) {
    match result {
        Ok(attr) => reply.attr(&TTL, &attr),
        Err(e) => reply.error(e),
    }
}

fn new_file(mode: u32) -> Result<Kind, Errno> {
    let format = mode & libc::S_IFMT;
    if format == 0 || format == libc::S_IFREG {
        Ok(Kind::File(FileData::new()))
    } else {
        Err(Errno::EPERM)
    }
}

impl Filesystem for Daemon {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let result = self.state().child(parent.0, name);
        self.entry(reply, result);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        attr(reply, self.state().attr(ino.0));
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = self
            .state()
            .setattr(ino.0, mode, uid, gid, size, atime, mtime);
        attr(reply, result);
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let result = new_file(mode).and_then(|kind| {
            self.state()
                .add(parent.0, name, Meta::new(mode & !umask, req), kind)
        });
        self.entry(reply, result);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let kind = Kind::Dir(Dir {
            parent: parent.0,
            entries: BTreeMap::new(),
        });
        let result = self
            .state()
            .add(parent.0, name, Meta::new(mode & !umask, req), kind);
        self.entry(reply, result);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.state().unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(reply, self.state().rmdir(parent.0, name));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let result = self
            .state()
            .rename(parent.0, name, newparent.0, newname, flags);
        empty(reply, result);
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().open(ino.0) {
            // No FOPEN_KEEP_CACHE: each open starts from the daemon's content.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = self.state();
        match state.read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(ino.0, offset, data) {
            Ok(written) => reply.written(written),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().release(ino.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        empty(reply, self.state().fsync(ino.0));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().dir(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.state();
        let dir = match state.dir(ino.0) {
            Ok(dir) => dir,
            Err(e) => return reply.error(e),
        };
        let dots = [
            (ino.0, FileType::Directory, OsStr::new(".")),
            (dir.parent, FileType::Directory, OsStr::new("..")),
        ];
        let children = dir.entries.iter().map(|(name, &child)| {
            let kind = match state.nodes.get(&child).map(|node| &node.kind) {
                Some(Kind::Dir(_)) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            (child, kind, name.as_os_str())
        });
        // Each entry's offset is where the next readdir resumes.
        for (next, (child, kind, name)) in dots
            .into_iter()
            .chain(children)
            .enumerate()
            .skip(offset as usize)
        {
            if reply.add(INodeNo(child), next as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let state = self.state();
        let total_blocks: u64 = MAX_FILE_SIZE / PAGE as u64;
        let used_blocks = state.used_bytes().div_ceil(PAGE as u64);
        let free = total_blocks.saturating_sub(used_blocks);
        let files = state.nodes.len() as u64;
        reply.statfs(
            total_blocks,
            free,
            free,
            files + 1_000_000,
            1_000_000,
            PAGE as u32,
            255,
            PAGE as u32,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        empty(reply, self.state().node(ino.0).map(|_| ()));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let result = new_file(mode)
            .and_then(|kind| state.add(parent.0, name, Meta::new(mode & !umask, req), kind))
            .and_then(|ino| Ok((state.open(ino)?, state.attr(ino)?)));
        match result {
            Ok((fh, attr)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::DirBuilder;
    use std::io::{Seek, SeekFrom};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    use super::*;

    /// A scratch directory holding the mountpoint and the cut's target.
    fn scratch() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        let out = dir.path().join("cut");
        fs::create_dir(&mnt).unwrap();
        fs::create_dir(&out).unwrap();
        (dir, mnt, out)
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn cut_keeps_exactly_the_synced_content() {
        let (_dir, mnt, out) = scratch();
        let lazy = LazyFs::mount(&mnt, SyncMode::Honour).unwrap();
        let synced: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        {
            let mut file = File::create(mnt.join("data")).unwrap();
            file.write_all(&synced).unwrap();
            file.sync_all().unwrap();
            file.seek(SeekFrom::Start(5_000)).unwrap();
            file.write_all(&[0xAA; 100]).unwrap();
            file.seek(SeekFrom::End(0)).unwrap();
            file.write_all(&[0xBB; 3_000]).unwrap();
        }
        let seen = fs::read(mnt.join("data")).unwrap();
        assert_eq!(seen.len(), 13_000, "reads see unsynced writes at once");
        assert_eq!(seen[5_000..5_100], [0xAA; 100]);

        let report = lazy.cut(&out).unwrap();

        assert_eq!(fs::read(out.join("data")).unwrap(), synced);
        assert_eq!(report.files, 1);
        assert_eq!(report.synced_bytes, 10_000);
        assert_eq!(report.syncs, 1);
        // Pages 1 and 2 whole, page 3 up to the end of the file at 13 000.
        assert_eq!(report.dropped_bytes, 4096 + 4096 + (13_000 - 3 * 4096));
    }

    #[test]
    fn cut_undoes_unsynced_truncation_but_keeps_metadata() {
        let (_dir, mnt, out) = scratch();
        let lazy = LazyFs::mount(&mnt, SyncMode::Honour).unwrap();
        {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(mnt.join("a"))
                .unwrap();
            file.write_all(&[7; 8192]).unwrap();
            file.sync_data().unwrap();
            file.set_len(100).unwrap();
        }
        assert_eq!(fs::metadata(mnt.join("a")).unwrap().len(), 100);
        fs::rename(mnt.join("a"), mnt.join("b")).unwrap();
        DirBuilder::new().mode(0o700).create(mnt.join("d")).unwrap();
        fs::write(mnt.join("d/gone"), b"unlinked").unwrap();
        fs::remove_file(mnt.join("d/gone")).unwrap();
        fs::write(mnt.join("d/new"), b"never synced").unwrap();

        let report = lazy.cut(&out).unwrap();

        assert_eq!(fs::read(out.join("b")).unwrap(), [7; 8192]);
        assert!(!out.join("a").exists());
        assert!(!out.join("d/gone").exists());
        assert_eq!(fs::read(out.join("d/new")).unwrap(), b"");
        assert_eq!(mode_of(&out.join("b")), 0o600);
        assert_eq!(mode_of(&out.join("d")), 0o700);
        assert_eq!(report.files, 2);
        assert_eq!(report.synced_bytes, 8192);
        assert_eq!(report.syncs, 1);
    }

    #[test]
    fn ignored_fsync_loses_data() {
        let (_dir, mnt, out) = scratch();
        let lazy = LazyFs::mount(&mnt, SyncMode::Ignore).unwrap();
        {
            let mut file = File::create(mnt.join("data")).unwrap();
            file.write_all(&[1; 8192]).unwrap();
            file.sync_all().unwrap();
        }
        assert_eq!(fs::read(mnt.join("data")).unwrap(), [1; 8192]);

        let report = lazy.cut(&out).unwrap();

        assert_eq!(fs::read(out.join("data")).unwrap(), b"");
        assert_eq!(report.syncs, 0);
        assert_eq!(report.synced_bytes, 0);
        assert_eq!(report.dropped_bytes, 8192);
    }
}
