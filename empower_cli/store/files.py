"""What the host's filesystem means for the database: network filesystems (where SQLite's
locking is unreliable) and group-shared directories (several accounts, one database).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# Filesystem types whose locking SQLite cannot trust (SQLite FAQ: "network filesystems").
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "smb", "fuse.sshfs", "sshfs", "9p", "afs", "ceph",
    "glusterfs", "fuse.glusterfs", "lustre", "gpfs", "davfs", "fuse.davfs2", "fuse.s3fs",
    "fuse.rclone", "fuse.gcsfuse", "ncpfs", "coda", "ocfs2", "gfs2",
})  # fmt: skip
MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem holding PATH (or its nearest existing parent), from
    /proc/self/mountinfo; None where that cannot be read (not Linux)."""
    if mountinfo is None:
        try:
            mountinfo = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = _existing(path)
    best, best_type = -1, None
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        mount = _unescape(fields[4])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/") or mount == "/"
        if inside and len(mount) >= best:  # the last, most specific mount wins
            best, best_type = len(mount), tail[0]
    return best_type


def network_filesystem(path: Path, mountinfo: str | None = None) -> str | None:
    """The filesystem type when PATH is on a network filesystem, else None."""
    kind = filesystem_type(path, mountinfo)
    return kind if kind is not None and kind.lower() in NETWORK_FILESYSTEMS else None


def _existing(path: Path) -> str:
    """PATH made absolute, with the symbolic links of its existing part resolved."""
    p, tail = Path(os.path.abspath(path)), []
    while not p.exists() and p != p.parent:
        tail.append(p.name)
        p = p.parent
    return str(p.resolve().joinpath(*reversed(tail)))


# -- several accounts, one database --------------------------------------------------------


def group_shared(directory: Path) -> bool:
    """A directory its group may write to is meant to be shared by that group."""
    try:
        return bool(directory.stat().st_mode & stat.S_IWGRP)
    except OSError:
        return False


def share_with_group(files: list[Path], directory: Path) -> None:
    """Make our own files in a group-shared DIRECTORY readable and writable by its group
    (and owned by that group), so another account's run can open them for writing.
    Never touches the 'other' bits; files of other accounts are left alone."""
    try:
        dir_stat = directory.stat()
    except OSError:
        return
    if not dir_stat.st_mode & stat.S_IWGRP:
        return
    uid = os.geteuid()
    for f in files:
        try:
            st = f.stat()
            if st.st_uid != uid:
                continue
            if st.st_gid != dir_stat.st_gid:
                os.chown(f, -1, dir_stat.st_gid)
            wanted = st.st_mode | stat.S_IRGRP | stat.S_IWGRP
            if wanted != st.st_mode:
                os.chmod(f, stat.S_IMODE(wanted))
        except OSError:
            continue  # not a member of that group, or the file went away: SQLite will say so


def create_shared_file(path: Path) -> None:
    """Create an empty database file (a valid empty SQLite database) group-writable when its
    directory is group-shared. SQLite itself creates files 0644 whatever the umask, and another
    account that opens the file before we could widen it would stay read-only."""
    if path.exists() or not group_shared(path.parent):
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o664)
    except OSError:
        return  # another process created it first, or we cannot: SQLite will report it
    try:
        os.fchmod(fd, 0o664)  # the umask does not narrow it; never writable by others
    finally:
        os.close(fd)


def make_shared_dir(directory: Path) -> None:
    """A directory created inside a setgid, group-writable parent is made the same."""
    try:
        parent = directory.parent.stat()
        if parent.st_mode & stat.S_ISGID and parent.st_mode & stat.S_IWGRP:
            mode = directory.stat().st_mode
            os.chmod(directory, stat.S_IMODE(mode | stat.S_IRWXG | stat.S_ISGID))
    except OSError:
        pass
