"""factory_boy factories for the domain models."""

import factory
from django.utils import timezone

from apps.accounts.models import Group, User
from apps.builds.models import Build, BuildTask, Priority, State
from apps.projects.catalog import catalog_entries
from apps.projects.models import Chroot, PermissionLevel, Project, ProjectChroot, ProjectPermission


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password("correct horse battery staple")


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Group

    name = factory.Sequence(lambda n: f"group{n}")
    external_name = factory.LazyAttribute(lambda group: group.name)


def chroot(name: str = "fedora-43-x86_64") -> Chroot:
    """A chroot from the catalog the migrations installed."""
    catalog_ensure()
    return Chroot.objects.get(name=name)


def catalog_ensure() -> None:
    """Transactional tests flush every table, the migrated catalog included; put it back."""
    if not Chroot.objects.exists():
        for entry in catalog_entries():
            Chroot.objects.create(**entry)


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"project{n}")
    owner_user = factory.SubFactory(UserFactory)
    owner_group = None

    @factory.post_generation
    def chroot_names(project, create, extracted, **kwargs):
        if create:
            for name in extracted or ["fedora-43-x86_64"]:
                ProjectChroot.objects.create(project=project, chroot=chroot(name))


class PermissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProjectPermission

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    builder = PermissionLevel.NOTHING
    admin = PermissionLevel.NOTHING


class BuildFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Build

    project = factory.SubFactory(ProjectFactory)
    project_dirname = factory.LazyAttribute(lambda build: build.project.name)
    submitter = factory.LazyAttribute(lambda build: build.project.owner_user)
    source_type = "link"
    source_json = factory.LazyAttribute(lambda build: {"url": "https://example.org/x.src.rpm"})
    package_name = "hello"
    package_version = "1.0-1"
    state = State.SUCCEEDED
    submitted_on = factory.LazyFunction(timezone.now)


class BuildTaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BuildTask

    build = factory.SubFactory(BuildFactory)
    chroot = factory.LazyFunction(chroot)
    state = State.SUCCEEDED
    priority = Priority.NORMAL
