"""Several processing instances (ShardedByS3Key): one part file and report per host."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.support.etl import main


def resource_config(tmp_path: Path, host: str, hosts: list[str]) -> Path:
    path = tmp_path / f"resourceconfig-{host}.json"
    path.write_text(json.dumps({"current_host": host, "hosts": hosts, "network_interface_name": "eth0"}))
    return path


def test_each_instance_writes_its_own_part_file_and_report(dataset, tmp_path):
    """Given the seed files sharded over two instances (train.csv on one, test.csv + gt.csv on the other)
    When the ETL runs on each with its resource config
    Then each writes full_data-<host>.csv, rejects-<host>.csv and report-<host>.json into the shared output,
    and the parts together hold the single-instance result's rows"""
    data = dataset(layout="seed", rows=1000, seed=8)
    shards = {"algo-1": ["train.csv", "col_info.csv"], "algo-2": ["test.csv", "gt.csv"]}
    out = tmp_path / "out"
    for host, names in shards.items():
        inp = tmp_path / host
        inp.mkdir()
        for name in names:
            shutil.copy(data.out_dir / name, inp / name)
        config = resource_config(tmp_path, host, list(shards))
        args = ["--input-dir", str(inp), "--output-dir", str(out), "--resource-config", str(config)]
        assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "full_data-algo-1.csv",
        "full_data-algo-2.csv",
        "rejects-algo-1.csv",
        "rejects-algo-2.csv",
        "report-algo-1.json",
        "report-algo-2.json",
    ]
    assert main(["--input-dir", str(data.out_dir), "--output-dir", str(tmp_path / "single")]) == 0
    single = (tmp_path / "single" / "full_data.csv").read_text().splitlines()
    part1 = (out / "full_data-algo-1.csv").read_text().splitlines()
    part2 = (out / "full_data-algo-2.csv").read_text().splitlines()
    assert part1[0] == part2[0] == single[0]
    assert part1[1:] + part2[1:] == single[1:]
    report = json.loads((out / "report-algo-2.json").read_text())
    assert report["host"] == "algo-2"
    assert report["hosts"] == ["algo-1", "algo-2"]


def test_targets_whose_eval_file_went_to_another_instance_are_reported_clearly(dataset, tmp_path, run_etl):
    """Given an instance that received tictgts2000.txt but not ticeval2000.txt
    When the ETL runs there
    Then it fails saying the eval file may be on another instance and how to avoid that"""
    data = dataset(layout="uci", rows=500, seed=8)
    inp = tmp_path / "in"
    inp.mkdir()
    shutil.copy(data.out_dir / "tictgts2000.txt", inp / "tictgts2000.txt")
    config = resource_config(tmp_path, "algo-2", ["algo-1", "algo-2"])
    result = run_etl(inp, tmp_path / "out", "--resource-config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "etl: error: tictgts2000.txt: targets file without its eval rows "
        "(expected ticeval2000.txt or test.csv "
        "beside it); this is one of 2 instances (ShardedByS3Key sends each object to one instance)"
    )
    assert "ProcessingInstanceCount=1" in result.stderr
    report = json.loads((tmp_path / "out" / "report-algo-2.json").read_text())
    assert report["status"] == "failed"
    assert "tictgts2000.txt" in report["error"]


def test_an_instance_that_received_no_files_writes_an_empty_part(tmp_path):
    """Given more instances than objects, so this instance's input folder is empty
    When the ETL runs there
    Then it succeeds with a header-only part file and a report saying nothing was read"""
    inp = tmp_path / "in"
    inp.mkdir()
    config = resource_config(tmp_path, "algo-3", ["algo-1", "algo-2", "algo-3"])
    out = tmp_path / "out"
    assert main(["--input-dir", str(inp), "--output-dir", str(out), "--resource-config", str(config)]) == 0
    assert (out / "full_data-algo-3.csv").read_text().count("\n") == 1
    report = json.loads((out / "report-algo-3.json").read_text())
    assert report["totals"]["rows_read"] == 0
    assert report["status"] == "succeeded"


def test_the_local_runner_can_say_where_the_resource_config_is(dataset, tmp_path, run_etl):
    """Given LOCAL_RESOURCE_CONFIG naming a two-host config (the local runner maps /opt/ml paths elsewhere)
    When etl.py runs without --resource-config
    Then it names its outputs after the host from that file"""
    config = resource_config(tmp_path, "algo-1", ["algo-1", "algo-2"])
    data = dataset(layout="named", rows=50, seed=8)
    result = run_etl(data.out_dir, tmp_path / "out", env={"LOCAL_RESOURCE_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "full_data-algo-1.csv",
        "rejects-algo-1.csv",
        "report-algo-1.json",
    ]


def test_an_object_run_over_two_instances_writes_the_rows_on_one_and_an_empty_part_on_the_other(
    dataset, tmp_path
):
    """Given an object input URL and two instances, ShardedByS3Key having sent the object to algo-1 only
    When the ETL runs on each with that --input-url
    Then algo-1 writes the object's rows, and algo-2 succeeds with a header-only part file and a report
    saying it received no object"""
    data = dataset(layout="named", rows=50, seed=8)
    source = next(p for p in data.out_dir.iterdir() if p.suffix == ".csv")
    url = f"s3://bucket/raw/x/{source.name}"
    hosts = ["algo-1", "algo-2"]
    out = tmp_path / "out"
    for host, files in {"algo-1": [source], "algo-2": []}.items():
        inp = tmp_path / host
        inp.mkdir()
        for f in files:
            shutil.copy(f, inp / f.name)
        config = resource_config(tmp_path, host, hosts)
        args = ["--input-dir", str(inp), "--output-dir", str(out), "--input-url", url]
        assert main([*args, "--resource-config", str(config)]) == 0
    rows = (out / "full_data-algo-1.csv").read_text().splitlines()
    assert len(rows) == 51
    assert (out / "full_data-algo-2.csv").read_text().splitlines() == rows[:1]
    with_object = json.loads((out / "report-algo-1.json").read_text())
    assert with_object["totals"]["rows_written"] == 50
    assert "note" not in with_object
    without = json.loads((out / "report-algo-2.json").read_text())
    assert without["status"] == "succeeded"
    assert without["totals"]["rows_read"] == 0
    assert without["note"].startswith(f"this instance received no object: the input object {source.name}")


def test_an_object_missing_on_a_single_instance_is_still_an_error(tmp_path, run_etl):
    """Given one instance (a one-host resource config) whose input folder lacks the --input-url object
    When the ETL runs there
    Then it fails with one line naming the missing object, and writes no clean data"""
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.csv.bak").write_text("1,2,3\n")
    config = resource_config(tmp_path, "algo-1", ["algo-1"])
    out = tmp_path / "out"
    result = run_etl(inp, out, "--input-url", "s3://b/raw/x/a.csv", "--resource-config", str(config))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "etl: error: input object a.csv (from --input-url s3://b/raw/x/a.csv) is not in "
    )
    assert not (out / "full_data.csv").exists()
    assert json.loads((out / "report.json").read_text())["status"] == "failed"
