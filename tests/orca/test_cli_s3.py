"""The command line with inbox/ and warehouse/ on an object store (SeaweedFS): `orca materialize` pulls the
documents from the store and publishes the index there; `orca search` on another machine's ORCA_HOME finds
them through the pointer; a collection the store lacks is a clear error."""

from __future__ import annotations

from tests.processes import orca_env, run_cli


def test_materialize_and_search_work_from_the_store_alone(tmp_path, s3_server, s3_bucket):
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key="orca/inbox/docs/tides.md", Body=b"# Tides\n\nThe tide rises twice a day.")
    client.put_object(Bucket=s3_bucket, Key="orca/inbox/docs/reefs.md", Body=b"# Reefs\n\nCoral reefs shelter fish.")
    store = {"ORCA_STORAGE_URL": f"s3://{s3_bucket}/orca", **s3_server.env()}
    built = run_cli(["materialize", "docs"], env=orca_env(tmp_path / "builder", **store))
    assert built.returncode == 0, built.stdout + built.stderr
    assert client.get_object(Bucket=s3_bucket, Key="orca/warehouse/docs/embedding_index.current")["ContentLength"] > 0

    found = run_cli(["search", "docs", "coral reefs", "-k", "1"], env=orca_env(tmp_path / "searcher", **store))
    assert found.returncode == 0, found.stdout + found.stderr
    assert "reefs.md" in found.stdout and "tides.md" not in found.stdout

    missing = run_cli(["materialize", "nothing"], env=orca_env(tmp_path / "builder", **store))
    assert missing.returncode != 0
    assert "has no documents for nothing" in missing.stdout + missing.stderr
