"""Kernel confinement of the sandbox worker: Landlock and a seccomp filter, applied just before exec.

Self-contained (stdlib + ctypes only): the supervisor (_init.py) runs under ``python -I -S`` and loads
this file's source itself; runner.py imports it only to probe what the kernel offers.

Why these two on top of namespaces: they hold without any privilege (no user namespace, no root), so
the same containment applies in every isolation level, including "weak" (no namespaces at all):
  * Landlock (Linux >= 5.13; ABI 6 = 6.12 for the signal/abstract-socket scopes): writes only inside
    the work dir, reads only of the system and the interpreter, no TCP bind/connect, no signals and no
    ptrace (which also guards /proc/<pid>/environ and /proc/<pid>/mem) towards any process outside the
    sandbox's own domain;
  * seccomp (x86_64): no socket() at all (no UDP/raw, and no UNIX-socket connection to a host daemon
    such as docker.sock or D-Bus, which Landlock does not cover; socketpair() still works), no ptrace,
    process_vm_*, pidfd_send_signal/pidfd_getfd, no mounts, namespaces, io_uring, bpf, keyrings,
    modules; x32 and foreign-architecture system calls are refused.
"""

import ctypes
import os
import platform
import struct

_libc = ctypes.CDLL(None, use_errno=True)

# -- Landlock ---------------------------------------------------------------------------------------
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on every architecture
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_REMOVE_DIR, _FS_REMOVE_FILE, _FS_MAKE_CHAR, _FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_FS_MAKE_REG, _FS_MAKE_SOCK, _FS_MAKE_FIFO, _FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_FS_MAKE_SYM, _FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_READ = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
_CREATE = (_FS_REMOVE_DIR | _FS_REMOVE_FILE | _FS_MAKE_DIR | _FS_MAKE_REG | _FS_MAKE_SYM | _FS_REFER)
# Read-only roots: the system, never home dirs, /tmp, /work or the checkout (secrets, baselines).
SYSTEM_ROOTS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/dev")
FULL_SCOPES_ABI = 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi():
    """The Landlock ABI version this kernel offers; 0 when Landlock is missing or disabled."""
    v = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(v), 0)


def _fs_rights(abi):
    rights = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def apply_landlock(workdir, read_roots, scratch=(), *, create_files=True, require_scopes=False):
    """Restrict this process (and everything it starts) to reading ``read_roots`` and writing only
    inside ``workdir`` (and ``scratch``, private tmpfs mounts); no TCP; signals/ptrace only inside.

    ``create_files`` False: existing files in the work dir may be rewritten (each bounded by
    RLIMIT_FSIZE) but nothing new created, which bounds the disk used without a size-limited mount.
    Raises OSError when a required part is unavailable.
    """
    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    if require_scopes and abi < FULL_SCOPES_ABI:
        raise OSError(f"Landlock ABI {abi} < {FULL_SCOPES_ABI}: no signal scoping (needs Linux >= 6.12)")
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
                        (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= FULL_SCOPES_ABI else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= FULL_SCOPES_ABI else (16 if abi >= 4 else 8)
    rs = _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rs < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    write = _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
    rules = [(p, _READ) for p in read_roots]
    rules += [(workdir, handled & (_READ | write | (_CREATE if create_files else 0)))]
    rules += [(p, handled & (_READ | write | _CREATE)) for p in scratch]
    rules += [("/dev/null", _FS_READ_FILE | _FS_WRITE_FILE)]
    try:
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a root this system does not have
            try:
                if not os.path.isdir(path):
                    rights &= _FS_EXECUTE | _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
                rule = _PathBeneath(rights, fd)
                if _libc.syscall(_SYS_ADD_RULE, rs, 1, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        if _libc.syscall(_SYS_RESTRICT_SELF, rs, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(rs)


def landlock_layers(abi):
    """The layer names apply_landlock gives at ``abi`` (for reports)."""
    if abi < 1:
        return []
    return [f"landlock-abi{abi}", *(["landlock-no-tcp"] if abi >= 4 else []),
            *(["landlock-signal-scope"] if abi >= FULL_SCOPES_ABI else [])]


# -- seccomp ----------------------------------------------------------------------------------------
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
# x86_64 numbers: socket, ptrace, syslog, personality, chroot, acct, mount, umount2, swapon, swapoff, reboot,
# pivot_root, init/delete_module, quotactl, add_key, request_key, keyctl, kexec_load, unshare,
# perf_event_open, name_to_handle_at, open_by_handle_at, setns, process_vm_readv/writev, kcmp,
# finit_module, kexec_file_load, bpf, userfaultfd, pidfd_send_signal, io_uring_*, open_tree,
# move_mount, fsopen, fsconfig, fsmount, fspick, pidfd_getfd, mount_setattr.
_DENY_X86_64 = (41, 101, 103, 135, 161, 163, 165, 166, 167, 168, 169, 155, 175, 176, 179, 248, 249, 250, 246,
                272, 298, 303, 304, 308, 310, 311, 312, 313, 320, 321, 323, 424, 425, 426, 427, 428, 429,
                430, 431, 432, 433, 438, 442)
_SYS_CLONE, _SYS_CLONE3 = 56, 435
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_EPERM, _ENOSYS = 1, 38


def _errno(e):
    return 0x00050000 | e


def _insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _program():
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    out = [_insn(ld, 0, 0, 4), _insn(jeq, 1, 0, _AUDIT_ARCH_X86_64), _insn(ret, 0, 0, _RET_KILL),
           _insn(ld, 0, 0, 0), _insn(jge, 0, 1, _X32_BIT), _insn(ret, 0, 0, _errno(_EPERM))]
    for nr in _DENY_X86_64:
        out += [_insn(jeq, 0, 1, nr), _insn(ret, 0, 0, _errno(_EPERM))]
    # clone3 takes its flags in memory a filter cannot read: make libc fall back to clone.
    out += [_insn(jeq, 0, 1, _SYS_CLONE3), _insn(ret, 0, 0, _errno(_ENOSYS))]
    out += [_insn(jeq, 0, 3, _SYS_CLONE), _insn(ld, 0, 0, 16), _insn(jset, 0, 1, _CLONE_NS_FLAGS),
            _insn(ret, 0, 0, _errno(_EPERM)), _insn(ld, 0, 0, 0)]
    out.append(_insn(ret, 0, 0, _RET_ALLOW))
    return b"".join(out)


def seccomp_supported():
    return platform.machine() in ("x86_64", "AMD64")


def apply_seccomp():
    """Install the filter (needs no_new_privs); raises OSError when it cannot be installed."""
    if not seccomp_supported():
        raise OSError(f"no seccomp filter for architecture {platform.machine()}")
    prog = _program()
    buf = ctypes.create_string_buffer(prog, len(prog))

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Fprog(len(prog) // 8, ctypes.addressof(buf))
    if _libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
