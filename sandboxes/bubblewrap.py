"""The bubblewrap sandbox backend: Linux namespaces around every command, no daemon.

A sandbox is a configuration plus its workspace: every exec() is one `bwrap` process
that builds the sandbox, runs the command and takes everything down when it ends.
What a command sees:

- the host file system read-only (so the host's compilers and tools work), except
  places that hold secrets or other people's data, which are empty: homes, /root,
  /run (sockets such as docker.sock, ssh-agent), /mnt, /media, /srv, logs, mail,
  service data under /var/lib, /etc/shadow, private TLS and SSH host keys, and what
  the backend is told to hide. This is a deny list: a secret kept elsewhere on the
  host is readable, as it would be by any process of the user;
- the workspace read-write at /workspace, the working directory; of its repository's git
  directory only what read-only git needs, at its host path (see git/read_only.py);
- a fresh, size-limited tmpfs at /tmp (with HOME=/tmp/home), /var/tmp and /dev/shm:
  they last one command, only the workspace persists;
- its own user, pid, ipc, uts, cgroup and network namespaces (no network unless the
  spec allows it; then the host's), no capabilities, no new user namespaces, no
  setuid, a new session (no TIOCSTI into a terminal), and exactly the environment
  BASE_ENV + spec.env + the call's env;
- the same uid as Shipyard, so files it creates belong to the host user (Shipyard
  running as root gives root without capabilities in its own user namespace).

Memory, pids and CPU are limited by a cgroup per sandbox when one can be created
(root, cgroup v1 or v2); otherwise by rlimits, which are best-effort.

This is weaker isolation than the docker backend (the kernel attack surface is the
host's, without a seccomp filter; the host's file system is readable where not hidden),
and stronger than local.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Protocol

from sandboxes import live
from sandboxes.base import (
    BASE_ENV,
    WORKSPACE_MOUNT,
    Availability,
    ExecResult,
    SandboxError,
    SandboxLimits,
    SandboxSpec,
    usable_workspace,
)
from sandboxes.git.read_only import ReadOnlyGit, read_only_git
from sandboxes.process import Commands, process_alive, shell_argv
from sandboxes.spawned import PipeProcess
from sandboxes.workspace_sandbox import WorkspaceSandbox

log = logging.getLogger(__name__)

# Host places a sandbox must not read; each one that exists is covered by an empty,
# read-only tmpfs (directories) or /dev/null (files). Globs are allowed.
HIDDEN_PATHS = (
    "/root",
    "/home",
    "/run",
    "/var/run",
    "/mnt",
    "/media",
    "/srv",
    "/boot",
    "/lost+found",
    "/var/log",
    "/var/mail",
    "/var/spool",
    "/var/backups",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/kubelet",
    "/var/lib/libvirt",
    "/var/lib/lxd",
    "/var/lib/machines",
    "/var/lib/mysql",
    "/var/lib/postgresql",
    "/var/lib/redis",
    "/var/lib/private",
    "/var/lib/sss",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh/ssh_host_*key",
    "/etc/ssl/private",
    "/etc/pki/tls/private",
    "/etc/letsencrypt",
    "/etc/docker",
    "/etc/kubernetes",
    "/etc/wireguard",
    "/etc/NetworkManager/system-connections",
    "/etc/krb5.keytab",
    "/sys/firmware",
    # RAPL energy counters leak what other processes compute (PLATYPUS).
    "/sys/devices/virtual/powercap",
)
# Fresh writable tmpfs mounts, each of spec.limits.tmp_mb.
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Top-level host entries replaced by fresh ones (plain files at the top, such as
# /.dockerenv, are left out as well: nothing needs them).
NOT_BOUND = {"/proc", "/dev", "/tmp", WORKSPACE_MOUNT}
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "shipyard"
CPU_PERIOD_US = 100_000
# Swap accounting files exist only when the kernel enables it.
OPTIONAL_SETTINGS = {"memory.memsw.limit_in_bytes", "memory.swap.max"}
# The bwrap process joins the sandbox's cgroups before it forks anything, so every
# process of the sandbox is counted; a thread-safe alternative to preexec_fn.
JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
INSTALL_HINT = (
    "bwrap is not installed: `apt-get install bubblewrap` (Debian, Ubuntu) or `dnf install bubblewrap` (Fedora)"
)
# The probe asks whether bwrap works here; the disk is checked for every real sandbox.
_PROBE_LIMITS = SandboxLimits(min_free_mb=0)
# Kernel settings that keep unprivileged processes from creating user namespaces.
USERNS_SETTINGS = (
    ("kernel/unprivileged_userns_clone", "0", "sysctl -w kernel.unprivileged_userns_clone=1"),
    ("user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=10000"),
    (
        "kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give bwrap an AppArmor profile allowing userns",
    ),
)

PROBE_ATTEMPTS = 3
PROBE_BACKOFF_S = 0.5

_pruned_once = False
# Successful probes of this process, by (bwrap, hidden paths, cgroups on).
_probed_ok: dict[tuple[str, tuple[str, ...], bool], Availability] = {}


class BubblewrapBackend:
    name = "bubblewrap"

    def __init__(self, hide: Iterable[str] = (), use_cgroups: bool = True):
        """`hide`: more host paths to hide (e.g. Shipyard's state directory); the user's home always is.

        `use_cgroups=False` forces the rlimit fallback (for tests and machines where
        cgroups misbehave).
        """
        self._hide = (*HIDDEN_PATHS, os.path.expanduser("~"), *hide)
        self._use_cgroups = use_cgroups

    def availability(self, image: str = "") -> Availability:
        """Whether a trivial sandbox starts here. `image` is ignored: the host is the image.

        A busy machine can fail one sandbox now and then (a fork refused, a mount raced), which
        must not fail a job: the probe tries PROBE_ATTEMPTS times before it says no, and once it
        has said yes in this process it is not asked again (a worker starts many jobs)."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            return Availability(backend=self.name, ok=False, detail=INSTALL_HINT)
        key = (bwrap, self._hide, self._use_cgroups)
        if key in _probed_ok:
            return _probed_ok[key]
        for attempt in range(PROBE_ATTEMPTS):
            if attempt:
                time.sleep(PROBE_BACKOFF_S * attempt)
            found = self._probe(bwrap)
            if found.ok:
                _probed_ok[key] = found
                return found
            log.info("bubblewrap probe %d of %d failed: %s", attempt + 1, PROBE_ATTEMPTS, found.detail)
        return found

    def _probe(self, bwrap: str) -> Availability:
        with tempfile.TemporaryDirectory(prefix="shipyard-probe-") as tmp:
            try:
                with self.start(SandboxSpec(workspace=Path(tmp), limits=_PROBE_LIMITS)) as sandbox:
                    result = sandbox.exec(["true"], timeout=30)
                    limits = sandbox.limits_detail
            except SandboxError as exc:
                return Availability(backend=self.name, ok=False, detail=str(exc))
        if not result.ok:
            return Availability(backend=self.name, ok=False, detail=_diagnose(result.output.strip()))
        return Availability(backend=self.name, ok=True, detail=f"{_bwrap_info(bwrap)[0]}; {limits}")

    def start(self, spec: SandboxSpec) -> BubblewrapSandbox:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxError(INSTALL_HINT)
        workspace = usable_workspace(spec)
        global _pruned_once
        if self._use_cgroups and not _pruned_once:
            _pruned_once = True
            prune_orphaned_cgroups()
        # The owner's pid in the name tells prune_orphaned_cgroups whose it is.
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        limiter = _make_limiter(name, spec.limits, self._use_cgroups)
        git = read_only_git(workspace)
        args = [bwrap, *_isolation_args(bwrap, spec.network),
                *_filesystem_args(bwrap, workspace, spec, self._hide, git)]
        return BubblewrapSandbox(spec, name, workspace, args, limiter, git)


class BubblewrapSandbox(WorkspaceSandbox):
    """A sandbox configuration and its workspace; every command is a fresh bwrap process."""

    def __init__(
        self,
        spec: SandboxSpec,
        name: str,
        workspace: Path,
        bwrap_args: list[str],
        limiter: _Limiter,
        git: ReadOnlyGit | None,
    ):
        super().__init__(spec, workspace)
        self.name = name
        self._bwrap_args = bwrap_args
        self._limiter = limiter
        self._git = git
        self._commands = Commands()
        live.track(self)

    @property
    def limits_detail(self) -> str:
        """How memory, pids and CPU are limited, for `doctor` and logs."""
        return self._limiter.detail

    def _run_command(self, cmd: str | list[str], timeout: float, env: dict[str, str], workdir: Path) -> ExecResult:
        # bwrap itself gets an empty environment too: nothing of the host's reaches it.
        return self._commands.run(
            self._sandboxed(shell_argv(cmd), env, workdir),
            env={},
            cwd="/",
            timeout=timeout,
            output_limit=self.spec.limits.output_limit,
            watchdog=self._disk_watch(),
        )

    def _spawn_process(self, argv: list[str], env: dict[str, str], workdir: Path) -> PipeProcess:
        return self._commands.spawn(self._sandboxed(argv, env, workdir), env={}, cwd="/")

    def _sandboxed(self, argv: list[str], env: dict[str, str], workdir: Path) -> list[str]:
        """The host command line running `argv` in a fresh bwrap sandbox of this configuration, in its cgroups."""
        wrapped = [*self._bwrap_args, "--chdir", str(PurePosixPath(WORKSPACE_MOUNT) / workdir), "--clearenv"]
        # On bwrap's command line, so visible in the host's `ps`: fine, as secrets never
        # enter a sandbox's environment.
        git_env = self._git.env if self._git else {}
        for key, value in self._command_env(git_env, env).items():
            wrapped += ["--setenv", key, value]
        return self._limiter.wrap([*wrapped, "--", *argv])

    def stop(self) -> None:
        """Kill running commands and remove the cgroups; safe to call twice."""
        self._commands.close()
        self._limiter.close()
        if self._git:
            self._git.close()
        live.untrack(self)


# --- the bwrap command line -------------------------------------------------------


@functools.cache
def _bwrap_info(bwrap: str) -> tuple[str, str]:
    """bwrap's version line and help text (to use newer options only when present)."""
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False).stdout
    return version or "bwrap", usage


def _isolation_args(bwrap: str, network: bool) -> list[str]:
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox"]
    if network:
        args.append("--share-net")
    if "--disable-userns" in _bwrap_info(bwrap)[1]:
        # A nested user namespace hands out a full set of capabilities again (over
        # locked mounts, but a classic first step of kernel exploits).
        args += ["--unshare-user", "--disable-userns"]
    return args


def _filesystem_args(
    bwrap: str, workspace: Path, spec: SandboxSpec, hide: Iterable[str], git: ReadOnlyGit | None
) -> list[str]:
    """Mounts, in order: host read-only, fresh /proc and /dev, hidden places, scratch, git, workspace."""
    args: list[str] = []
    # Top-level entries one by one rather than `--ro-bind / /`: the sandbox's own root
    # stays a tmpfs where /workspace can be created.
    for entry in sorted(os.scandir("/"), key=lambda e: e.name):
        path = f"/{entry.name}"
        if path in NOT_BOUND:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(path), path]
        elif entry.is_dir():
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    hidden_dirs, hidden_files = _hidden(hide)
    for path in hidden_dirs:
        args += ["--tmpfs", path]
    for path in hidden_files:
        args += ["--ro-bind", "/dev/null", path]
    if spec.network:
        args += _resolver_args(hidden_dirs)
    size = ["--size", str(spec.limits.tmp_mb << 20)] if "--size" in _bwrap_info(bwrap)[1] else []
    for path in SCRATCH_DIRS:
        if path == "/var/tmp" and not os.path.isdir(path):
            continue  # no mount point for it in the read-only /var
        args += [*size, "--tmpfs", path]
    read_only = ["/", "/dev", *hidden_dirs]
    if git is not None:
        # The repository's git directory, wherever it is, shows only what reading it needs.
        args += ["--tmpfs", str(git.git_dir)]
        for source, target in git.binds:
            args += ["--ro-bind", str(source), str(target)]
        read_only.append(str(git.git_dir))
    args += ["--dir", BASE_ENV["HOME"], "--bind", str(workspace), WORKSPACE_MOUNT]
    for mount in spec.mounts:
        args += ["--bind" if mount.writable else "--ro-bind", str(mount.source), mount.target]
    # Last, once every mount point exists: the root, /dev, the hidden places and the git directory
    # are read-only too (the scratch mounts and the workspace stay writable).
    for path in read_only:
        args += ["--remount-ro", path]
    return args


def _hidden(patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """The existing host directories and files to hide, symlinks resolved, none inside another."""
    resolved = {os.path.realpath(match) for pattern in patterns for match in glob.glob(pattern)}
    found = sorted(path for path in resolved if os.path.exists(path))  # not dangling links
    dirs: list[str] = []
    files: list[str] = []
    for path in found:
        # Scratch dirs get a fresh tmpfs anyway, which would cover a mount made inside.
        if path == "/" or _inside(path, dirs) or _inside(path, SCRATCH_DIRS) or path in SCRATCH_DIRS:
            continue
        (dirs if os.path.isdir(path) else files).append(path)
    return dirs, files


def _resolver_args(hidden_dirs: list[str]) -> list[str]:
    """With network: /etc/resolv.conf may link into /run (systemd-resolved); bring its target back."""
    target = os.path.realpath("/etc/resolv.conf")
    if os.path.isfile(target) and _inside(target, hidden_dirs):
        return ["--ro-bind", target, target]
    return []


def _inside(path: str, parents: Iterable[str]) -> bool:
    return any(path.startswith(f"{parent}/") for parent in parents)


def _diagnose(output: str) -> str:
    for setting, blocking, fix in USERNS_SETTINGS:
        try:
            value = Path("/proc/sys", setting).read_text().strip()
        except OSError:
            continue
        if value == blocking:
            name = setting.replace("/", ".")
            return f"bwrap cannot create a sandbox ({output}): {name}={value} disables user namespaces; fix: {fix}"
    return (
        f"bwrap cannot create a sandbox ({output}); inside a container, allow user namespaces "
        "(e.g. docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined)"
    )


# --- resource limits -----------------------------------------------------------------


class _Limiter(Protocol):
    detail: str

    def wrap(self, argv: list[str]) -> list[str]: ...

    def close(self) -> None: ...


def _make_limiter(name: str, limits: SandboxLimits, use_cgroups: bool) -> _Limiter:
    if not use_cgroups:
        return _RlimitLimiter(limits, "cgroups turned off")
    try:
        return _CgroupLimiter.create(name, limits)
    except OSError as exc:
        log.info("no cgroup for sandbox %s (%s); falling back to rlimits", name, exc)
        return _RlimitLimiter(limits, str(exc))


class _CgroupLimiter:
    """One cgroup per sandbox (per controller on v1), joined by every command's bwrap process.

    The cgroups sit under /sys/fs/cgroup/[<controller>/]shipyard/<pid>-<id>. A process
    killed before stop() leaves empty ones behind: prune_orphaned_cgroups removes them.
    """

    def __init__(self, dirs: list[Path], detail: str):
        self._dirs = dirs
        self.detail = detail

    @classmethod
    def create(cls, name: str, limits: SandboxLimits, root: Path = CGROUP_ROOT) -> _CgroupLimiter:
        memory = str(limits.memory_mb << 20)
        cpu_quota = str(max(1000, int(limits.cpus * CPU_PERIOD_US)))
        if (root / "cgroup.controllers").exists():
            return cls._create_v2(root, name, memory, str(limits.pids), f"{cpu_quota} {CPU_PERIOD_US}")
        return cls._create_v1(root, name, memory, str(limits.pids), cpu_quota)

    @classmethod
    def _create_v1(cls, root: Path, name: str, memory: str, pids: str, cpu_quota: str) -> _CgroupLimiter:
        settings = {
            # memsw (memory + swap) after memory: it may never be below it.
            "memory": {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory},
            "pids": {"pids.max": pids},
            "cpu": {"cpu.cfs_period_us": str(CPU_PERIOD_US), "cpu.cfs_quota_us": cpu_quota},
        }
        dirs: list[Path] = []
        try:
            for controller, files in settings.items():
                if controller == "cpu" and not (root / controller).is_dir():
                    continue  # no cpu hierarchy: CPU is not limited
                group = root / controller / CGROUP_PARENT / name
                group.mkdir(parents=True)
                dirs.append(group)
                _write_settings(group, files)
        except OSError:
            cls(dirs, "").close()
            raise
        controllers = ", ".join(d.parent.parent.name for d in dirs)
        return cls(dirs, f"limits: cgroup v1 ({controllers})")

    @classmethod
    def _create_v2(cls, root: Path, name: str, memory: str, pids: str, cpu_max: str) -> _CgroupLimiter:
        available = (root / "cgroup.controllers").read_text().split()
        if "memory" not in available or "pids" not in available:
            raise OSError(f"cgroup v2 without the memory and pids controllers (has: {' '.join(available)})")
        parent = root / CGROUP_PARENT
        parent.mkdir(exist_ok=True)
        controllers = []
        for controller in ("memory", "pids", "cpu"):
            if controller not in available:
                continue
            try:
                for directory in (root, parent):
                    (directory / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError:
                if controller != "cpu":  # CPU is a nicety; memory and pids are required
                    raise
                continue
            controllers.append(controller)
        group = parent / name
        group.mkdir()
        limiter = cls([group], f"limits: cgroup v2 ({', '.join(controllers)})")
        settings = {"memory.max": memory, "memory.swap.max": "0", "pids.max": pids}
        if "cpu" in controllers:
            settings["cpu.max"] = cpu_max
        try:
            _write_settings(group, settings)
        except OSError:
            limiter.close()
            raise
        return limiter

    def wrap(self, argv: list[str]) -> list[str]:
        procs = [str(d / "cgroup.procs") for d in self._dirs]
        return ["/bin/sh", "-c", JOIN_CGROUPS, "shipyard-sandbox", *procs, "--", *argv]

    def close(self) -> None:
        for group in self._dirs:
            _remove_cgroup(group)
        self._dirs = []


def prune_orphaned_cgroups(root: Path = CGROUP_ROOT) -> list[str]:
    """Remove the cgroups of Shipyard processes that died without stopping their sandboxes."""
    pruned = []
    for group in [*root.glob(f"*/{CGROUP_PARENT}/*-*"), *root.glob(f"{CGROUP_PARENT}/*-*")]:
        owner = group.name.split("-", 1)[0]
        if owner.isdigit() and not process_alive(int(owner)):
            with contextlib.suppress(OSError):  # not ours to remove, or in use after all
                group.rmdir()
                pruned.append(str(group))
    return pruned


def _write_settings(group: Path, settings: dict[str, str]) -> None:
    for filename, value in settings.items():
        path = group / filename
        if filename not in OPTIONAL_SETTINGS or path.exists():
            path.write_text(value)


def _remove_cgroup(group: Path) -> None:
    # A command killed a moment ago may still be exiting: the cgroup is busy until then.
    for attempt in range(50):
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if attempt == 49:
                log.warning("could not remove cgroup %s: %s", group, exc)
                return
        time.sleep(0.05)


class _RlimitLimiter:
    """Best-effort limits for when no cgroup can be made (a user without cgroup delegation).

    RLIMIT_DATA bounds each process's heap, not the sandbox's total (but unlike
    RLIMIT_AS it leaves runtimes that reserve address space alone). RLIMIT_NPROC
    counts all the processes of the user, so it is set to what the user already
    runs plus the sandbox's pids; root ignores it. CPU is not limited.
    """

    def __init__(self, limits: SandboxLimits, why: str):
        self._limits = limits
        self._prlimit = shutil.which("prlimit")
        self.detail = (
            f"limits are best-effort, no cgroup ({why}): memory per process (RLIMIT_DATA), "
            "processes per user (RLIMIT_NPROC, ignored for root), no CPU limit; "
            "run Shipyard as root with a writable /sys/fs/cgroup for exact limits"
            if self._prlimit
            else f"no resource limits: no cgroup ({why}) and prlimit (util-linux) is not installed"
        )

    def wrap(self, argv: list[str]) -> list[str]:
        if self._prlimit is None:
            return argv
        nproc = self._limits.pids + _tasks_of_user(os.getuid())
        return [self._prlimit, f"--data={self._limits.memory_mb << 20}", f"--nproc={nproc}", "--", *argv]

    def close(self) -> None:
        pass


def _tasks_of_user(uid: int) -> int:
    """Threads of processes owned by `uid`: what RLIMIT_NPROC counts."""
    count = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                count += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue  # the process just exited
    return count
