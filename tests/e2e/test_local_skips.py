"""`make up` says why an upload starts nothing: the trigger's skips with their reasons, uploads outside every
route, and the trigger's log lines in its log group, where `s3sm status` reads them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from coilgen import generate
from local.runtime import Runtime, StackRequest

pytestmark = pytest.mark.e2e


def test_every_skip_is_told_with_its_reason_and_logged_where_lambda_logs(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    data = generate(tmp_path, layout="named", rows=30, seed=5)
    with Runtime(
        stacks=[StackRequest("skips")], scratch_dir=tmp_path, notify=lambda k, d: seen.append((k, d))
    ) as runtime:
        stack = runtime.stacks[0]
        bucket = stack.outputs["DataBucketName"]
        s3 = boto3.client("s3")
        # Given uploads that run, that the trigger skips, and that no route takes
        s3.upload_file(str(data.out_dir / "Caravan.csv"), bucket, "raw/x.csv")
        s3.put_object(Bucket=bucket, Key="raw/batch/_SUCCESS", Body=b"")
        s3.put_object(Bucket=bucket, Key="raw2/x.csv", Body=b"a\n")
        assert runtime.wait_idle(60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(k == "unrouted" for k, _ in seen):
            time.sleep(0.1)
        group = stack.functions["TriggerFunction"].log_group_name
        time.sleep(1)  # the log writer's batch
        logged = boto3.client("logs").filter_log_events(logGroupName=group, filterPattern='"record skipped"')

    # Then the run, the skip with the trigger's reason, and the unrouted upload with the routes are told
    kinds = {(k, d.get("key")) for k, d in seen}
    assert ("started", "raw/x.csv") in kinds
    [skip] = [d for k, d in seen if k == "skipped" and d.get("key") == "raw/batch/_SUCCESS"]
    assert skip["reason"]
    [unrouted] = [d for k, d in seen if k == "unrouted"]
    assert (unrouted["key"], unrouted["prefixes"]) == ("raw2/x.csv", ["raw/"])
    # and nothing of the stack's own folders (snapshot, clean output, code) is told as unrouted
    assert not [d for k, d in seen if k == "unrouted" and d["key"] != "raw2/x.csv"]
    # and the trigger's log group (the template's TriggerLogGroup) holds the skip, as Lambda would log it
    assert group == "/aws/lambda/skips-TriggerFunction"
    entries = [json.loads(e["message"]) for e in logged["events"]]
    assert any(e.get("key") == "raw/batch/_SUCCESS" and e.get("reason") == skip["reason"] for e in entries)
