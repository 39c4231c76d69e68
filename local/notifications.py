"""Pipeline notifications, locally: SageMaker's status-change events, the template's rule, a stand-in topic.

On AWS, SageMaker sends an EventBridge event on every execution status change, and the template's
``AWS::Events::Rule`` (``PipelineStatusRule``) matches the failed and stopped ones and publishes a sentence
to the SNS topic through its input transformer. Locally:

- :meth:`Notifications.on_runner` is chained into the pipeline runner's notify callback and sends the same
  event (``PutEvents``, source ``aws.sagemaker``, the detail fields SageMaker's documented example has,
  ``events/notifications/sagemaker-pipeline-execution-status.json``) on each transition it reports;
- :meth:`Notifications.install` creates each rule of the template that targets a topic of the template, with
  its own event pattern and input transformer resolved for the local stack, pointed at an SQS queue standing
  in for the topic: moto's EventBridge delivers to SQS, but raises NotImplementedError for an SNS target;
- a poller reads the stand-in queues and reports each message, as the topic would send it (the text the
  rule delivered, unchanged), through the runtime's notify (``make up`` prints it).

What is hand-written here is only what moto lacks: SageMaker emitting the events, and an SNS target.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from local.template import Template, TemplateError

Notify = Callable[[str, dict[str, Any]], None]
SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Building Pipeline Execution Status Change"
_RUNNER_KINDS = {"execution-started", "execution-failed", "execution-succeeded"}


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def status_event(
    *,
    pipeline_arn: str,
    execution_arn: str,
    current: str,
    previous: str | None,
    start: datetime | None,
    end: datetime | None = None,
    display_name: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A PutEvents entry shaped as SageMaker's "Pipeline Execution Status Change" event.

    The detail has the fields of the event SageMaker documents, in its order; a value SageMaker would
    not have yet (no end time while executing, no previous status at first) is left out.
    """
    detail: dict[str, Any] = {
        "pipelineExecutionDisplayName": display_name or execution_arn.rsplit("/", 1)[-1],
        "currentPipelineExecutionStatus": current,
        "previousPipelineExecutionStatus": previous,
        "executionStartTime": _iso(start),
        "executionEndTime": _iso(end),
        "pipelineExecutionDescription": description,
        "pipelineArn": pipeline_arn,
        "pipelineExecutionArn": execution_arn,
    }
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps({k: v for k, v in detail.items() if v is not None}),
        "Resources": [pipeline_arn, execution_arn],
    }


@dataclass(frozen=True)
class StandIn:
    """A local queue receiving what a rule of the template would publish to a topic."""

    stack: str
    rule: str  # the rule's logical id
    topic: str  # the topic's logical id
    queue_url: str


def _topic_targets(template: Template, rule: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """The rule's targets that are a topic of this template, with the topic's logical id."""
    found = []
    for target in (rule.get("Properties") or {}).get("Targets") or []:
        arn = target.get("Arn")
        if isinstance(arn, dict) and set(arn) == {"Ref"}:
            topic = str(arn["Ref"])
            if (template.resources.get(topic) or {}).get("Type") == "AWS::SNS::Topic":
                found.append((target, topic))
    return found


class Notifications:
    """The status events and the stand-in topics of one local runtime."""

    def __init__(self, *, events: Any, sqs: Any, sagemaker: Any, notify: Notify, poll_wait: int = 1) -> None:
        self.events, self.sqs, self.sagemaker = events, sqs, sagemaker
        self.notify = notify
        self.poll_wait = poll_wait
        self.stand_ins: list[StandIn] = []
        self._previous: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the local stack's rules ----------------------------------------------------------------------

    def install(self, template: Template, stack: Any) -> list[StandIn]:
        """Create the stack's topic-targeting rules (pattern and transformer as resolved for ``stack``)."""
        added = []
        for logical_id, resource in template.resources.items():
            if resource.get("Type") != "AWS::Events::Rule":
                continue
            if "Condition" in resource and not stack.resolver.condition(
                str(resource["Condition"]), logical_id
            ):
                continue
            for target, topic in _topic_targets(template, resource):
                added.append(self._install_rule(stack, logical_id, resource, target, topic))
        self.stand_ins.extend(added)
        return added

    def start(self) -> Notifications:
        """Report what reaches the stand-in topics as it arrives (a poller thread), until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._poll, name="notifications", daemon=True)
            self._thread.start()
        return self

    def _install_rule(
        self, stack: Any, logical_id: str, resource: dict[str, Any], target: dict[str, Any], topic: str
    ) -> StandIn:
        where = f"Resources.{logical_id}.Properties"
        props = resource.get("Properties") or {}
        try:
            pattern = stack.resolver.resolve(props["EventPattern"], f"{where}.EventPattern")
            transformer = stack.resolver.resolve(target.get("InputTransformer"), f"{where}.Targets")
        except (KeyError, TemplateError) as exc:
            raise TemplateError(f"{where}: the local runtime cannot create this rule: {exc}") from exc
        name = f"{stack.name}-{topic}-topic"[:80]
        url = str(self.sqs.create_queue(QueueName=name)["QueueUrl"])
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rule = f"{stack.name}-{logical_id}"[:64]
        self.events.put_rule(Name=rule, EventPattern=json.dumps(pattern), State="ENABLED")
        local_target: dict[str, Any] = {"Id": str(target.get("Id", topic)), "Arn": queue_arn}
        if transformer:
            local_target["InputTransformer"] = transformer
        self.events.put_targets(Rule=rule, Targets=[local_target])
        return StandIn(stack.name, logical_id, topic, url)

    # -- SageMaker's events, from the runner's progress -----------------------------------------------

    def on_runner(self, kind: str, details: dict[str, Any]) -> None:
        """Send the status-change event for a transition the runner reports (its notify callback)."""
        if kind not in _RUNNER_KINDS or self._stop.is_set():
            return
        arn = str(details["arn"])
        try:
            described = self.sagemaker.describe_pipeline_execution(PipelineExecutionArn=arn)
            current = str(described["PipelineExecutionStatus"])
            with self._lock:
                previous = self._previous.get(arn)
                if previous == current:
                    return
                self._previous[arn] = current
            finished = current in ("Succeeded", "Failed", "Stopped")
            entry = status_event(
                pipeline_arn=str(described["PipelineArn"]),
                execution_arn=arn,
                current=current,
                previous=previous,
                start=described.get("CreationTime"),
                end=described.get("LastModifiedTime") if finished else None,
                display_name=described.get("PipelineExecutionDisplayName"),
                description=described.get("PipelineExecutionDescription"),
            )
            failed = self.events.put_events(Entries=[entry]).get("FailedEntryCount", 0)
        except (ClientError, BotoCoreError) as exc:
            self.notify("notification-error", {"arn": arn, "error": str(exc)})
            return
        if failed:
            self.notify("notification-error", {"arn": arn, "error": "PutEvents refused the event"})

    # -- the stand-in topics ---------------------------------------------------------------------------

    def drain(self) -> list[dict[str, Any]]:
        """Read every stand-in queue once; each message reported through notify and returned."""
        sent = []
        for stand_in in list(self.stand_ins):
            messages = self.sqs.receive_message(
                QueueUrl=stand_in.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in messages:
                item = {
                    "stack": stand_in.stack,
                    "topic": stand_in.topic,
                    "rule": stand_in.rule,
                    "message": message["Body"],  # what SNS would send on, as the rule delivered it
                }
                self.notify("topic-notification", item)
                sent.append(item)
                self.sqs.delete_message(QueueUrl=stand_in.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return sent

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_wait):
            try:
                self.drain()
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    break
                self.notify("notification-error", {"error": str(exc)})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


__all__ = ["DETAIL_TYPE", "SOURCE", "Notifications", "StandIn", "status_event"]
