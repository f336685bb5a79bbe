#!/usr/bin/python3
"""Load a container seccomp profile (the OCI/Docker JSON a Kubernetes
"Localhost" seccompProfile names) with libseccomp, then act under it:

    seccomp_exec.py PROFILE exec CMD [ARG...]   exec CMD under the filter
    seccomp_exec.py [--no-filter] PROFILE try   try some system calls under the
                                                filter (or without it, to compare);
                                                one line per call: "NAME ok" or
                                                "NAME errno ENAME"

The profile is read the way runc reads it: defaultAction (+ defaultErrnoRet),
architectures, syscalls[].names/action/errnoRet/args (index, value,
valueTwo, op); a name the native architecture does not have is skipped.
Needs python3-seccomp (Debian). Run it as root: "try" unshares a network
namespace, which needs CAP_SYS_ADMIN."""
import ctypes
import errno
import json
import os
import sys

import seccomp

OPS = {
    "SCMP_CMP_EQ": seccomp.EQ, "SCMP_CMP_NE": seccomp.NE, "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE, "SCMP_CMP_GT": seccomp.GT, "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}
ARCHES = {
    "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X32": "X32",
    "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_ARM": "ARM",
}


def action(name, errno_ret):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return seccomp.ERRNO(errno_ret if errno_ret is not None else errno.EPERM)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    sys.exit(f"seccomp_exec: unsupported action {name!r}")


def load(path):
    with open(path, encoding="utf-8") as f:
        prof = json.load(f)
    f = seccomp.SyscallFilter(defaction=action(prof["defaultAction"],
                                               prof.get("defaultErrnoRet")))
    for a in prof.get("architectures", []):
        arch = getattr(seccomp.Arch, ARCHES.get(a, ""), None)
        if arch is None:
            sys.exit(f"seccomp_exec: unknown architecture {a!r}")
        if not f.exist_arch(arch):
            f.add_arch(arch)
    for rule in prof["syscalls"]:
        act = action(rule["action"], rule.get("errnoRet"))
        args = []
        for a in rule.get("args", []):
            op = OPS[a["op"]]
            if op == seccomp.MASKED_EQ:   # runc: value = mask, valueTwo = datum
                args.append(seccomp.Arg(a["index"], op, a["value"], a.get("valueTwo", 0)))
            else:
                args.append(seccomp.Arg(a["index"], op, a["value"]))
        for name in rule["names"]:
            try:
                seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            except (ValueError, RuntimeError):
                continue                  # not on this architecture
            f.add_rule(act, name, *args)
    f.load()


def try_calls():
    libc = ctypes.CDLL(None, use_errno=True)
    nr = lambda name: seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
    CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x10000000, 0x40000000
    b = lambda s: ctypes.c_char_p(s.encode())
    # harmless arguments: without the filter each call fails on its own with
    # another errno (ENOENT, ESRCH, EINVAL...) or acts only on this process,
    # so EPERM can only come from the filter
    gone = b("/nonexistent-mseg-seccomp-test")
    calls = [
        ("mount", nr("mount"), (b("none"), gone, b("tmpfs"), 0, None)),
        ("umount2", nr("umount2"), (gone, 0)),
        ("pivot_root", nr("pivot_root"), (gone, gone)),
        ("ptrace", nr("ptrace"), (16, -1, 0, 0)),                  # PTRACE_ATTACH, no pid
        ("kexec_load", nr("kexec_load"), (0, 0, 0, 0xffffffff)),    # invalid flags
        ("init_module", nr("init_module"), (None, 0, b(""))),
        ("bpf", nr("bpf"), (-1, None, 0)),
        ("keyctl", nr("keyctl"), (-1, 0, 0, 0, 0)),
        ("chroot", nr("chroot"), (gone,)),
        ("unshare(CLONE_NEWNS)", nr("unshare"), (CLONE_NEWNS,)),
        ("unshare(CLONE_NEWUSER)", nr("unshare"), (CLONE_NEWUSER,)),
        ("unshare(CLONE_NEWNET)", nr("unshare"), (CLONE_NEWNET,)),
        ("socket(AF_PACKET)", nr("socket"), (17, 3, 0)),
        ("socket(AF_NETLINK)", nr("socket"), (16, 3, 12)),          # NETLINK_NETFILTER
    ]
    for name, number, args in calls:
        ctypes.set_errno(0)
        r = libc.syscall(number, *args)
        e = ctypes.get_errno()
        print(f"{name} ok" if r >= 0 else f"{name} errno {errno.errorcode.get(e, e)}",
              flush=True)


def main():
    filtered = True
    if len(sys.argv) > 1 and sys.argv[1] == "--no-filter":
        filtered = False
        del sys.argv[1]
    if len(sys.argv) < 3 or sys.argv[2] not in ("exec", "try") or \
       (sys.argv[2] == "exec" and len(sys.argv) < 4):
        sys.exit(__doc__)
    if filtered:
        load(sys.argv[1])
    if sys.argv[2] == "try":
        try_calls()
    else:
        os.execv(sys.argv[3], sys.argv[3:])


main()
