"""Self-signed certificates for the tests, by Debian's openssl."""
import os
import subprocess


def self_signed(directory, name, days=1, ip=None, files=None, rsa=False):
    """A certificate for CN=name (and the IP address ip, if given) and its key, written as
    NAME.pem and NAME.key in directory (or as files=(cert, key) there); returns their paths.
    P-256 unless rsa: quick to make."""
    cert, key = (os.path.join(directory, f) for f in (files or (name + ".pem", name + ".key")))
    algorithm = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    extra = ["-addext", "subjectAltName=IP:" + ip] if ip else []
    subprocess.run(["openssl", "req", "-x509"] + algorithm + ["-nodes", "-days", str(days), "-subj", "/CN=" + name]
                   + extra + ["-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key
