#!/usr/bin/python3
"""The security layout of the Kubernetes deployment, checked offline:

    deploy_check.py DAEMONSET.yaml UNINSTALL-JOB.yaml SECCOMP-PROFILE.json

- msegd's container mounts no host directory that something else executes
  or trusts (/opt/cni/bin, /etc/cni/net.d, the kubelet's seccomp dir), and
  writes only to /run/mseg and /var/lib/mseg of the host;
- the init container (install-cni) and the uninstall Job mount the CNI
  directories and the seccomp dir, and the Job runs --uninstall;
- msegd runs under the Localhost seccomp profile that the init container
  installs (same file name, the kubelet's seccomp dir);
- the profile denies by default (SCMP_ACT_ERRNO or a KILL), allows none of
  mount, umount2, pivot_root, ptrace, bpf, keyctl, kexec_load, init_module
  and the like, and setns/unshare only for network namespaces.

Prints one "error: ..." line per finding and exits 1, or prints "ok"."""
import json
import sys

import yaml

CNI_DIRS = ("/opt/cni/bin", "/etc/cni/net.d")
SECCOMP_ROOT = "/var/lib/kubelet/seccomp"
MSEGD_RW = ("/run/mseg", "/var/lib/mseg")
FORBIDDEN = {
    "mount", "umount", "umount2", "pivot_root", "chroot", "ptrace", "process_vm_readv",
    "process_vm_writev", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "bpf", "keyctl", "add_key", "request_key", "open_by_handle_at",
    "perf_event_open", "userfaultfd", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "swapon", "swapoff", "reboot",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "acct",
    "quotactl", "iopl", "ioperm", "uselib", "lookup_dcookie", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "sethostname", "setdomainname", "vhangup",
    "name_to_handle_at", "kcmp",
}
CLONE_NEWNET = 0x40000000
errors = []


def err(msg):
    errors.append(msg)


def load_one(path, kind):
    with open(path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1:
        err(f"{path}: want exactly one {kind}, found {len(found)}")
        return None
    return found[0]


def host_mounts(pod, container):
    """[(host path, mount path, read-only)] of the container's hostPath mounts"""
    vols = {v["name"]: v["hostPath"]["path"] for v in pod.get("volumes", []) if "hostPath" in v}
    return [(vols[m["name"]], m["mountPath"], bool(m.get("readOnly")))
            for m in container.get("volumeMounts", []) if m["name"] in vols]


def under(path, dirs):
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)


def container(pod, name, where, init=False):
    for c in pod.get("initContainers" if init else "containers", []):
        if c["name"] == name:
            return c
    err(f"{where}: no {'init ' if init else ''}container {name!r}")
    return None


def check_writer(pod, c, where):
    """a container that installs or uninstalls: both CNI dirs and the seccomp dir"""
    paths = {hp for hp, _, ro in host_mounts(pod, c) if not ro}
    for d in CNI_DIRS:
        if d not in paths:
            err(f"{where}: does not mount {d} read-write")
    if not any(under(p, [SECCOMP_ROOT]) for p in paths):
        err(f"{where}: does not mount the kubelet's seccomp dir ({SECCOMP_ROOT}/...)")


def check_daemonset(path):
    ds = load_one(path, "DaemonSet")
    if not ds:
        return None
    pod = ds["spec"]["template"]["spec"]
    msegd = container(pod, "msegd", path)
    init = container(pod, "install-cni", path, init=True)
    profile = None
    for c in pod.get("containers", []):
        for hp, mp, ro in host_mounts(pod, c):
            where = f"{path}: container {c['name']!r}: hostPath {hp} at {mp}"
            if under(hp, CNI_DIRS):
                err(f"{where}: the long-running container must not mount the CNI directories")
            elif under(hp, [SECCOMP_ROOT]):
                err(f"{where}: the long-running container must not mount the seccomp dir")
            elif not ro and not under(hp, MSEGD_RW):
                err(f"{where} is read-write (only {', '.join(MSEGD_RW)} may be)")
    if msegd:
        sp = (msegd.get("securityContext") or {}).get("seccompProfile") or {}
        if sp.get("type") != "Localhost" or not sp.get("localhostProfile"):
            err(f"{path}: msegd's seccompProfile is {sp!r}, not type Localhost with a profile")
        else:
            profile = sp["localhostProfile"]
    if init:
        check_writer(pod, init, f"{path}: init container 'install-cni'")
        if profile:
            want = f"{SECCOMP_ROOT}/{profile.rsplit('/', 1)[0]}" if "/" in profile else SECCOMP_ROOT
            if not any(hp == want and mp == "/host/seccomp/mseg" and not ro
                       for hp, mp, ro in host_mounts(pod, init)):
                err(f"{path}: the init container does not install {profile} "
                    f"({want} at /host/seccomp/mseg, where install-cni.sh writes it)")
    return profile


def check_job(path):
    job = load_one(path, "Job")
    if not job:
        return
    pod = job["spec"]["template"]["spec"]
    cs = pod.get("containers", [])
    if len(cs) != 1:
        err(f"{path}: want one container, found {len(cs)}")
        return
    c = cs[0]
    if "--uninstall" not in (c.get("command") or []) + (c.get("args") or []):
        err(f"{path}: the container does not run install-cni.sh --uninstall")
    check_writer(pod, c, f"{path}: container {c['name']!r}")
    if not pod.get("hostNetwork"):
        err(f"{path}: without hostNetwork the Job's pod goes through the CNI chain it removes")
    if not pod.get("nodeName"):
        err(f"{path}: no nodeName: the Job must run on the node it unchains")


def check_profile(path, name):
    if name and not path.endswith("/" + name.rsplit("/", 1)[-1]):
        err(f"{path}: the DaemonSet names profile {name!r}, not this file")
    try:
        with open(path, encoding="utf-8") as f:
            prof = json.load(f)
    except (OSError, ValueError) as e:
        err(f"{path}: not valid JSON: {e}")
        return
    if prof.get("defaultAction") not in ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                                         "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD"):
        err(f"{path}: defaultAction {prof.get('defaultAction')!r} does not deny")
    for i, rule in enumerate(prof.get("syscalls", [])):
        if rule.get("action") not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG"):
            continue
        names = set(rule.get("names", []))
        for n in sorted(names & FORBIDDEN):
            err(f"{path}: syscalls[{i}] allows {n}")
        for n, idx in (("setns", 1), ("unshare", 0)):
            if n in names and rule.get("args") != [
                    {"index": idx, "value": CLONE_NEWNET, "op": "SCMP_CMP_EQ"}]:
                err(f"{path}: syscalls[{i}] allows {n} for more than network namespaces")
        if "clone3" in names:
            err(f"{path}: syscalls[{i}] allows clone3, whose flags a filter cannot see")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    profile = check_daemonset(sys.argv[1])
    check_job(sys.argv[2])
    check_profile(sys.argv[3], profile)
    for e in errors:
        print(f"error: {e}")
    if not errors:
        print("ok")
    sys.exit(1 if errors else 0)


main()
