"""A real MediaWiki (Debian's `mediawiki` package, SQLite, `php -S` on loopback) for tests and benchmarks.

The wiki is private (anonymous users cannot read) and has a bot password, so the connector's
login path is what every test exercises. Pages are written, moved and deleted with MediaWiki's own
maintenance scripts, as an admin would.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

MEDIAWIKI_DIR = Path(os.environ.get("MEDIAWIKI_DIR", "/usr/share/mediawiki"))
ADMIN_PASSWORD = "orgbot-admin-Pass-1234"


def mediawiki_missing() -> str | None:
    """Why a real wiki cannot start here (None when it can)."""
    if not shutil.which("php"):
        return "php is not installed (apt-get install php-cli php-sqlite3 php-intl php-mbstring php-xml)"
    if not (MEDIAWIKI_DIR / "maintenance" / "install.php").exists():
        return f"MediaWiki is not installed at {MEDIAWIKI_DIR} (apt-get install --no-install-recommends mediawiki)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MediaWikiServer:
    def __init__(self, root: Path | None = None, *, private: bool = True):
        self.root = Path(root or tempfile.mkdtemp(prefix="orgbot-mw-"))
        self.private = private
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.bot_user = "Admin@orgbot"
        self.bot_password = ""
        self._proc: subprocess.Popen | None = None

    @property
    def settings_file(self) -> Path:
        return self.root / "LocalSettings.php"

    def _php(self, *args: str, stdin: str | None = None) -> str:
        r = subprocess.run(["php", *args, "--conf", str(self.settings_file)], cwd=MEDIAWIKI_DIR, input=stdin,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"php {' '.join(args)} failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
        return r.stdout

    def start(self) -> MediaWikiServer:
        self.root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["php", "maintenance/install.php", "--dbtype", "sqlite", "--dbpath", str(self.root),
                        "--server", self.url, "--scriptpath", "", "--pass", ADMIN_PASSWORD,
                        "--confpath", str(self.root), "OrgbotTestWiki", "Admin"],
                       cwd=MEDIAWIKI_DIR, check=True, capture_output=True, timeout=300)
        extra = ["$wgEnableBotPasswords = true;", "$wgRCMaxAge = 90 * 86400;",
                 "$wgExtraNamespaces[3000] = 'HR'; $wgExtraNamespaces[3001] = 'HR_talk';"]
        if self.private:
            extra.append("$wgGroupPermissions['*']['read'] = false;")
        with open(self.settings_file, "a") as f:
            f.write("\n" + "\n".join(extra) + "\n")
        out = self._php("maintenance/createBotPassword.php", "--appid", "orgbot", "--grants", "basic,highvolume",
                        "Admin")
        self.bot_password = re.search(r"password:'([^']+)'", out).group(1)
        env = {**os.environ, "MW_CONFIG_FILE": str(self.settings_file)}
        self._log = open(self.root / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(["php", "-S", f"127.0.0.1:{self.port}"], cwd=MEDIAWIKI_DIR, env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/api.php", params={"action": "query", "format": "json"}, timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"MediaWiki did not start on {self.url}")

    def stop(self) -> None:
        if self._proc:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None
            self._log.close()

    def suspend(self) -> None:
        """Stop answering (an unreachable wiki), keeping the data; `resume()` starts it again."""
        self.stop()

    def resume(self) -> None:
        env = {**os.environ, "MW_CONFIG_FILE": str(self.settings_file)}
        self._log = open(self.root / "server.log", "ab")  # noqa: SIM115
        self._proc = subprocess.Popen(["php", "-S", f"127.0.0.1:{self.port}"], cwd=MEDIAWIKI_DIR, env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                httpx.get(f"{self.url}/api.php", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)

    # -- content, as an admin would change it -------------------------------------------------
    def edit(self, title: str, text: str) -> None:
        self._php("maintenance/edit.php", "-u", "Admin", "-s", "test edit", title, stdin=text)

    def import_pages(self, pages: dict[str, str], *, age_days: float = 0) -> None:
        """Create many pages in one PHP process (maintenance/importTextFiles.php), in recent changes;
        `age_days` dates the edits that long ago."""
        folder = Path(tempfile.mkdtemp(prefix="pages-", dir=self.root))
        files = []
        when = time.time() - age_days * 86400
        for title, text in pages.items():
            path = folder / f"{title}.txt"
            path.write_text(text, encoding="utf-8")
            os.utime(path, (when, when))
            files.append(str(path))
        stamp = ["--use-timestamp"] if age_days else []
        self._php("maintenance/importTextFiles.php", "-u", "Admin", "--rc", "--overwrite", *stamp, *files)

    def delete(self, title: str) -> None:
        self._php("maintenance/deleteBatch.php", "-u", "Admin", "-r", "test", stdin=title + "\n")

    def move(self, old: str, new: str, *, redirect: bool = True) -> None:
        args = ["maintenance/moveBatch.php", "-u", "Admin", "-r", "test"]
        if not redirect:
            args.append("--noredirects")
        self._php(*args, stdin=f"{old}|{new}\n")

    def __enter__(self) -> MediaWikiServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
