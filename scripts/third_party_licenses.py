#!/usr/bin/env python3
"""Writes the licences of every third-party crate linked into what nami ships, from Cargo's own
resolution (`cargo metadata`), never by hand.

    python3 scripts/third_party_licenses.py OUT.txt [--target TRIPLE ...]

The shipped crates are nami-ffi (the C library and the bindings), nami-httpd, nami-cli and
nami-sim. For each target platform (default: this machine's), it walks Cargo's resolved graph from
them through normal dependencies only (build scripts and procedural macros run at build time and are
not linked; dev-dependencies are tests), and lists each crate once: name, version, SPDX licence
expression, repository, and the text of every licence file the crate ships (LICENSE*, LICENCE*,
COPYING*, NOTICE*, UNLICENSE). A crate whose package carries no licence text is listed with its
SPDX expression and said to ship none. Exits 1 if a crate declares no licence at all.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

SHIPPED = ["nami-ffi", "nami-httpd", "nami-cli", "nami-sim"]
LICENCE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|UNLICENSE)([-._].*)?$", re.IGNORECASE)


def metadata(target):
    command = ["cargo", "metadata", "--format-version", "1", "--locked"]
    if target:
        command += ["--filter-platform", target]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def linked_packages(meta):
    """Package ids reachable from the shipped crates through normal (linked) dependencies."""
    nodes = {node["id"]: node for node in meta["resolve"]["nodes"]}
    by_name = {p["name"]: p["id"] for p in meta["packages"] if p["id"] in meta["workspace_members"]}
    # Procedural macros run inside the compiler: neither they nor what they use is linked.
    proc_macros = {p["id"] for p in meta["packages"] if all("proc-macro" in t["kind"] for t in p["targets"])}
    stack = [by_name[name] for name in SHIPPED]
    seen = set()
    while stack:
        package_id = stack.pop()
        if package_id in seen or package_id in proc_macros:
            continue
        seen.add(package_id)
        for dep in nodes[package_id]["deps"]:
            if any(kind["kind"] is None for kind in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    return seen


def licence_texts(package):
    folder = Path(package["manifest_path"]).parent
    files = sorted(p for p in folder.iterdir() if p.is_file() and LICENCE_FILE.match(p.name))
    if package.get("license_file"):
        extra = folder / package["license_file"]
        if extra.is_file() and extra not in files:
            files.append(extra)
    return [(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in files]


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = Path(args[0])
    targets = [args[i + 1] for i, a in enumerate(args) if a == "--target"] or [None]

    packages = {}
    workspace = set()
    for target in targets:
        meta = metadata(target)
        workspace |= set(meta["workspace_members"])
        index = {p["id"]: p for p in meta["packages"]}
        for package_id in linked_packages(meta):
            if package_id not in workspace:
                packages[package_id] = index[package_id]

    undeclared = [p["name"] for p in packages.values() if not (p.get("license") or p.get("license_file"))]
    if undeclared:
        sys.exit("crates without a declared licence: " + ", ".join(sorted(undeclared)))

    ordered = sorted(packages.values(), key=lambda p: (p["name"], p["version"]))
    lines = [
        "Third-party software in nami",
        "",
        "nami (MIT OR Apache-2.0) links the following crates into its libraries and programs. This",
        "file was generated from Cargo's dependency resolution by scripts/third_party_licenses.py",
        f"for the targets: {', '.join(t or 'host' for t in targets)}.",
        "",
        f"{len(ordered)} crates:",
        "",
    ]
    for p in ordered:
        lines.append(f"  {p['name']} {p['version']}  ({p.get('license') or 'see its licence file'})")
    for p in ordered:
        lines += ["", "=" * 100, f"{p['name']} {p['version']}"]
        lines.append(f"Licence: {p.get('license') or 'see below'}")
        if p.get("repository"):
            lines.append(f"Source: {p['repository']}")
        texts = licence_texts(p)
        if not texts:
            lines.append("(the crate's package ships no licence file; its licence is the SPDX expression above)")
        for name, text in texts:
            lines += ["", f"--- {name} ---", "", text.rstrip()]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{out}: {len(ordered)} crates")


if __name__ == "__main__":
    main()
