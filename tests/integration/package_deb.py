#!/usr/bin/env python3
"""lockstep's Debian package, as make deb builds it.

usage: package_deb.py SOURCE_DIR BUILD_DIR

Builds the package (scripts/mkdeb.sh: dpkg-buildpackage in a copy of the tree) into
BUILD_DIR/deb, then checks with dpkg-deb:
- its contents, exactly: the four programs, every guest image this build makes, the unit,
  the sysusers file, the man pages, bash completion, the docs (api.md, vm.schema.json,
  security.md), the Python module and its example, lockstepd.conf (an example in the docs and
  /etc/lockstep/lockstepd.conf, a conffile that allows the packaged guests); programs
  executable, nothing else;
- its control data: name, version (the project's, and what the packaged programs print),
  architecture, the shared libraries it depends on, adduser; maintainer scripts that parse,
  a postinst that creates the group lockstep and the user lockstep-vm, a postrm that forgets
  the definitions on purge;
- the systemd unit: KillMode=process (VMs outlive the daemon), RuntimeDirectory kept over
  restarts, StateDirectory, Type=notify, Delegate=yes (the workers' cgroups beneath its own),
  and `systemd-analyze verify` has nothing to say.
Skips (77) only where dpkg-buildpackage or debhelper is missing.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import lockstep_test as lt  # noqa: E402


def check(cond, what, *context):
    if not cond:
        lt.fail(what + "".join(f"\n    {c!r}" for c in context))


def ok(what):
    print(f"ok   {what}", flush=True)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                       timeout=kw.pop("timeout", 600), **kw)
    return p.returncode, p.stdout, p.stderr


def expected_files(build):
    guests = sorted(os.path.basename(p) for p in glob.glob(os.path.join(build, "guest", "*.elf")))
    check(guests, "the build has guest images")
    files = {
        "lib/systemd/system/lockstepd.service",
        "usr/bin/lockstep", "usr/bin/lockstep-bench", "usr/bin/lockstep-vm",
        "usr/sbin/lockstepd",
        "usr/lib/python3/dist-packages/lockstep.py",
        "usr/lib/sysusers.d/lockstep.conf",
        "usr/share/bash-completion/completions/lockstep",
        "usr/share/bash-completion/completions/lockstepd",
        "usr/share/man/man1/lockstep-bench.1.gz", "usr/share/man/man1/lockstep-vm.1.gz",
        "usr/share/man/man1/lockstep.1.gz", "usr/share/man/man8/lockstepd.8.gz",
        "usr/share/doc/lockstep/api.md", "usr/share/doc/lockstep/vm.schema.json",
        "usr/share/doc/lockstep/README.md", "usr/share/doc/lockstep/changelog",
        "usr/share/doc/lockstep/copyright", "usr/share/doc/lockstep/examples/boot.py",
        "usr/share/doc/lockstep/examples/lockstepd.conf", "etc/lockstep/lockstepd.conf",
    }
    for doc in ("guest-platform", "host", "libvirt", "pvlock", "scheduling", "security",
                "passthrough"):
        files.add(f"usr/share/doc/lockstep/{doc}.md")
    files |= {f"usr/share/lockstep/guests/{g}" for g in guests}
    return files


def main():
    source, build = (os.path.abspath(a) for a in sys.argv[1:3])
    for tool in ("dpkg-buildpackage", "dh"):
        if not shutil.which(tool):
            lt.skip(f"{tool} is missing (scripts/deps.sh installs it)")
    out = os.path.join(build, "deb")
    status, log, err = run([os.path.join(source, "scripts", "mkdeb.sh"), out], timeout=1200)
    check(status == 0, "make deb's build", log, err)
    version = re.search(r"project\(lockstep VERSION ([0-9.]+)",
                        open(os.path.join(source, "CMakeLists.txt")).read()).group(1)
    deb = os.path.join(out, f"lockstep_{version}_amd64.deb")
    check(os.path.exists(deb), "the package is where mkdeb says", log)
    ok(f"make deb builds {os.path.basename(deb)} ({os.path.getsize(deb) // 1024} KiB)")

    status, listing, err = run(["dpkg-deb", "--contents", deb])
    check(status == 0, "dpkg-deb --contents", err)
    files, modes = set(), {}
    for line in listing.splitlines():
        mode, _, _, _, _, path = line.split(None, 5)
        path = path.split(" -> ")[0].lstrip("./")
        if path.startswith("usr/share/doc/") and path.endswith(".gz"):
            path = path[:-3]  # dh_compress compresses the larger documents
        if mode.startswith("-"):
            files.add(path)
            modes[path] = mode
    want = expected_files(build)
    check(files == want, "the package holds exactly what lockstep installs",
          "missing:", sorted(want - files), "extra:", sorted(files - want))
    for prog in ("usr/bin/lockstep", "usr/bin/lockstep-bench", "usr/bin/lockstep-vm",
                 "usr/sbin/lockstepd", "usr/share/doc/lockstep/examples/boot.py"):
        check(modes[prog] == "-rwxr-xr-x", f"{prog} is executable", modes[prog])
    check(all(modes[f] == "-rw-r--r--" for f in files if f.startswith("usr/share/lockstep")),
          "guest images are data", modes)
    check(modes["etc/lockstep/lockstepd.conf"] == "-rw-r--r--",
          "lockstepd.conf: root's, writable by root alone", modes["etc/lockstep/lockstepd.conf"])
    ok(f"contents: {len(files)} files, exactly the expected ones")

    fields = {}
    for key in ("Package", "Version", "Architecture", "Depends", "Section"):
        status, value, err = run(["dpkg-deb", "--field", deb, key])
        fields[key] = value.strip()
    check((fields["Package"], fields["Version"], fields["Architecture"]) ==
          ("lockstep", version, "amd64"), "package, version, architecture", fields)
    for lib in ("libuv1", "libjansson4", "libhwloc15", "libxml2", "libseccomp2", "libc6",
                "adduser"):
        check(re.search(rf"(^|, ){lib}\b", fields["Depends"]), f"depends on {lib}",
              fields["Depends"])
    ok(f"control: lockstep {version} amd64, Depends: {fields['Depends']}")

    tmp = tempfile.mkdtemp(prefix="lsdeb-")
    try:
        ctl, root = os.path.join(tmp, "DEBIAN"), os.path.join(tmp, "root")
        check(run(["dpkg-deb", "--control", deb, ctl])[0] == 0, "dpkg-deb --control")
        check(run(["dpkg-deb", "--extract", deb, root])[0] == 0, "dpkg-deb --extract")
        for script in ("postinst", "postrm", "prerm"):
            path = os.path.join(ctl, script)
            check(os.access(path, os.X_OK) and run(["sh", "-n", path])[0] == 0,
                  f"{script} is an executable shell script that parses")
        postinst = open(os.path.join(ctl, "postinst")).read()
        check("systemd-sysusers lockstep.conf" in postinst and "addgroup" in postinst and
              "lockstep-vm" in postinst and "deb-systemd-helper enable 'lockstepd.service'"
              in postinst, "postinst: accounts, then the service enabled", postinst)
        postrm = open(os.path.join(ctl, "postrm")).read()
        check(re.search(r'"\$1" = purge.*rm -rf /var/lib/lockstep', postrm, re.S),
              "postrm: a purge forgets the definitions", postrm)
        check(not re.search(r"rmdir[^\n]*/run/libvirt|rm -[a-z]*r[a-z]* /run/libvirt", postrm),
              "postrm leaves /run/libvirt itself alone (it may be libvirt's)", postrm)
        sysusers = open(os.path.join(root, "usr/lib/sysusers.d/lockstep.conf")).read()
        check(re.search(r"^g lockstep -$", sysusers, re.M) and
              re.search(r"^u lockstep-vm - ", sysusers, re.M), "sysusers.d: the accounts",
              sysusers)
        ok("maintainer scripts: the group lockstep and the user lockstep-vm, the unit "
           "enabled; purge forgets /var/lib/lockstep")

        conffiles = open(os.path.join(ctl, "conffiles")).read().split()
        check(conffiles == ["/etc/lockstep/lockstepd.conf"], "conffiles: lockstepd.conf",
              conffiles)
        conf = open(os.path.join(root, "etc/lockstep/lockstepd.conf")).read()
        active = [line for line in conf.splitlines() if line and line[0] != "#"]
        check(active == ["allow_path = /usr/share/lockstep/guests"],
              "lockstepd.conf allows the packaged guests and sets nothing else", active)
        check(re.search(r"^#allow_path = /", conf, re.M) and
              re.search(r"^#worker_user = lockstep-vm$", conf, re.M),
              "lockstepd.conf shows allow_path and worker_user", conf)
        ok("conffile /etc/lockstep/lockstepd.conf: the packaged guests allowed; allow_path "
           "and worker_user shown")

        for prog in ("usr/bin/lockstep", "usr/sbin/lockstepd", "usr/bin/lockstep-vm"):
            status, text, err = run([os.path.join(root, prog), "--version"])
            check(status == 0 and text.split()[-1] == version,
                  f"{prog} --version says {version}", text, err)
        ok("the packaged programs run and say the package's version")

        unit = open(os.path.join(root, "lib/systemd/system/lockstepd.service")).read()
        settings = dict(line.split("=", 1) for line in unit.splitlines()
                        if re.match(r"^[A-Za-z]+=", line))
        for key, value in (("KillMode", "process"), ("Type", "notify"), ("Delegate", "yes"),
                           ("RuntimeDirectory", "lockstep"),
                           ("RuntimeDirectoryPreserve", "yes"), ("StateDirectory", "lockstep"),
                           ("ExecStart", "/usr/sbin/lockstepd --foreground"),
                           ("WantedBy", "multi-user.target")):
            check(settings.get(key) == value, f"unit: {key}={value}", settings.get(key))
        if shutil.which("systemd-analyze"):
            # The unit as installed, but naming the extracted lockstepd (verify wants its
            # command to exist).
            copy = os.path.join(tmp, "lockstepd.service")
            with open(copy, "w") as f:
                f.write(unit.replace("/usr/sbin/lockstepd", os.path.join(root,
                                                                         "usr/sbin/lockstepd")))
            status, text, err = run(["systemd-analyze", "verify", "--man=no", copy])
            check(status == 0 and not text.strip() and not err.strip(),
                  "systemd-analyze verify has nothing to say about the unit", text, err)
            ok("the unit: KillMode=process, Delegate=yes, runtime and state directories, "
               "Type=notify; systemd-analyze verify is silent")
        else:
            ok("the unit: KillMode=process, Delegate=yes, runtime and state directories, "
               "Type=notify (no systemd-analyze here)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
