"""/api_3/build/*: submitting from every source, batches, checks, RPM uploads, deletes."""

import pytest

from apps.builds.models import Batch, Build, BuildTask, State
from apps.builds.rpm_uploads import rpm_upload_place
from apps.builds.sources import upload_dir
from apps.packages.models import DistGitInstance
from tests.factories import BuildFactory, BuildTaskFactory, PermissionFactory, ProjectFactory

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"


def submit(client, kind: str, **data):
    return client.post(
        f"build/create/{kind}", {"ownername": "alice", "projectname": "hello", **data}
    )


@pytest.mark.parametrize(
    ("kind", "data", "expected_source"),
    [
        (
            "scm",
            {"clone_url": "https://example.org/x.git", "source_build_method": "tito"},
            {"type": "git", "clone_url": "https://example.org/x.git", "committish": "",
             "subdirectory": "", "spec": "", "srpm_build_method": "tito"},
        ),
        (
            "pypi",
            {"pypi_package_name": "six", "python_versions": [3, 2]},
            {"pypi_package_name": "six", "pypi_package_version": "", "spec_generator": "pyp2spec",
             "spec_template": "", "python_versions": ["3", "2"]},
        ),
        ("rubygems", {"gem_name": "rake"}, {"gem_name": "rake"}),
        (
            "custom",
            {"script": "#!/bin/sh\necho hi", "chroot": X86},
            {"script": "#!/bin/sh\necho hi\n", "chroot": X86, "builddeps": "",
             "resultdir": "", "repos": ""},
        ),
    ],
)  # fmt: skip
def test_create_from_source_records_coprs_source_json(
    copr_client, alice, hello_project, kind, data, expected_source
):
    response = submit(copr_client(alice), kind, chroots=[X86], **data)
    assert response.status_code == 200, response.content
    build = Build.objects.get(pk=response.json()["id"])
    assert build.source_type == kind
    assert build.source_json == expected_source
    assert build.requested_chroots == [X86]
    assert response.json()["chroots"] == [X86]


def test_create_distgit(copr_client, alice, hello_project):
    DistGitInstance.objects.create(name="fedora", clone_url="https://src.fedoraproject.org")
    response = submit(copr_client(alice), "distgit", package_name="tar", distgit="fedora")
    assert response.status_code == 200, response.content
    build = Build.objects.get(pk=response.json()["id"])
    assert build.source_json["package_name"] == "tar"
    assert build.source_json["distgit"] == "fedora"


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        ("scm", {}, "clone_url"),
        ("pypi", {"pypi_package_name": "six", "spec_generator": "nope"}, "spec_generator"),
        ("rubygems", {"gem_name": ""}, "gem_name"),
        ("custom", {"script": "x" * 5000}, "longer than"),
        ("scm", {"clone_url": "https://e.org/x.git", "timeout": "abc"}, "timeout"),
        (
            "scm",
            {"clone_url": "https://e.org/x.git", "chroots": ["fedora-1-x86_64"]},
            "chroots: 'fedora-1-x86_64' is not a valid choice for this field",
        ),
        ("scm", {"clone_url": "https://e.org/x.git", "isolation": "bad"}, "isolation"),
        ("scm", {"clone_url": "https://e.org/x.git", "project_dirname": "other"}, "dirname"),
    ],
)
def test_bad_build_input_is_400_and_creates_nothing(
    copr_client, alice, hello_project, kind, data, message
):
    response = submit(copr_client(alice), kind, **data)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Build.objects.exists()


def test_create_url_makes_one_build_per_url_or_none(copr_client, alice, hello_project):
    urls = ["https://example.org/a.src.rpm", "https://example.org/b.src.rpm"]
    body = submit(copr_client(alice), "url", pkgs=urls).json()
    assert [b["id"] for b in body["items"]] == list(
        Build.objects.order_by("id").values_list("pk", flat=True)
    )
    assert body["meta"] == {"limit": None, "offset": None, "order": None, "order_type": None}
    Build.objects.all().delete()
    response = submit(copr_client(alice), "url", pkgs=[urls[0], "ftp://bad"])
    assert response.status_code == 400
    assert not Build.objects.exists()  # the good URL's build was rolled back too


def test_exclude_chroots_and_background(copr_client, alice, hello_project):
    response = submit(
        copr_client(alice),
        "rubygems",
        gem_name="rake",
        exclude_chroots=["fedora-44-*"],
        background=True,
        timeout="1000",
    )
    build = Build.objects.get(pk=response.json()["id"])
    assert build.requested_chroots == [X86]
    assert build.is_background and build.timeout == 1000


def test_isolation_and_bootstrap_are_kept_on_the_build(copr_client, alice, hello_project):
    client = copr_client(alice)
    response = submit(client, "rubygems", gem_name="rake", isolation="simple", bootstrap="off")
    build = Build.objects.get(pk=response.json()["id"])
    assert (build.isolation, build.bootstrap) == ("simple", "off")
    # copr-cli sends `unchanged` when the option is not given: the chroot's settings hold.
    response = submit(client, "rubygems", gem_name="rake", isolation="unchanged")
    build = Build.objects.get(pk=response.json()["id"])
    assert (build.isolation, build.bootstrap) == ("unchanged", "unchanged")


def test_with_and_after_build_id_make_batches(copr_client, alice, hello_project):
    client = copr_client(alice)
    first = submit(client, "rubygems", gem_name="a").json()["id"]
    second = submit(client, "rubygems", gem_name="b", with_build_id=first).json()["id"]
    third = submit(client, "rubygems", gem_name="c", after_build_id=first).json()["id"]
    builds = {b.pk: b for b in Build.objects.all()}
    assert builds[first].batch_id == builds[second].batch_id is not None
    assert builds[third].batch.blocked_by_id == builds[first].batch_id
    assert Batch.objects.count() == 2
    both = submit(client, "rubygems", gem_name="d", after_build_id=first, with_build_id=first)
    assert both.status_code == 400 and "mutually exclusive" in both.json()["error"]
    missing = submit(client, "rubygems", gem_name="d", after_build_id=999)
    assert missing.status_code == 400 and "999 does not exist" in missing.json()["error"]


def test_with_build_id_of_a_finished_build_is_refused(copr_client, alice, hello_project):
    done = BuildFactory(project=hello_project, state=State.SUCCEEDED)
    response = submit(copr_client(alice), "rubygems", gem_name="a", with_build_id=done.pk)
    assert response.status_code == 400
    assert "has already succeeded" in response.json()["error"]


def test_check_before_build(copr_client, alice, bob, hello_project):
    data = {"ownername": "alice", "projectname": "hello", "chroots": [X86], "timeout": "1000"}
    ok = copr_client(alice).post("build/check-before-build", data)
    assert ok.json() == {"message": "It should be safe to submit a build like this"}
    denied = copr_client(bob).post("build/check-before-build", data)
    assert denied.status_code == 403
    missing = copr_client(alice).post("build/check-before-build", {**data, "projectname": "x"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Project alice/x does not exist."}


def test_upload_multipart(copr_client, alice, hello_project, package_files):
    response = copr_client(alice).upload(
        "build/create/upload",
        package_files["srpm"],
        {"ownername": "alice", "projectname": "hello", "chroots": [X86]},
    )
    assert response.status_code == 200, response.content
    build = Build.objects.get(pk=response.json()["id"])
    assert build.source_type == "upload"


def test_upload_over_the_users_budget_is_refused(
    copr_client, alice, hello_project, package_files, settings
):
    """Uploads waiting for their source task count against a budget; the refusal says how
    much waits and what to do, and creates nothing."""
    srpm = package_files["srpm"]
    settings.UPLOADS_USER_BUDGET_BYTES = srpm.stat().st_size * 3 // 2
    data = {"ownername": "alice", "projectname": "hello", "chroots": [X86]}
    first = copr_client(alice).upload("build/create/upload", srpm, data)
    assert first.status_code == 200, first.content

    refused = copr_client(alice).upload("build/create/upload", srpm, data)

    assert refused.status_code == 413
    assert "wait for their source task already take" in refused.json()["error"]
    assert "cancel the ones you no longer need" in refused.json()["error"]
    assert Build.objects.count() == 1
    assert [p.parent.name for p in settings.UPLOADS_ROOT.rglob("*.src.rpm")] == [
        f"{first.json()['id']:08d}"
    ]
    # Once the first one is canceled, its room is free again.
    assert copr_client(alice).post(f"build/cancel/{first.json()['id']}").status_code == 200
    assert copr_client(alice).upload("build/create/upload", srpm, data).status_code == 200


def test_rpm_upload_creates_running_tasks_per_matching_chroot(
    copr_client, alice, settings, package_files, django_capture_on_commit_callbacks
):
    ProjectFactory(
        name="hello", owner_user=alice, chroot_names=[X86, "fedora-43-aarch64", "fedora-44-x86_64"]
    )
    with django_capture_on_commit_callbacks():
        response = copr_client(alice).upload(
            "build/create/rpm-upload",
            package_files["rpm"],
            {"ownername": "alice", "projectname": "hello"},
        )
    assert response.status_code == 200, response.content
    build = Build.objects.get(pk=response.json()["id"])
    tasks = BuildTask.objects.filter(build=build)
    # The host-built RPM is x86_64: the aarch64 chroot does not take it.
    assert sorted(t.chroot.name for t in tasks) == [X86, "fedora-44-x86_64"]
    assert {t.state for t in tasks} == {State.RUNNING}
    task = tasks.get(chroot__name=X86)
    # The web keeps the RPM; the backend places it in the results (apps/builds/rpm_uploads.py).
    kept = upload_dir(build.pk) / package_files["rpm"].name
    placed = settings.RESULTS_ROOT / "alice/hello" / task.result_dir / package_files["rpm"].name
    assert kept.exists() and not placed.exists()
    with django_capture_on_commit_callbacks():
        rpm_upload_place(build_id=build.pk)
    assert placed.exists() and not kept.exists()
    task.refresh_from_db()
    assert task.result_files == [package_files["rpm"].name]
    assert build.package_name == "hello" and build.source_type == "rpm_upload"


@pytest.mark.parametrize("kind", ["srpm", "junk"])
def test_rpm_upload_refuses_srpms_and_junk(
    copr_client, alice, hello_project, package_files, tmp_path, kind
):
    path = package_files["srpm"]
    if kind == "junk":
        path = tmp_path / "junk.x86_64.rpm"
        path.write_bytes(b"not an rpm at all")
    response = copr_client(alice).upload(
        "build/create/rpm-upload", path, {"ownername": "alice", "projectname": "hello"}
    )
    assert response.status_code == 400
    assert not Build.objects.exists()


def test_get_list_cancel_and_build_chroots(copr_client, alice, hello_project):
    build = BuildFactory(project=hello_project, state=State.RUNNING)
    BuildTaskFactory(build=build, state=State.RUNNING, result_dir=f"{X86}/00000001-hello")
    got = copr_client().get(f"build/{build.pk}").json()
    assert got["state"] == "running" and got["chroots"] == [X86]
    assert got["source_package"]["name"] == "hello"
    assert isinstance(got["submitted_on"], int)
    listed = copr_client().get("build/list", {"ownername": "alice", "projectname": "hello"})
    assert [b["id"] for b in listed.json()["items"]] == [build.pk]
    chroots = copr_client().get("build-chroot/list", {"build_id": build.pk}).json()["items"]
    assert chroots[0]["name"] == X86 and chroots[0]["result_url"].endswith("00000001-hello/")
    one = copr_client().get("build-chroot", {"build_id": build.pk, "chrootname": X86})
    assert one.json()["state"] == "running"
    missing = copr_client().get("build-chroot", {"build_id": build.pk, "chrootname": "x"})
    assert missing.json() == {"error": f"Build {build.pk} was not submitted to x chroot."}

    canceled = copr_client(alice).put(f"build/cancel/{build.pk}")
    assert canceled.json()["state"] == "canceled"
    assert copr_client(alice).put(f"build/cancel/{build.pk}").status_code == 409
    assert copr_client().get("build/999").json() == {"error": "Build 999 does not exist."}


def test_build_config_gives_the_builds_bootstrap(copr_client, alice, hello_project):
    build = BuildFactory(project=hello_project, bootstrap="image")
    BuildTaskFactory(build=build)
    params = {"build_id": build.pk, "chrootname": X86}
    config = copr_client().get("build-chroot/build-config", params).json()
    assert config["bootstrap"] == "image" and "bootstrap_image" not in config
    Build.objects.filter(pk=build.pk).update(bootstrap="default")
    config = copr_client().get("build-chroot/build-config", params).json()
    assert "bootstrap" not in config  # mock's own default, left out as Copr does


def test_delete_list_is_all_or_nothing(copr_client, alice, bob, hello_project):
    done = BuildFactory(project=hello_project, state=State.SUCCEEDED)
    running = BuildFactory(project=hello_project, state=State.RUNNING)
    response = copr_client(alice).delete("build/delete/list", {"builds": [done.pk, running.pk]})
    assert response.status_code == 400
    assert f"Builds {running.pk} are unfinished" in response.json()["error"]
    assert Build.objects.count() == 2
    forbidden = copr_client(bob).delete("build/delete/list", {"builds": [done.pk]})
    assert forbidden.status_code == 400 and "not allowed" in forbidden.json()["error"]
    ok = copr_client(alice).delete("build/delete/list", {"builds": [done.pk]})
    assert ok.json() == {"builds": [done.pk]}
    assert not Build.objects.filter(pk=done.pk).exists()


def test_builder_permission_lets_a_user_build(copr_client, bob, hello_project):
    PermissionFactory(project=hello_project, user=bob, builder="approved")
    response = submit(copr_client(bob), "rubygems", gem_name="rake")
    assert response.status_code == 200
    assert response.json()["submitter"] == "bob"
