"""apps/builds/logs.py: logs gzipped once a task is final, backend.log appends after that."""

import gzip

from apps.builds.logs import backend_log, read_log, task_logs_compress


def test_compression_replaces_the_logs_and_later_appends_land_in_the_gz(tmp_path):
    (tmp_path / "builder-live.log").write_text("INFO: built\n")
    backend_log(tmp_path, "runner ended: succeeded")
    task_logs_compress(tmp_path)
    task_logs_compress(tmp_path)  # twice: a redelivered end changes nothing
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "backend.log.gz",
        "builder-live.log.gz",
    ]
    backend_log(tmp_path, "published in the fedora-43-x86_64 repository")
    assert not (tmp_path / "backend.log").exists()
    text = gzip.decompress((tmp_path / "backend.log.gz").read_bytes()).decode()
    assert text.splitlines()[0].endswith("runner ended: succeeded")
    assert text.splitlines()[1].endswith("published in the fedora-43-x86_64 repository")
    assert read_log(tmp_path, "builder-live.log") == "INFO: built\n"


def test_a_task_without_a_results_directory_is_left_alone(tmp_path):
    task_logs_compress(tmp_path / "never-started")
    assert not (tmp_path / "never-started").exists()
