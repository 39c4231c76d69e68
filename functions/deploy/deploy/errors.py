"""The deploy function's one exception type. Raised ``from`` its cause; its message becomes the Reason."""

from __future__ import annotations


class DeployError(Exception):
    """A request the function cannot carry out: bad properties, a bad artifact, or an AWS error."""


class ResponseNotSent(Exception):
    """The response could not be delivered to CloudFormation's ResponseURL (the stack will time out)."""
