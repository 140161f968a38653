"""A private Prosody on free loopback ports, with a self-signed certificate.

Prosody refuses to run as root, so when we are root the server and ``prosodyctl`` run as
the ``prosody`` system user (the Debian package creates it) and the work folder is
handed to that user.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from xmpp_post.lab import file_share

PROSODY_USER = "prosody"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_prosody_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PROSODY_USER, "--", *argv]
    return argv


def make_certificate(folder: Path, names: list[str], *, days: int = 30,
                     file_name: str | None = None, expired: bool = False) -> tuple[Path, Path]:
    """Write a self-signed certificate valid for ``names``; return (cert, key).

    ``expired=True`` makes one whose validity ended in 2020.
    """
    stem = file_name or names[0]
    cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
    san = ",".join(f"DNS:{name}" for name in names)
    if expired:
        _make_expired_certificate(folder, names[0], san, cert, key)
        return cert, key
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
         "-subj", f"/CN={names[0]}", "-addext", f"subjectAltName={san}"],
        check=True, capture_output=True,
    )
    return cert, key


def _make_expired_certificate(folder: Path, name: str, san: str, cert: Path,
                              key: Path) -> None:
    # OpenSSL 3.0's "req -x509" cannot backdate; "ca -selfsign" can, given a tiny CA setup.
    ca = folder / "expired-ca"
    ca.mkdir(exist_ok=True)
    (ca / "index.txt").write_text("")
    (ca / "serial").write_text("1000\n")
    (ca / "ca.cnf").write_text(
        "[ca]\ndefault_ca = here\n[here]\n"
        f"database = {ca}/index.txt\nnew_certs_dir = {ca}\nserial = {ca}/serial\n"
        "default_md = sha256\npolicy = anything\nx509_extensions = ext\n"
        "unique_subject = no\n[anything]\ncommonName = supplied\n"
        f"[ext]\nbasicConstraints = critical,CA:TRUE\nsubjectAltName = {san}\n")
    csr = ca / "request.csr"
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}"],
        check=True, capture_output=True)
    subprocess.run(
        ["openssl", "ca", "-batch", "-config", str(ca / "ca.cnf"), "-selfsign",
         "-keyfile", str(key), "-in", str(csr), "-out", str(cert),
         "-startdate", "20200101000000Z", "-enddate", "20200201000000Z"],
        check=True, capture_output=True)


@dataclass
class ProsodyServer:
    """A Prosody instance owned by the caller: ``start()``, ``stop()``, ``kill()``.

    ``domain`` is the virtual host; ``muc`` adds a group chat component at
    ``conference.<domain>``; ``smacks=False`` runs without stream management so the
    gateway's fallback acknowledgement is exercised; ``direct_tls`` also listens for
    direct TLS (XEP-0368) on ``direct_tls_port``. ``file_share`` adds the XEP-0363
    upload service ``upload.<domain>`` on HTTPS at ``https_port`` (``file_share``
    module), taking files of ``file_share_limit`` bytes and ``file_share_quota`` bytes
    per user and day (default: ten files' worth); ``file_share_trusted=False`` serves
    it with a certificate of its own that nobody trusts.
    """

    domain: str = "localhost"
    muc: bool = True
    smacks: bool = True
    tls: bool = True
    registration: bool = False
    plugin_paths: list[str] = field(default_factory=list)
    extra_modules: list[str] = field(default_factory=list)
    extra_config: list[str] = field(default_factory=list)
    cert_names: list[str] | None = None
    cert_expired: bool = False
    workdir: Path | None = None
    c2s_port: int = 0
    http_port: int = 0
    direct_tls: bool = False
    direct_tls_port: int = 0
    file_share: bool = True
    file_share_limit: int = 10 * 1024 * 1024
    file_share_quota: int | None = None
    file_share_trusted: bool = True
    https_port: int = 0
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _owns_workdir: bool = field(default=False, repr=False)

    @property
    def muc_domain(self) -> str:
        return f"conference.{self.domain}"

    @property
    def upload_domain(self) -> str:
        return f"upload.{self.domain}"

    @property
    def cert_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "certs" / f"{self.domain}.crt"

    @property
    def config_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "prosody.cfg.lua"

    @property
    def log_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "prosody.log"

    def prepare(self) -> None:
        """Create the work folder, certificate and configuration (once)."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="xmpp-post-prosody-"))
            self._owns_workdir = True
        if self.config_file.exists():
            return
        self.c2s_port = self.c2s_port or free_port()
        self.http_port = self.http_port or free_port()
        if self.direct_tls:
            self.direct_tls_port = self.direct_tls_port or free_port()
        if self.file_share:
            self.https_port = self.https_port or free_port()
            file_share.write_plugins(self.workdir / "plugins")
        certs = self.workdir / "certs"
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        certs.mkdir(exist_ok=True)
        make_certificate(certs, self.cert_names or [self.domain, self.muc_domain,
                                                    self.upload_domain],
                         file_name=self.domain, expired=self.cert_expired)
        if not self.file_share_trusted:
            make_certificate(certs, [self.domain], file_name="https-untrusted")
        self.config_file.write_text(self._config_text())
        self._give_to_prosody_user()

    def _config_text(self) -> str:
        modules = ["roster", "saslauth", "disco", "ping", "offline", "blocklist", "http"]
        if self.tls:
            modules.append("tls")
        if self.smacks:
            modules.append("smacks")
        if self.registration:
            modules.append("register")
        modules += self.extra_modules
        lua_list = "; ".join(f'"{m}"' for m in modules)
        assert self.workdir is not None
        plugin_paths = [*self.plugin_paths, *([str(self.workdir / "plugins")]
                                              if self.file_share else [])]
        paths = "; ".join(f'"{p}"' for p in plugin_paths)
        crt = self.cert_file
        key = crt.with_suffix(".key")
        ssl = f'ssl = {{ certificate = "{crt}"; key = "{key}" }}' if self.tls else ""
        lines = [
            f'pidfile = "{self.workdir}/prosody.pid"',
            f'data_path = "{self.workdir}/data"',
            f"plugin_paths = {{ {paths} }}",
            f"modules_enabled = {{ {lua_list} }}",
            "daemonize = false",
            f"c2s_ports = {{ {self.c2s_port} }}",
            'c2s_interfaces = { "127.0.0.1" }',
            f"c2s_direct_tls_ports = {{ {self.direct_tls_port or ''} }}",
            'c2s_direct_tls_interfaces = { "127.0.0.1" }',
            "s2s_ports = { }",
            f"http_ports = {{ {self.http_port} }}",
            'http_interfaces = { "127.0.0.1" }',
            *(file_share.https_lines(self.https_port, *self._https_certificate())
              if self.file_share else ["https_ports = { }"]),
            f"c2s_require_encryption = {'true' if self.tls else 'false'}",
            "allow_unencrypted_plain_auth = " + ("false" if self.tls else "true"),
            'authentication = "internal_hashed"',
            'storage = "internal"',
            f"allow_registration = {'true' if self.registration else 'false'}",
            "min_seconds_between_registrations = 0",
            *self.extra_config,
            f'log = {{ {{ levels = {{ min = "info" }}, to = "file", '
            f'filename = "{self.log_file}" }} }}',
            f'VirtualHost "{self.domain}"',
            f'  ssl = {{ certificate = "{crt}"; key = "{key}" }}' if self.tls else "",
        ]
        if self.muc:
            lines += [
                f'Component "{self.muc_domain}" "muc"',
                f'  ssl = {{ certificate = "{crt}"; key = "{key}" }}' if self.tls else "",
                "  restrict_room_creation = false",
            ]
        if self.file_share:
            lines += file_share.config_lines(self.domain, self.https_port, ssl,
                                             self.file_share_limit, self.file_share_quota)
        return "\n".join(lines) + "\n"

    def _https_certificate(self) -> tuple[Path, Path]:
        crt = self.cert_file
        if not self.file_share_trusted:
            crt = crt.with_name("https-untrusted.crt")
        return crt, crt.with_suffix(".key")

    def _give_to_prosody_user(self) -> None:
        if os.geteuid() != 0:
            return
        assert self.workdir is not None
        os.chmod(self.workdir, 0o755)
        shutil.chown(self.workdir, PROSODY_USER, PROSODY_USER)
        for root, dirs, files in os.walk(self.workdir):
            for name in dirs + files:
                shutil.chown(os.path.join(root, name), PROSODY_USER, PROSODY_USER)

    def register(self, user: str, password: str) -> str:
        """Create an account with ``prosodyctl``; return its JID."""
        self.prepare()
        subprocess.run(
            _as_prosody_user(["prosodyctl", "--config", str(self.config_file),
                              "register", user, self.domain, password]),
            check=True, capture_output=True, timeout=60,
        )
        return f"{user}@{self.domain}"

    def set_password(self, user: str, password: str) -> None:
        """Change an account's password with ``prosodyctl passwd`` (as an operator
        would); sessions already open stay open, new logins need the new password."""
        self.prepare()
        subprocess.run(
            _as_prosody_user(["prosodyctl", "--config", str(self.config_file),
                              "passwd", f"{user}@{self.domain}"]),
            input=f"{password}\n{password}\n".encode(), check=True, capture_output=True,
            timeout=60,
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start Prosody and return once its client port accepts connections."""
        self.prepare()
        if self.running:
            return
        self._proc = subprocess.Popen(
            _as_prosody_user(["prosody", "--config", str(self.config_file), "-F"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prosody exited at start: {self.log_tail()}")
            if (_accepts(self.c2s_port) and _accepts(self.http_port)
                    and (not self.direct_tls or _accepts(self.direct_tls_port))
                    and (not self.file_share or _accepts(self.https_port))):
                return
            time.sleep(0.05)
        raise TimeoutError(f"prosody did not open its ports: {self.log_tail()}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """Ask Prosody to shut down cleanly (SIGTERM); kill it if it lingers."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash Prosody (SIGKILL), as a power cut would."""
        self._signal(signal.SIGKILL, 10.0)

    def pause(self) -> None:
        """Freeze Prosody (SIGSTOP): connections stay open but nothing is answered."""
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def _signal(self, signum: int, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signum)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def close(self) -> None:
        """Stop the server and remove the work folder if we made it."""
        self.stop()
        if self._owns_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ProsodyServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
