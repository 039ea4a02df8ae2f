"""The production layout of docs/operations.md, "Many hosts", on one machine: every role
apart, sharing only PostgreSQL, the broker and HTTP.

- the web role: gunicorn, as a Unix user of its own, its VAR_DIR its alone (mode 0700);
- the backend role: `rundramatiq` workers and the results server, as another user, with
  its own VAR_DIR (results, keys, temp dirs) just as private;
- a builder: a network namespace with its own sshd (tests/builders/ssh_helpers.py), the
  only machine that builds (the backend's local pool is off);
- Pulp as the repository store, reached over HTTP.

copr-cli 2.6 drives it as a packager would: an uploaded SRPM, an SCM build from a git
server the builder reaches, a fork, a deleted build and a deleted project. A role that
touched another's files would fail on the permissions; at the end every file in a role's
directory is still its user's.
"""

import gzip
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.builders.scm_helpers import GitDaemon, make_repo, packed_files
from tests.builders.srpm_factory import make_srpm
from tests.builders.ssh_helpers import create_host, remove_host
from tests.e2e.processes import CoprApi, RedisServer, Service, role_user
from tests.e2e.test_copr_cli import CoprCli, write_config
from tests.pulp_server import admin_connection, drop_database, postgres_server
from tests.repos.rpm_helpers import dnf_install_into

pytestmark = pytest.mark.e2e
CHROOT = "fedora-43-x86_64"
# The forge's address on its link to the builder (RFC 2544's benchmarking range; the link
# exists only between those two namespaces).
FORGE_ADDRESS = "198.19.0.1"

# Run by the backend's user through `manage.py shell`: the builder host is the only builder.
POOL_SETUP = """
import json, os
from apps.fleet.models import BuilderPool, PoolKind
from apps.fleet.services import local_pool_ensure, ssh_pool_sync
local_pool_ensure()
BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)
pool = BuilderPool.objects.create(
    name="cloud", kind=PoolKind.SSH, arches=["x86_64"],
    config={"hosts": [json.loads(os.environ["TEST_BUILDER_HOST"])]},
)
ssh_pool_sync(pool=pool)
"""


@pytest.fixture
def database():
    """A PostgreSQL database of this test's own, shared by the web and backend roles."""
    name = f"coprsite_hosts_{os.getpid()}"
    drop_database(name)
    with admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    server = postgres_server()
    password = f":{server['password']}" if server["password"] else ""
    yield f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"
    drop_database(name)


@pytest.fixture
def hosts(tmp_path, database, pulp_server):
    if os.geteuid() != 0:
        pytest.skip("the roles run as Unix users of their own: needs root to switch to them")
    # tmp_path's parents are root's alone (0700): the roles' directories sit in one of ours.
    top = Path(os.environ.get("TMPDIR", "/tmp")) / f"coprsite-hosts-{os.getpid()}"
    shutil.rmtree(top, ignore_errors=True)
    top.mkdir(mode=0o755)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    builder = create_host(tmp_path / "builder", "builder0")
    forge = forge_beside(builder)
    (tmp_path / "git").mkdir()
    git = GitDaemon(tmp_path / "git", address=FORGE_ADDRESS, netns=forge)
    git.start()
    shared = {
        "database_url": database,
        "SECRET_KEY": secrets.token_urlsafe(40),
        "RECONCILE_SECONDS": 2,
        "REPOSITORY_STORE": "pulp",
        "PULP_CONTENT_URL": pulp_server.content_url,
    }
    backend = Service(
        top / "backend", redis.url, user=role_user("coprsite-test-backend"),
        PULP_URL=pulp_server.api_url, PULP_USERNAME="admin",
        PULP_PASSWORD=pulp_server.admin_password, **shared,
    )  # fmt: skip
    web = Service(
        top / "web", redis.url, user=role_user("coprsite-test-web"),
        RESULTS_URL=f"{backend.url}/results",
        ALLOW_PRIVATE_URLS=1,  # the forge has a private address
        **shared,
    )  # fmt: skip
    backend.env.update(PUBLIC_URL=web.url, WEB_INTERNAL_URL=web.url)
    try:
        credentials = web.prepare("alice")
        web.manage("collectstatic", "--noinput")
        builder_key_for(backend, builder)
        backend.manage("shell", "-c", POOL_SETUP)
        web.start_web()
        backend.start_web(workers=1, threads=4)
        backend.start_workers()
        yield web, backend, CoprApi(web.url, "alice", credentials), git, pulp_server, tmp_path
    finally:
        backend.stop()
        web.stop()
        git.stop()
        remove_host(builder)
        subprocess.run(["ip", "netns", "del", forge], capture_output=True, check=False)
        redis.stop()
        shutil.rmtree(top, ignore_errors=True)


def forge_beside(builder) -> str:
    """A git forge: a network namespace linked to the builder's alone. Builds may not
    reach the backend's addresses (the service), so the forge cannot live on this host."""
    forge = f"{builder.namespace}-forge"
    subprocess.run(["ip", "netns", "add", forge], check=True)
    ip = ["ip", "-n", builder.namespace]
    subprocess.run(
        [*ip, "link", "add", "forge0", "type", "veth", "peer", "name", "forge1"], check=True
    )
    subprocess.run([*ip, "link", "set", "forge1", "netns", forge], check=True)
    subprocess.run([*ip, "addr", "add", "198.19.0.2/30", "dev", "forge0"], check=True)
    subprocess.run([*ip, "link", "set", "forge0", "up"], check=True)
    subprocess.run(
        ["ip", "-n", forge, "addr", "add", f"{FORGE_ADDRESS}/30", "dev", "forge1"], check=True
    )
    subprocess.run(["ip", "-n", forge, "link", "set", "forge1", "up"], check=True)
    subprocess.run(["ip", "-n", forge, "link", "set", "lo", "up"], check=True)
    return forge


def builder_key_for(backend: Service, builder) -> None:
    """The builder's client key, kept in the backend's own directory, and its pool entry."""
    keys = backend.var_dir / "ssh"
    keys.mkdir()
    key = keys / "builder0"
    shutil.copy(builder.client_key, key)
    for path in (keys, key):
        backend.give(path, mode=0o700 if path.is_dir() else 0o600)
    backend.env["TEST_BUILDER_HOST"] = json.dumps(builder.pool_host_config(key_path=str(key)))


def test_copr_cli_builds_forks_and_deletes_with_every_role_apart(hosts):
    web, backend, api, git, pulp, tmp_path = hosts
    cli = copr_cli(web, api, tmp_path)

    def in_pulp(project: str) -> set[str]:
        return pulp_packages(f"{pulp.content_url}/alice/{project}/{CHROOT}")

    cli("create", "apart", "--chroot", CHROOT)

    # An uploaded SRPM: the web keeps it, the backend fetches it over HTTP.
    srpm = make_srpm(tmp_path / "srpm", name="hello", auto_req_prov=False)
    uploaded = build_id_of(cli("build", "--nowait", "apart", str(srpm)))
    # An SCM build: made into an SRPM on the builder, from a git forge only it reaches.
    make_repo(git.base / "tool", packed_files("tool", "1.0"))
    scm = build_id_of(cli("buildscm", "--nowait", "apart", "--clone-url", git.url("tool")))
    states = wait_for_states(api, "apart", {uploaded, scm}, timeout=400)
    assert states == {uploaded: "succeeded", scm: "succeeded"}, source_log(api, scm)
    assert in_pulp("apart") == {"hello", "tool"}

    # A fork: the copies re-signed with the fork's key, installable from Pulp with gpgcheck.
    cli("fork", "alice/apart", "alice/apart-fork")
    wait_until(lambda: in_pulp("apart-fork") == {"hello", "tool"}, timeout=180)
    installed = dnf_install_into(tmp_path / "root", repo_file(web, "apart-fork", tmp_path), "tool")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    # A deleted build leaves the repository; a deleted project leaves Pulp and the results.
    cli("delete-build", str(scm))
    wait_until(lambda: in_pulp("apart") == {"hello"}, timeout=120)
    cli("delete", "alice/apart-fork")
    fork_url = f"{pulp.content_url}/alice/apart-fork/{CHROOT}"
    wait_until(lambda: repository_primary(fork_url) is None, timeout=120)
    assert not (backend.var_dir / "results/alice/apart-fork").exists()

    # The web's upload went once its source task had it; the web holds no results.
    assert not any((web.var_dir / "uploads").glob("*/*"))
    assert not (web.var_dir / "results" / "alice").exists()
    assert owned_by_others(web) == [] and owned_by_others(backend) == []


def copr_cli(web: Service, api: CoprApi, tmp_path: Path) -> CoprCli:
    home = tmp_path / "packager"
    home.mkdir()
    login, token = api.session.auth
    config = write_config(
        home / "copr.conf", url=web.url, username="alice", login=login, token=token
    )
    return CoprCli(home, config)


def build_id_of(result: subprocess.CompletedProcess) -> int:
    """The id copr-cli prints: `Created builds: 12`."""
    line = next(line for line in result.stdout.splitlines() if line.startswith("Created builds"))
    return int(line.split(":")[1].split()[0])


def wait_for_states(api: CoprApi, project: str, ids: set[int], *, timeout: float) -> dict:
    final = ("succeeded", "failed", "canceled")
    states: dict = {}

    def ended() -> bool:
        nonlocal states
        states = {b["id"]: b["state"] for b in api.builds(project) if b["id"] in ids}
        return len(states) == len(ids) and all(state in final for state in states.values())

    wait_until(ended, timeout=timeout)
    return states


def pulp_packages(baseurl: str) -> set[str]:
    """The package names of a repository as Pulp's content app serves it (what dnf reads)."""
    primary = repository_primary(baseurl)
    return set() if primary is None else set(package_names(primary))


def repository_primary(baseurl: str) -> str | None:
    repomd = requests.get(f"{baseurl}/repodata/repomd.xml", timeout=30)
    if repomd.status_code != 200:
        return None
    after_primary = repomd.text.split('<data type="primary">', 1)[1]
    location = after_primary.split('href="', 1)[1].split('"', 1)[0]
    primary = requests.get(f"{baseurl}/{location}", timeout=30)
    primary.raise_for_status()
    return gzip.decompress(primary.content).decode()


def package_names(primary: str) -> list[str]:
    return [part.split("</name>", 1)[0] for part in primary.split("<name>")[1:]]


def repo_file(web: Service, project: str, tmp_path: Path) -> Path:
    """The .repo file `dnf copr enable` downloads from the web, as is (Pulp's baseurl, the
    backend's gpgkey)."""
    answer = requests.get(f"{web.url}/coprs/alice/{project}/repo/fedora-43/", timeout=30)
    answer.raise_for_status()
    directory = tmp_path / f"repos-{project}"
    directory.mkdir()
    assert f"baseurl={web.env['PULP_CONTENT_URL']}/alice/{project}/" in answer.text
    (directory / "copr.repo").write_text(answer.text)
    return directory


def owned_by_others(service: Service) -> list[str]:
    """Paths under the service's VAR_DIR that its user does not own."""
    return [
        str(path)
        for path in [service.var_dir, *service.var_dir.rglob("*")]
        if path.lstat().st_uid != service.user.pw_uid
    ]


def wait_until(predicate, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"not true after {timeout} s: {predicate}")
        time.sleep(1)


def source_log(api: CoprApi, build_id: int) -> str:
    """The end of a build's source task log, from the backend's results server."""
    source = api.session.get(f"{api.url}/build/source-chroot/{build_id}", timeout=30).json()
    log = requests.get(f"{source['result_url']}builder-live.log.gz", timeout=30)
    return f"{source}\n{log.text[-3000:]}"
