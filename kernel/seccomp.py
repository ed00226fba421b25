"""The seccomp filter every sandboxed kernel runs under, given to bubblewrap as ``--seccomp FD``.

The filter allows everything by default and denies what Docker's default profile denies, plus
the socket families and kernel interfaces a code interpreter has no use for. It is built with
libseccomp (through PyPI's ``pyseccomp``, ctypes over Debian's ``libseccomp2``), never written as
raw BPF by hand. Syscalls of other architectures (a 32-bit ``int 0x80`` from x86-64 code) kill
the process: libseccomp's filter checks the architecture first.

What is denied, and why (docs/kernel.md repeats this for readers):

- sockets other than ``AF_UNIX``, ``AF_INET`` and ``AF_INET6``: ``AF_VSOCK`` reaches the
  hypervisor, ``AF_NETLINK`` the kernel's routing and audit interfaces, ``AF_PACKET``,
  ``AF_ALG``, ``AF_BLUETOOTH`` and the rest are attack surface with no use here;
- ``io_uring_*``: a second syscall path that seccomp cannot see into, and a frequent source
  of kernel exploits;
- ``ptrace``, ``process_vm_readv/writev``, ``kcmp``: reading and steering other processes;
- ``keyctl``, ``add_key``, ``request_key``: the kernel keyring is not namespaced;
- ``bpf``, ``perf_event_open``, ``userfaultfd``: kernel attack surface (and timing side channels);
- ``unshare``, ``setns``, ``clone``/``clone3`` with namespace flags, ``mount`` and the new mount
  API, ``pivot_root``, ``umount2``: leaving or rebuilding the sandbox's namespaces;
- modules, kexec, reboot, swap, clock and quota changes, ``acct``, ``syslog``, NUMA policy,
  handles by ``open_by_handle_at``: host administration, as in Docker's profile.
"""

from __future__ import annotations

import errno
import functools
import os

from kernel.errors import KernelStartError

#: Socket families kernel code may open: local sockets (ZeroMQ's ipc transport, asyncio) and IP
#: (only the sandbox's own loopback exists in its network namespace).
ALLOWED_FAMILIES = (1, 2, 10)  # AF_UNIX, AF_INET, AF_INET6
_AF_NETLINK = 16
#: Family numbers above this are denied wholesale (Linux defines fewer than 50).
_FAMILY_RANGE = 64

#: Denied with EPERM, as Docker's default profile does (names unknown to this architecture are skipped).
DENIED_SYSCALLS = (
    # processes and memory of others
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    # the kernel keyring
    "keyctl", "add_key", "request_key",
    # kernel attack surface
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr",
    # host administration
    "acct", "syslog", "reboot", "swapon", "swapoff", "sethostname", "setdomainname",
    "init_module", "finit_module", "delete_module", "create_module", "query_module", "get_kernel_syms",
    "kexec_load", "kexec_file_load", "clock_adjtime", "clock_settime", "settimeofday", "stime",
    "quotactl", "quotactl_fd", "nfsservctl", "lookup_dcookie", "uselib", "ustat", "sysfs", "_sysctl",
    "vhangup", "iopl", "ioperm", "fanotify_init", "name_to_handle_at", "open_by_handle_at",
    "get_mempolicy", "set_mempolicy", "mbind", "move_pages", "vm86", "vm86old",
)  # fmt: skip

#: clone flags that create namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME).
_CLONE_NAMESPACE_FLAGS = (
    0x00020000,
    0x02000000,
    0x04000000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
    0x00000080,
)
#: personality() bits Docker refuses: READ_IMPLIES_EXEC and ADDR_NO_RANDOMIZE.
_PERSONALITY_BITS = (0x0400000, 0x0040000)


@functools.lru_cache(maxsize=1)
def seccomp_program() -> bytes:
    """The filter as the BPF program bubblewrap loads (built once per process).

    Raises:
        KernelStartError: If libseccomp or pyseccomp is missing.
    """
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError) as error:  # pyseccomp raises RuntimeError without libseccomp
        raise KernelStartError(
            f"The sandbox's seccomp filter cannot be built ({error}). Install libseccomp "
            "(apt-get install libseccomp2) and pyseccomp (pip install pyseccomp)."
        ) from error
    deny = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            rules.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):
            continue  # not a syscall of this architecture
    no_family = seccomp.ERRNO(errno.EAFNOSUPPORT)
    # Netlink gets EOPNOTSUPP: glibc's getifaddrs passes it on, and libzmq (which calls getifaddrs
    # for every tcp bind, ipykernel's IOPub pipe included) treats that errno as "no interfaces"
    # where any other aborts the kernel.
    no_netlink = seccomp.ERRNO(errno.EOPNOTSUPP)
    for call in ("socket", "socketpair"):
        for family in range(_FAMILY_RANGE):
            if family not in ALLOWED_FAMILIES:
                action = no_netlink if family == _AF_NETLINK else no_family
                rules.add_rule(action, call, seccomp.Arg(0, seccomp.EQ, family))
        rules.add_rule(no_family, call, seccomp.Arg(0, seccomp.GE, _FAMILY_RANGE))
    for flag in _CLONE_NAMESPACE_FLAGS:
        rules.add_rule(deny, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    # clone3 passes its flags in memory, where a filter cannot look: ENOSYS makes glibc fall back
    # to clone, whose flags are checked above (Docker does the same).
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for bit in _PERSONALITY_BITS:
        rules.add_rule(deny, "personality", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    with os.fdopen(os.memfd_create("workbench-seccomp-build", os.MFD_CLOEXEC), "w+b") as buffer:
        rules.export_bpf(buffer)
        buffer.seek(0)
        return buffer.read()


def seccomp_fd() -> int:
    """A fresh file descriptor holding :func:`seccomp_program`, positioned at its start.

    bubblewrap reads the program from the descriptor given to ``--seccomp``; the caller passes
    it to the child (``pass_fds``) and closes it after the launch.
    """
    program = seccomp_program()
    fd = os.memfd_create("workbench-seccomp", os.MFD_CLOEXEC)
    try:
        view = memoryview(program)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd
