#!/usr/bin/env python3
"""Writes a minimal container image as an OCI image archive, with the standard library only.

Why by hand: this machine has no container engine and no registry, and the image tools that
exist as packages (buildah, podman) need a rootless-storage set-up that this sandbox's missing
CAP_SYS_RESOURCE breaks. An image is only a few content-addressed JSON files and one tar
layer, so writing it directly is short, reproducible (fixed mtimes and owners, sorted
entries: the same inputs give the same digest) and needs nothing but Python.

The image is `FROM scratch`-like, with the same layout as the Dockerfiles' images:
  - the program at /usr/local/bin/<name> (the entrypoint);
  - for a dynamically linked program, exactly the shared libraries `ldd` lists, at their paths;
  - /etc/passwd and /etc/group with the non-root user 65532 (`nonroot`, as distroless),
    /etc/nsswitch.conf (files, then dns), /etc/hosts, and the CA bundle;
  - /tmp (1777) and any --dir given, owned by the non-root user.

The archive is an OCI layout (oci-layout, index.json, blobs/sha256/...) in a tar, which
`ctr images import` and `podman load` accept. The reference goes into the index twice: as
`io.containerd.image.name` (the full name containerd imports it under) and as
`org.opencontainers.image.ref.name` (the tag, for other tools).

Usage:
  oci_image.py --ref NAME:TAG --binary PATH --out ARCHIVE [--env K=V]... [--port 8080]...
               [--dir /data]... [--arg ARG]... [--file SRC:DEST]... [--user 65532]
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import tarfile

NONROOT = 65532


def shared_libraries(binary):
    """The absolute paths of the shared libraries (and the loader) `binary` links, from ldd."""
    result = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if result.returncode != 0 or "not a dynamic executable" in result.stdout + result.stderr:
        return []  # statically linked: nothing to copy
    libraries = []
    for line in result.stdout.splitlines():
        parts = line.split()
        if "=>" in parts:
            target = parts[parts.index("=>") + 1]
            if target.startswith("/"):
                libraries.append(target)
        elif parts and parts[0].startswith("/"):
            libraries.append(parts[0])  # the loader, e.g. /lib64/ld-linux-x86-64.so.2
    return libraries


class Layer:
    """One tar layer with reproducible metadata: mtime 0, numeric owners, no user names."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w", format=tarfile.PAX_FORMAT)
        self.entries = {}

    def directory(self, path, mode=0o755, owner=0):
        path = path.strip("/")
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self.directory(parent)
        info = tarfile.TarInfo(path)
        info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, owner, owner
        self.entries[path] = (info, None)

    def file(self, path, data, mode=0o644):
        path = path.strip("/")
        if os.path.dirname(path) not in self.entries:
            self.directory(os.path.dirname(path))
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), mode
        self.entries[path] = (info, data)

    def symlink(self, path, target):
        path = path.strip("/")
        if os.path.dirname(path) not in self.entries:
            self.directory(os.path.dirname(path))
        info = tarfile.TarInfo(path)
        info.type, info.linkname = tarfile.SYMTYPE, target
        self.entries[path] = (info, None)

    def copy(self, source, dest, mode=None):
        with open(source, "rb") as handle:
            data = handle.read()
        self.file(dest, data, mode if mode is not None else os.stat(source).st_mode & 0o777)

    def finish(self):
        for path in sorted(self.entries):
            info, data = self.entries[path]
            info.mtime = 0
            self.tar.addfile(info, io.BytesIO(data) if data is not None else None)
        self.tar.close()
        return self.buffer.getvalue()


def build_layer(args):
    layer = Layer()
    name = os.path.basename(args.binary) if not args.name else args.name
    entrypoint = f"/usr/local/bin/{name}"
    layer.copy(args.binary, entrypoint, 0o755)
    for library in shared_libraries(args.binary):
        # Copy the real file under the path the loader looks for (ldd prints the symlink).
        layer.copy(os.path.realpath(library), library, 0o755)
    user = args.user
    layer.file("/etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/sbin/nologin\n".encode())
    layer.file("/etc/group", f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode())
    layer.file("/etc/nsswitch.conf", b"hosts: files dns\nnetworks: files\npasswd: files\ngroup: files\n")
    layer.file("/etc/hosts", b"127.0.0.1 localhost\n::1 localhost\n")
    layer.copy(args.ca_bundle, "/etc/ssl/certs/ca-certificates.crt", 0o644)
    layer.directory("/tmp", 0o1777)
    layer.directory("/home/nonroot", 0o700, NONROOT)
    for directory in args.dir:
        layer.directory(directory, 0o755, NONROOT)
    for spec in args.file:
        source, dest = spec.split(":", 1)
        layer.copy(source, dest)
    for spec in args.symlink:
        path, target = spec.split(":", 1)
        layer.symlink(path, target)
    return layer.finish(), entrypoint, user


def blob(blobs, media_type, data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", required=True, help="full image reference, name:tag")
    parser.add_argument("--binary", required=True)
    parser.add_argument("--name", help="file name under /usr/local/bin (default: the binary's)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--port", action="append", default=[])
    parser.add_argument("--dir", action="append", default=[])
    parser.add_argument("--file", action="append", default=[], help="SRC:DEST extra file")
    parser.add_argument("--symlink", action="append", default=[], help="PATH:TARGET")
    parser.add_argument("--arg", action="append", default=[], help="default arguments (CMD)")
    parser.add_argument("--user", default=f"{NONROOT}:{NONROOT}")
    parser.add_argument("--ca-bundle", default="/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()

    layer, entrypoint, user = build_layer(args)
    blobs = {}
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": user,
            "Entrypoint": [entrypoint],
            "Cmd": args.arg or None,
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"] + args.env,
            "WorkingDir": "/",
            "ExposedPorts": {f"{port}/tcp": {} for port in args.port} or None,
            "Volumes": None,
            "Labels": {"org.opencontainers.image.source": "thereview telemetry tools/images.sh"},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"]},
        "history": [{"created_by": "tools/oci_image.py", "created": "1970-01-01T00:00:00Z"}],
        "created": "1970-01-01T00:00:00Z",
    }
    config["config"] = {k: v for k, v in config["config"].items() if v is not None}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(blobs, "application/vnd.oci.image.config.v1+json", canonical(config)),
        "layers": [blob(blobs, "application/vnd.oci.image.layer.v1.tar", layer)],
    }
    manifest_descriptor = blob(blobs, "application/vnd.oci.image.manifest.v1+json", canonical(manifest))
    manifest_descriptor["platform"] = {"architecture": "amd64", "os": "linux"}
    manifest_descriptor["annotations"] = {
        "io.containerd.image.name": args.ref,
        "org.opencontainers.image.ref.name": args.ref.rsplit(":", 1)[1],
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [manifest_descriptor]}

    files = {"oci-layout": canonical({"imageLayoutVersion": "1.0.0"}), "index.json": canonical(index)}
    for digest, data in blobs.items():
        files[f"blobs/sha256/{digest}"] = data
    temporary = args.out + ".partial"
    with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            archive.addfile(info)
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(files[path]), 0o644
            archive.addfile(info, io.BytesIO(files[path]))
    os.replace(temporary, args.out)
    print(f"{args.ref} {manifest_descriptor['digest']} {len(layer) // 1024} KiB")


if __name__ == "__main__":
    main()
