"""What the nl2sql benchmark's scripts share: finding the ClickHouse server, running statements on
it over HTTP, and installing a pinned PyPI package on first use. Standard library only."""
import base64, importlib, importlib.util, json, os, shutil, site, subprocess, sys, urllib.error
import urllib.parse, urllib.request


class QueryError(Exception):
    """The server refused a statement; the message is the first line of its answer."""


def die(tool, msg, status=1):
    print(f"{tool}: {msg}", file=sys.stderr)
    sys.exit(status)


def find_url(tool, url=None):
    """`url`, else AURORA_CLICKHOUSE_URL, else the URL of Aurora's running private server."""
    if url:
        return url.rstrip("/")
    if os.environ.get("AURORA_CLICKHOUSE_URL"):
        return os.environ["AURORA_CLICKHOUSE_URL"].rstrip("/")
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/aurora-target"))
    aurora = os.environ.get("AURORA_BIN") or shutil.which("aurora") or os.path.join(target, "release", "aurora")
    try:
        out = subprocess.run([aurora, "server", "status", "--json"], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        found = json.loads(out).get("url")
    except (OSError, subprocess.CalledProcessError, ValueError):
        found = None
    if not found:
        die(tool, "no URL given and no running Aurora server found; pass a ClickHouse HTTP URL, "
                  "or start one with `aurora demo`")
    return found.rstrip("/")


def request(url, sql, body=None, settings=None, timeout=300):
    """Runs one statement and returns the answer's text. With `body`, `sql` goes in the URL and
    `body` is POSTed as the statement's data (an INSERT's rows)."""
    params = dict(settings or {})
    if body is not None:
        params["query"] = sql
    data = (body if body is not None else sql).encode()
    req = urllib.request.Request(url + "/?" + urllib.parse.urlencode(params), data=data)
    user = os.environ.get("AURORA_CLICKHOUSE_USER")
    if user:
        token = f"{user}:{os.environ.get('AURORA_CLICKHOUSE_PASSWORD', '')}".encode()
        req.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read().decode()
    except urllib.error.HTTPError as e:
        raise QueryError(e.read().decode().strip().splitlines()[0]) from None
    except urllib.error.URLError as e:
        raise QueryError(f"cannot reach {url}: {e.reason}") from None


def pip_install(tool, requirement, module):
    """Imports nothing: makes `module` findable, installing `requirement` from PyPI (into the
    user's site) when it is missing. Returns its import spec."""
    spec = importlib.util.find_spec(module)
    if spec is not None:
        return spec
    print(f"{tool}: installing {requirement} from PyPI", file=sys.stderr)
    pip = [sys.executable, "-m", "pip", "install", "--user", "--quiet", "--disable-pip-version-check",
           requirement]
    if subprocess.run(pip, stderr=subprocess.DEVNULL).returncode != 0:
        # Debian's system python refuses --user installs without this (PEP 668); a virtualenv
        # refuses --user altogether.
        if subprocess.run(pip + ["--break-system-packages"], stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run([a for a in pip if a != "--user"], check=True)
    importlib.invalidate_caches()
    if site.getusersitepackages() not in sys.path:
        sys.path.append(site.getusersitepackages())
    spec = importlib.util.find_spec(module)
    if spec is None:
        die(tool, f"{requirement} is installed but this python cannot find {module}")
    return spec
