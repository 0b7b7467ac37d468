#!/usr/bin/env python3
"""Helpers for bench/publish.sh: a timed promotion, and checks of published metadata.

    publish_helper.py promote API_URL AUTH_HEADER_FILE MARKER_URL PREV_FILE OUT_FILE BODY_FILE...
    publish_helper.py yum URL_OR_DIR EXPECTED [--keyring K] [--full]
    publish_helper.py apt URL_OR_DIR SUITE EXPECTED [--keyring K] [--full]

promote: POSTs each BODY_FILE (JSON) in turn to API_URL with the header line in
AUTH_HEADER_FILE, then GETs MARKER_URL (repomd.xml or InRelease) until it differs
from PREV_FILE, polling every 5 ms (at most 15 minutes), and saves it to
OUT_FILE. Every request uses a new connection, as a separate client would.
Prints "SERVED REQUEST STATUS": seconds from sending the first POST to having
the new marker, seconds for the POSTs alone, and the last HTTP status (the last
response body goes to OUT_FILE.response). Stops at the first non-200 answer
(SERVED is then 0, exit status 1). The clock is read in this process, so interpreter start-up
and process spawning are not in the figures.

URL_OR_DIR is a yum repository root (the directory holding repodata/) or an
apt repository root (the directory holding dists/), served over HTTP or on disk.

yum: repomd.xml (and, with --keyring, repomd.xml.asc verified with gpgv); every
<data> file it lists is fetched and must match its sha256 checksum and size;
primary.xml.gz must hold EXPECTED packages (its `packages` attribute and the
<package> elements). --full also parses primary, filelists and other with an XML
parser (multi-member gzip included) and checks that all three list the same
EXPECTED package ids.

apt: InRelease (verified with gpgv when --keyring is given); Packages and
Packages.gz of main/binary-amd64 must match Release's SHA256 lines, decompress to
the same bytes and hold EXPECTED stanzas; with Acquire-By-Hash the by-hash copy of
Packages.gz must be served too. --full also verifies Release.gpg over Release and
checks that Release equals InRelease's signed text.

Prints one line saying what was checked; exits 1 with a reason on a mismatch.
"""

import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

REPO_NS = "{http://linux.duke.edu/metadata/repo}"


class Mismatch(Exception):
    pass


def fetch(root, rel):
    if root.startswith("http://") or root.startswith("https://"):
        url = root.rstrip("/") + "/" + rel
        try:
            with urllib.request.urlopen(url, timeout=120) as r:
                return r.read()
        except Exception as e:  # noqa: BLE001 - reported as a mismatch
            raise Mismatch(f"GET {url}: {e}") from e
    path = os.path.join(root, rel)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Mismatch(f"{path}: {e}") from e


def gunzip(data):
    """All members of a (multi-member) gzip file. Streams: gzip.decompress()
    re-slices the remaining input for every member, which is quadratic for the
    tens of thousands of members in Forklift's metadata (minutes at 50,000)."""
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
        return f.read()


def count_elements(data, tag):
    """(root `packages` attribute, number of <tag> children, their ids), parsed
    incrementally so that memory stays small."""
    attr, n, ids = None, 0, []
    depth = 0
    for event, el in ET.iterparse(io.BytesIO(data), events=("start", "end")):
        if event == "start":
            depth += 1
            if depth == 1:
                attr = el.get("packages")
            continue
        depth -= 1
        if depth == 1 and el.tag.endswith("}" + tag):
            n += 1
            pkgid = el.get("pkgid")
            if pkgid is None:
                ck = el.find("{http://linux.duke.edu/metadata/common}checksum")
                pkgid = ck.text if ck is not None else None
            ids.append(pkgid)
            el.clear()
    return attr, n, ids


def gpgv(keyring, signature, data=None):
    """Verifies a detached signature over data, or a clearsigned message."""
    with tempfile.TemporaryDirectory() as d:
        sig = os.path.join(d, "sig")
        with open(sig, "wb") as f:
            f.write(signature)
        args = ["gpgv", "--keyring", keyring, sig]
        if data is not None:
            dat = os.path.join(d, "data")
            with open(dat, "wb") as f:
                f.write(data)
            args.append(dat)
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise Mismatch(f"gpgv failed: {r.stderr.strip()[-300:]}")


def check_yum(root, expected, keyring, full):
    repomd = fetch(root, "repodata/repomd.xml")
    if keyring:
        gpgv(keyring, fetch(root, "repodata/repomd.xml.asc"), repomd)
    doc = ET.fromstring(repomd)
    data = {}
    for d in doc.findall(REPO_NS + "data"):
        kind = d.get("type")
        loc = d.find(REPO_NS + "location").get("href")
        ck = d.find(REPO_NS + "checksum")
        size = d.find(REPO_NS + "size")
        body = fetch(root, loc)
        algo = ck.get("type")
        if algo not in ("sha256", "sha"):
            raise Mismatch(f"{kind}: checksum type {algo}")
        if hashlib.sha256(body).hexdigest() != ck.text.strip():
            raise Mismatch(f"{kind}: {loc} does not match its sha256 in repomd.xml")
        if size is not None and int(size.text) != len(body):
            raise Mismatch(f"{kind}: {loc} is {len(body)} bytes, repomd.xml says {size.text}")
        data[kind] = body
    for need in ("primary", "filelists", "other"):
        if need not in data:
            raise Mismatch(f"repomd.xml lists no {need}")
    primary = gunzip(data["primary"])
    m = re.search(rb'<metadata[^>]*\spackages="(\d+)"', primary[:4096])
    attr = int(m.group(1)) if m else -1
    count = primary.count(b'<package type="rpm"')
    if attr != expected or count != expected:
        raise Mismatch(f"primary: packages=\"{attr}\" and {count} <package> elements, expected {expected}")
    what = f"yum: repomd signature{' ok' if keyring else ' not checked'}, {len(data)} data files match, primary lists {count}"
    if full:
        ids = {}
        for kind in ("primary", "filelists", "other"):
            attr, n, got = count_elements(gunzip(data[kind]), "package")
            if attr != str(expected) or n != expected:
                raise Mismatch(f"{kind}: {n} packages, attribute {attr}, expected {expected}")
            ids[kind] = sorted(got)
        if not (ids["primary"] == ids["filelists"] == ids["other"]):
            raise Mismatch("primary, filelists and other list different package ids")
        what += "; full XML parse of primary/filelists/other agrees"
    return what


def release_sha256(text):
    out = {}
    in_sha = False
    for line in text.splitlines():
        if line.startswith("SHA256:"):
            in_sha = True
            continue
        if in_sha:
            if not line.startswith(" "):
                in_sha = False
                continue
            sha, size, path = line.split()
            out[path] = (sha, int(size))
    return out


def check_apt(root, suite, expected, keyring, full):
    inrelease = fetch(root, f"dists/{suite}/InRelease")
    if keyring:
        gpgv(keyring, inrelease)
    text = inrelease.decode()
    m = re.search(r"-----BEGIN PGP SIGNED MESSAGE-----\n(?:Hash: [^\n]*\n)*\n(.*?)\n-----BEGIN PGP SIGNATURE-----",
                  text, re.S)
    if not m:
        raise Mismatch("InRelease is not a clearsigned message")
    signed = m.group(1)
    hashes = release_sha256(signed)
    bodies = {}
    for name in ("Packages", "Packages.gz"):
        rel = f"main/binary-amd64/{name}"
        if rel not in hashes:
            raise Mismatch(f"Release lists no {rel}")
        body = fetch(root, f"dists/{suite}/{rel}")
        sha, size = hashes[rel]
        if hashlib.sha256(body).hexdigest() != sha or len(body) != size:
            raise Mismatch(f"{rel} does not match Release")
        bodies[name] = body
    if gunzip(bodies["Packages.gz"]) != bodies["Packages"]:
        raise Mismatch("Packages.gz does not decompress to Packages")
    count = len(re.findall(rb"^Package: ", bodies["Packages"], re.M))
    if count != expected:
        raise Mismatch(f"Packages lists {count} stanzas, expected {expected}")
    what = f"apt: InRelease signature{' ok' if keyring else ' not checked'}, Packages and Packages.gz match Release, {count} stanzas"
    if re.search(r"^Acquire-By-Hash: yes", signed, re.M):
        sha = hashes["main/binary-amd64/Packages.gz"][0]
        if fetch(root, f"dists/{suite}/main/binary-amd64/by-hash/SHA256/{sha}") != bodies["Packages.gz"]:
            raise Mismatch("by-hash copy of Packages.gz differs")
        what += ", by-hash ok"
    if full and keyring:
        release = fetch(root, f"dists/{suite}/Release")
        gpgv(keyring, fetch(root, f"dists/{suite}/Release.gpg"), release)
        # Clearsigning dash-escapes lines starting with '-'; Release has none.
        if release.decode().rstrip("\n") != signed.rstrip("\n"):
            raise Mismatch("Release differs from InRelease's signed text")
        what += "; Release.gpg ok, Release == InRelease text"
    return what


def promote(api_url, auth_file, marker_url, prev_file, out_file, *body_files):
    with open(auth_file) as f:
        name, value = f.read().strip().split(":", 1)
    with open(prev_file, "rb") as f:
        prev = f.read()
    bodies = []
    for path in body_files:
        with open(path, "rb") as f:
            bodies.append(f.read())
    t0 = time.perf_counter()
    for body in bodies:
        req = urllib.request.Request(api_url, data=body, method="POST",
                                     headers={name.strip(): value.strip()})
        try:
            with urllib.request.urlopen(req, timeout=1800) as r:
                status, answer = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        with open(out_file + ".response", "wb") as f:
            f.write(answer)
        if status != 200:
            print(f"0 {time.perf_counter() - t0:.6f} {status}")
            return 1
    t_req = time.perf_counter() - t0
    deadline = t0 + 900
    while True:
        try:
            with urllib.request.urlopen(marker_url, timeout=60) as r:
                got = r.read()
        except urllib.error.URLError:
            got = prev
        if got != prev:
            t_served = time.perf_counter() - t0
            break
        if time.perf_counter() > deadline:
            print(f"no new {marker_url} within 900 s", file=sys.stderr)
            return 1
        time.sleep(0.005)
    with open(out_file, "wb") as f:
        f.write(got)
    print(f"{t_served:.6f} {t_req:.6f} {status}")
    return 0


def main(argv):
    keyring = None
    full = False
    args = []
    it = iter(argv)
    for a in it:
        if a == "--keyring":
            keyring = next(it)
        elif a == "--full":
            full = True
        else:
            args.append(a)
    if args and args[0] == "promote" and len(args) >= 7:
        return promote(*args[1:])
    try:
        if args and args[0] == "yum" and len(args) == 3:
            print(check_yum(args[1], int(args[2]), keyring, full))
        elif args and args[0] == "apt" and len(args) == 4:
            print(check_apt(args[1], args[2], int(args[3]), keyring, full))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Mismatch as e:
        print(f"MISMATCH: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
